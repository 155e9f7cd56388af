#include "cli/demo.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "base/duration.hpp"
#include "cli/client_commands.hpp"
#include "client/client.hpp"

namespace ordo::cli {

namespace json = boost::json;

namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_usage = 2;
// Idempotent requests that fail with a retryable error are sent again this many times.
constexpr int k_max_attempts = 5;
// Words per chunk when an assistant message is streamed.
constexpr std::size_t k_words_per_chunk = 3;
// How often the agent looks for an answer while an approval request is pending.
constexpr std::chrono::milliseconds k_approval_poll{200};

std::string random_hex(std::mt19937_64& rng, int digits) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < digits; ++i)
    out += k_hex[rng() % 16];
  return out;
}

// The simulated agent. Every call either succeeds or throws demo_failure, which demo() turns
// into the error line and exit code; the session is left as far as it got.
struct demo_failure {
  failure f;
};

class demo_agent {
 public:
  demo_agent(client::stream_client& c, const demo_flags& flags, std::chrono::milliseconds step,
             std::chrono::milliseconds chunk, std::chrono::milliseconds approval)
      : c_(c), flags_(flags), step_(step), chunk_(chunk), approval_(approval) {}

  void run();

 private:
  json::value call(const std::string& method, const std::string& target,
                   std::optional<json::value> body, std::vector<int> accepted = {200, 201},
                   client::header_list headers = {});
  void pause(std::chrono::milliseconds d);
  void step() { pause(step_); }
  void row(const std::string& id, const std::string& kind, const std::string& status,
           json::value body);
  void say(const std::string& id, const std::string& text);
  void tool(const std::string& id, const std::string& name, json::value input,
            const std::string& result);
  void observe_pr(const std::string& ci_state, const std::string& review, json::array checks);
  void answer_commands();
  // Waits up to approval_ for an approval command naming `row_id`; "approved" or "denied", or
  // nullopt when nobody answered in time.
  std::optional<std::string> wait_for_approval(const std::string& row_id);
  void log(const std::string& line) { std::cout << line << std::endl; }

  client::stream_client& c_;
  const demo_flags& flags_;
  std::chrono::milliseconds step_, chunk_, approval_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::string session_;  // "/v1/sessions/{id}"
  std::string pr_url_;
  std::int64_t pr_number_ = 0;
  std::string head_commit_;
  int user_rows_ = 0;
  std::map<std::string, std::string> decisions_;  // approval row id -> "approved" | "denied"
};

json::value demo_agent::call(const std::string& method, const std::string& target,
                             std::optional<json::value> body, std::vector<int> accepted,
                             client::header_list headers) {
  client::http_request req{method, target, std::move(headers), "", method != "POST"};
  if (body) {
    req.body = json::serialize(*body);
    req.headers.emplace_back("Content-Type", "application/json");
  }
  client::retry_policy policy;
  for (int attempt = 0;; ++attempt) {
    auto r = c_.send(req);
    if (r && std::find(accepted.begin(), accepted.end(), r->status) != accepted.end()) {
      boost::system::error_code ec;
      json::value v = r->body.empty() ? json::value() : json::parse(r->body, ec);
      if (ec) {
        throw demo_failure{make_failure(failure_kind::internal, "invalid_response",
                                        "the answer to " + method + " " + target + " is not JSON")};
      }
      return v;
    }
    failure f = r ? client::failure_from_response(*r) : r.error();
    // Only requests that are safe to repeat (GET, PUT) are retried.
    if (!req.idempotent || !client::is_retryable(f) || attempt + 1 >= k_max_attempts) {
      f.message = method + " " + target + ": " + f.message;
      throw demo_failure{f};
    }
    std::this_thread::sleep_for(policy.wait_before(attempt, f, rng_));
  }
}

void demo_agent::pause(std::chrono::milliseconds d) {
  if (d.count() > 0) std::this_thread::sleep_for(d);
  // The agent stays alive for the reaper and answers what was sent to it meanwhile.
  if (!session_.empty()) {
    call("POST", session_ + "/heartbeat", std::nullopt);
    answer_commands();
  }
}

void demo_agent::row(const std::string& id, const std::string& kind, const std::string& status,
                     json::value body) {
  call("PUT", session_ + "/rows/" + id,
       json::object{{"kind", kind}, {"status", status}, {"body", std::move(body)}});
}

// An assistant message streamed a few words at a time: one row, updated in place.
void demo_agent::say(const std::string& id, const std::string& text) {
  std::istringstream words(text);
  std::string word, shown;
  std::size_t n = 0;
  while (words >> word) {
    shown += (shown.empty() ? "" : " ") + word;
    if (++n % k_words_per_chunk == 0) {
      row(id, "assistant", "in_progress", json::object{{"text", shown}});
      if (chunk_.count() > 0) std::this_thread::sleep_for(chunk_);
    }
  }
  row(id, "assistant", "complete", json::object{{"text", text}});
  step();
}

void demo_agent::tool(const std::string& id, const std::string& name, json::value input,
                      const std::string& result) {
  row(id, "tool_call", "in_progress", json::object{{"tool", name}, {"input", input}});
  step();
  row(id, "tool_call", "complete", json::object{{"tool", name}, {"input", input}});
  row(id + "-result", "tool_result", "complete", json::object{{"text", result}});
  step();
}

void demo_agent::observe_pr(const std::string& ci_state, const std::string& review,
                            json::array checks) {
  json::object pr{{"url", pr_url_},
                  {"number", pr_number_},
                  {"title", "Fix the login redirect loop"},
                  {"state", "open"},
                  {"review_decision", review},
                  {"mergeability", "mergeable"},
                  {"ci_state", ci_state},
                  {"head_commit", head_commit_}};
  call("PUT", session_ + "/prs", json::object{{"pr", pr}, {"checks", std::move(checks)}});
  step();
}

json::object check(const std::string& name, const std::string& commit, const std::string& status,
                   const std::string& url) {
  return json::object{{"name", name}, {"commit", commit}, {"status", status}, {"url", url}};
}

std::string string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Commands sent to the session. An approval ({"type":"approval","row_id","decision"}) answers a
// pending approval request; anything else is shown in the transcript as the user's message.
// Each is acknowledged delivered, then done (or failed, saying why).
void demo_agent::answer_commands() {
  json::value pending = call("GET", session_ + "/commands?status=pending", std::nullopt);
  for (const auto& v : pending.at("commands").as_array()) {
    const auto& cmd = v.as_object();
    std::string id(cmd.at("id").as_string());
    std::string target = session_ + "/commands/" + id;
    call("POST", target, json::object{{"status", "delivered"}});
    const auto& body = cmd.at("body").as_object();
    if (string_field(body, "type") == "approval") {
      std::string row_id = string_field(body, "row_id");
      std::string decision = string_field(body, "decision");
      if (decision != "approved" && decision != "denied") {
        call("POST", target,
             json::object{
                 {"status", "failed"},
                 {"result", json::object{{"error", "decision must be approved or denied"}}}});
        continue;
      }
      decisions_.emplace(row_id, decision);
      call("POST", target,
           json::object{{"status", "done"}, {"result", json::object{{"decision", decision}}}});
      log("  " + row_id + " " + decision + " by command " + id);
      continue;
    }
    const auto* text = body.if_contains("text");
    std::string said = text && text->is_string() ? std::string(text->as_string())
                                                 : json::serialize(cmd.at("body"));
    row("user-" + std::to_string(++user_rows_), "user", "complete",
        json::object{{"text", said}, {"command", id}});
    call("POST", target,
         json::object{{"status", "done"}, {"result", json::object{{"acknowledged", true}}}});
    log("  answered command " + id);
  }
}

std::optional<std::string> demo_agent::wait_for_approval(const std::string& row_id) {
  auto deadline = std::chrono::steady_clock::now() + approval_;
  for (;;) {
    call("POST", session_ + "/heartbeat", std::nullopt);
    answer_commands();
    if (auto it = decisions_.find(row_id); it != decisions_.end()) return it->second;
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, k_approval_poll));
  }
}

void demo_agent::run() {
  const std::string project = flags_.project;
  call("POST", "/v1/projects",
       json::object{{"id", project},
                    {"name", "Demo"},
                    {"description", "Sessions driven by `ordo demo`, a simulated coding agent"},
                    {"origin_url", "https://github.example/acme/" + project}},
       {201, 409});
  std::string branch = "fix/login-redirect-" + random_hex(rng_, 4);
  json::value created = call("POST", "/v1/projects/" + project + "/sessions",
                             json::object{{"agent_kind", "ordo-demo"},
                                          {"model", "simulated"},
                                          {"title", "Fix the login redirect loop"},
                                          {"branch", branch},
                                          {"workspace_path", "/work/webapp"},
                                          {"tags", json::array{"demo"}}});
  std::string id(created.at("id").as_string());
  session_ = "/v1/sessions/" + id;
  pr_number_ = 100 + created.at("number").as_int64();
  // A PR URL belongs to one session for good: one repository per project, one PR per session.
  pr_url_ = "https://github.example/acme/" + project + "/pull/" + std::to_string(pr_number_);
  log("session " + id + " (watch it at " + flags_.server + "/#/session/" + id + ")");

  call("POST", session_ + "/transition", json::object{{"to", "starting"}});
  step();
  call("POST", session_ + "/transition", json::object{{"to", "active"}});
  json::value execution = call("POST", session_ + "/executions", std::nullopt, {201});
  std::int64_t generation = execution.at("generation").as_int64();
  log("  active, execution " + std::to_string(generation));

  row("user-" + std::to_string(++user_rows_), "user", "complete",
      json::object{{"text",
                    "After signing in, the login page redirects to itself forever. Can you fix "
                    "it and open a PR?"}});
  step();
  say("msg-1",
      "I'll look at how the session cookie is set after sign-in; a redirect loop usually means "
      "the cookie never reaches the page that checks it.");
  tool("tool-1", "read_file", json::object{{"path", "src/auth/session.ts"}},
       "export const cookie = { name: 'sid', path: '/auth', httpOnly: true }");
  say("msg-2",
      "Found it: the cookie's path is /auth, so the browser never sends it to /. I'll set the "
      "path to / and run the tests.");
  tool("tool-2", "edit_file", json::object{{"path", "src/auth/session.ts"}, {"line", 1}},
       "1 line changed");

  const json::object approval{
      {"text", "Run the test suite?"}, {"tool", "bash"}, {"input", "npm test"}};
  row("approval-1", "approval_request", "pending", approval);
  log("  waiting for approval (approve or deny on the session's page)");
  auto answer = wait_for_approval("approval-1");
  std::string decision = answer.value_or("approved");
  row("approval-1", "approval_request", decision, approval);
  row("approval-1-response", "approval_response", decision,
      json::object{
          {"text", answer ? decision + " from a command"
                          : decision + " automatically after " + format_duration(approval_)}});
  step();
  if (decision == "approved") {
    tool("tool-3", "bash", json::string("npm test"), "42 passed, 0 failed");
  } else {
    say("msg-2b", "Understood, I won't run the tests here; CI will run them on the pull request.");
  }

  std::string first = random_hex(rng_, 7);
  head_commit_ = first;
  std::string ci = "https://ci.example/runs/" + random_hex(rng_, 6);
  log("  opened PR " + pr_url_);
  observe_pr("pending", "review_required",
             {check("lint", first, "queued", ci + "/lint"), check("test", first, "queued", ci)});
  observe_pr(
      "pending", "review_required",
      {check("lint", first, "in_progress", ci + "/lint"), check("test", first, "in_progress", ci)});
  observe_pr("failing", "review_required",
             {check("lint", first, "success", ci + "/lint"), check("test", first, "failure", ci)});
  log("  CI failed on " + first);
  say("msg-3",
      "CI failed: 'redirects after login' times out in the browser test because the test server "
      "still sets the old cookie path. Fixing the fixture.");
  tool("tool-4", "edit_file", json::object{{"path", "test/fixtures/server.ts"}, {"line", 18}},
       "1 line changed");

  std::string second = random_hex(rng_, 7);
  head_commit_ = second;
  std::string ci2 = "https://ci.example/runs/" + random_hex(rng_, 6);
  observe_pr("pending", "review_required",
             {check("lint", second, "in_progress", ci2 + "/lint"),
              check("test", second, "in_progress", ci2)});
  observe_pr(
      "passing", "approved",
      {check("lint", second, "success", ci2 + "/lint"), check("test", second, "success", ci2)});
  log("  CI passed on " + second);
  say("msg-4", "Done: PR #" + std::to_string(pr_number_) +
                   " sets the cookie path to /, CI is green and the review approved it.");
  call("POST", session_ + "/executions/" + std::to_string(generation) + "/finish",
       json::object{{"outcome", "completed"}});
  answer_commands();
  // The agent waits for the next request: a suspended session is not reaped.
  call("POST", session_ + "/transition", json::object{{"to", "suspended"}});
  log("done: session " + id + " is suspended, waiting for the next request");
}

}  // namespace

int demo(const demo_flags& flags) {
  auto step = parse_duration(flags.step_delay);
  auto chunk = parse_duration(flags.chunk_delay);
  auto approval = parse_duration(flags.approval_delay);
  for (const auto* d : {&step, &chunk, &approval}) {
    if (!*d) {
      std::cerr << "ordo: invalid_duration: " << d->error().message << "\n";
      return k_exit_usage;
    }
  }
  client::client_options o;
  o.url = flags.server;
  o.tls.ca_file = flags.cacert;
  auto c = client::stream_client::connect(o);
  if (!c) {
    std::cerr << "ordo: " << c.error().code << ": " << c.error().message << "\n";
    return exit_code_of(c.error());
  }
  demo_agent agent(**c, flags, *step, *chunk, *approval);
  try {
    agent.run();
  } catch (const demo_failure& e) {
    std::cerr << "ordo: " << e.f.code << ": " << e.f.message << "\n";
    return exit_code_of(e.f);
  }
  return k_exit_ok;
}

}  // namespace ordo::cli
