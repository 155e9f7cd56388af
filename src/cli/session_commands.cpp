// `ordo session …` (list, show, tail, send a command) and `ordo changes tail`: the session
// API's commands, printing its JSON as tables or as it is (--json).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>
#include <thread>

#include "cli/client_commands_internal.hpp"

namespace ordo::cli {

using client::live_mode;

namespace {

std::string field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

// Prints rows as columns padded to the widest cell.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i)
    width[i] = header[i].size();
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::cout << cells[i];
      if (i + 1 < cells.size()) std::cout << std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << "\n";
  };
  line(header);
  for (const auto& r : rows)
    line(r);
}

std::string query_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

int client_commands::do_session_list() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  std::string target = "/v1/sessions?limit=200";
  if (!project.empty()) target += "&project=" + query_escape(project);
  if (!state.empty()) target += "&state=" + query_escape(state);
  auto v = get_object(*c, target, code);
  if (!v) return code;
  if (!v->contains("sessions") || !v->at("sessions").is_array()) {
    return fail(make_failure(failure_kind::internal, "invalid_response",
                             "the session list is not the expected JSON"));
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : v->at("sessions").as_array()) {
    const auto& o = s.as_object();
    rows.push_back({field(o, "id"), field(o, "project"), field(o, "state"),
                    field(o, "client_state"), field(o, "agent_kind"), field(o, "branch"),
                    field(o, "updated_at")});
  }
  print_table({"ID", "PROJECT", "STATE", "CLIENT STATE", "AGENT", "BRANCH", "UPDATED"}, rows);
  return k_exit_ok;
}

int client_commands::do_session_show() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  auto v = get_object(*c, "/v1/sessions/" + query_escape(session_id), code);
  if (!v) return code;
  std::size_t width = 0;
  for (const auto& [k, val] : *v)
    width = std::max(width, k.size());
  for (const auto& [k, val] : *v)
    std::cout << std::string(k) << std::string(width - k.size() + 2, ' ') << field(*v, k) << "\n";
  return k_exit_ok;
}

std::optional<json::object> client_commands::get_object(client::stream_client& c,
                                                        const std::string& target, int& code) {
  auto r = c.send({"GET", target, {}, "", true});
  if (!r) {
    code = fail(r.error());
    return std::nullopt;
  }
  if (r->status != 200) {
    code = fail(client::failure_from_response(*r));
    return std::nullopt;
  }
  if (common.json) {
    std::cout << r->body << "\n";  // as the server answered it
    code = k_exit_ok;
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) {
    code = fail(make_failure(failure_kind::internal, "invalid_response",
                             "the server's answer to " + target + " is not a JSON object"));
    return std::nullopt;
  }
  return std::move(v.as_object());
}

int client_commands::do_session_send() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  std::string idempotency_key = key.empty() ? "ordo-cli-" + random_hex(12) : key;
  json::object body{{"type", command_type}, {"text", text}};
  client::http_request req{
      "POST",
      "/v1/sessions/" + query_escape(session_id) + "/commands",
      {{"Content-Type", "application/json"}, {"Idempotency-Key", idempotency_key}},
      json::serialize(body),
      true};
  // The Idempotency-Key makes a retry safe: the server answers it with the same receipt.
  client::retry_policy policy;
  std::mt19937_64 rng{std::random_device{}()};
  for (int attempt = 0;; ++attempt) {
    auto r = c->send(req);
    if (r && r->status == 202) {
      if (common.json) {
        std::cout << r->body << "\n";
      } else {
        boost::system::error_code ec;
        json::value v = json::parse(r->body, ec);
        std::cout << (ec || !v.is_object() ? r->body : field(v.as_object(), "id")) << "\n";
      }
      return k_exit_ok;
    }
    failure f = r ? client::failure_from_response(*r) : r.error();
    if (!client::is_retryable(f) || attempt >= 5) return fail(f);
    std::this_thread::sleep_for(policy.wait_before(attempt, f, rng));
  }
}

int client_commands::do_session_tail() {
  return follow_target("/v1/sessions/" + query_escape(session_id) + "/events", offset,
                       live_mode::automatic, true, 0);
}

int client_commands::do_changes_tail() {
  std::string from = changes_tail->count("--offset") == 0 ? "now" : offset;
  return follow_target("/v1/changes", from, live_mode::automatic, true, 0);
}

void add_session_commands(CLI::App& app, const std::shared_ptr<client_commands>& c) {
  c->session = app.add_subcommand("session", "List, show, follow and message agent sessions");
  c->session->require_subcommand(1);
  c->session_list = c->session->add_subcommand("list", "List sessions, newest first");
  add_common_flags(*c, c->session_list);
  c->session_list->add_option("--project", c->project, "Only this project's");
  c->session_list->add_option("--state", c->state, "Only sessions in this state");
  c->session_show = c->session->add_subcommand("show", "Show one session");
  c->session_show->add_option("id", c->session_id, "The session id")->required();
  add_common_flags(*c, c->session_show);
  c->session_tail = c->session->add_subcommand("tail", "Follow a session's events");
  c->session_tail->add_option("id", c->session_id, "The session id")->required();
  c->session_tail->add_option("--offset", c->offset, "Where to start: -1, now, or an offset")
      ->capture_default_str();
  add_common_flags(*c, c->session_tail);
  c->session_send = c->session->add_subcommand(
      "send", "Send a command to a session (sent once, even if retried)");
  c->session_send->add_option("id", c->session_id, "The session id")->required();
  c->session_send->add_option("text", c->text, "The message")->required();
  c->session_send->add_option("--type", c->command_type, "The command's type")
      ->capture_default_str();
  c->session_send->add_option("--key", c->key,
                              "Idempotency-Key (default: a new one; give one to retry safely "
                              "across runs)");
  add_common_flags(*c, c->session_send);

  c->changes = app.add_subcommand("changes", "Follow the change feed");
  c->changes->require_subcommand(1);
  c->changes_tail = c->changes->add_subcommand("tail", "Follow every change, live");
  c->changes_tail->add_option("--offset", c->offset, "Where to start: -1, now, or an offset")
      ->default_str("now");
  add_common_flags(*c, c->changes_tail);
}

}  // namespace ordo::cli
