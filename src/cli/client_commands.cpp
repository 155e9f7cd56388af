#include "cli/client_commands.hpp"

#include <unistd.h>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "base/base64.hpp"
#include "base/duration.hpp"
#include "client/client.hpp"
#include "client/producer.hpp"
#include "client/reader.hpp"

namespace ordo::cli {

namespace json = boost::json;
using namespace std::chrono_literals;
using client::live_mode;
using client::read_event;

namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_refused = 1;
constexpr int k_exit_not_found = 3;
constexpr int k_exit_unavailable = 4;
constexpr int k_exit_not_acknowledged = 5;

std::string random_hex(int bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(rng() & 0xff));
    out += buf;
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9 || i + n >= s.size() + (n == 0)) return n == 0;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}

// The position part of an offset ("{prefix}_{position}"), for progress.
std::uint64_t position_of(const std::string& offset) {
  auto u = offset.rfind('_');
  if (u == std::string::npos) return 0;
  try {
    return std::stoull(offset.substr(u + 1));
  } catch (...) {
    return 0;
  }
}

// A progress line on stderr, only when stderr is a terminal and stdout is not (so it never
// mixes with the data).
class progress {
 public:
  explicit progress(std::string what, std::uint64_t total = 0)
      : what_(std::move(what)), total_(total), on_(::isatty(2) && !::isatty(1)) {}
  ~progress() { finish(); }
  void update(std::uint64_t done, std::uint64_t messages, std::uint64_t bytes) {
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < 100ms) return;
    last_ = now;
    std::string bar;
    if (total_ > 0) {
      int filled = static_cast<int>(30.0 * std::min<double>(1.0, double(done) / double(total_)));
      bar = "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] " +
            std::to_string(std::min<std::uint64_t>(100, done * 100 / total_)) + "%  ";
    }
    std::fprintf(stderr, "\r%s%s: %llu messages, %.1f MB ", bar.c_str(), what_.c_str(),
                 static_cast<unsigned long long>(messages), double(bytes) / 1e6);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  std::string what_;
  std::uint64_t total_;
  bool on_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int exit_code_of(const failure& f) {
  switch (f.kind) {
    case failure_kind::not_found:
    case failure_kind::gone:
      return k_exit_not_found;
    case failure_kind::unavailable:
    case failure_kind::internal:
    case failure_kind::insufficient_storage:
      return k_exit_unavailable;
    default:
      return k_exit_refused;
  }
}

struct common_flags {
  std::string server = "http://127.0.0.1:4437";
  bool json = false;
};

class client_commands {
 public:
  // Each subcommand has its own --server and --json (an option bound to a variable another
  // subcommand also binds would have its environment default applied over the flag given).
  std::map<CLI::App*, std::unique_ptr<common_flags>> commons;
  common_flags common;  // the chosen subcommand's
  // ordo stream …
  CLI::App* stream = nullptr;
  CLI::App *create = nullptr, *append = nullptr, *read = nullptr, *tail = nullptr, *head = nullptr,
           *close = nullptr, *remove = nullptr;
  std::string path, data, content_type, offset = "-1", live = "auto", producer_id, expires_at;
  std::optional<std::int64_t> ttl;
  std::optional<std::uint64_t> epoch;
  bool closed = false, lines = false, follow = false, has_data = false;
  std::size_t batch_messages = 10'000;
  std::string linger = "5ms";
  // ordo session …
  CLI::App* session = nullptr;
  CLI::App *session_list = nullptr, *session_show = nullptr, *session_tail = nullptr,
           *session_send = nullptr;
  std::string session_id, project, state, text, command_type = "user_message", key;
  // ordo changes …
  CLI::App* changes = nullptr;
  CLI::App* changes_tail = nullptr;

  int run_chosen();

 private:
  client::client_options options() const {
    client::client_options o;
    o.url = common.server;
    return o;
  }
  int fail(const failure& f) const {
    if (common.json) {
      json::object e{{"code", f.code}, {"message", f.message}};
      std::cout << json::serialize(json::object{{"error", e}}) << "\n";
    } else {
      std::cerr << "ordo: " << f.code << ": " << f.message << "\n";
    }
    return exit_code_of(f);
  }
  std::unique_ptr<client::stream_client> connect(int& code) const {
    auto c = client::stream_client::connect(options());
    if (!c) {
      code = fail(c.error());
      return nullptr;
    }
    return std::move(*c);
  }
  void print_info(const client::stream_info& i) const;
  int do_create();
  int do_append();
  int do_read(bool tail_mode);
  int do_head();
  int do_close();
  int do_remove();
  int follow_target(const std::string& target, const std::string& from, live_mode mode,
                    bool follow_live, std::uint64_t total);
  // GETs a JSON object. With --json it prints the answer as it is and returns nullopt with
  // code 0; on failure it prints the error and returns nullopt with the exit code.
  std::optional<json::object> get_object(client::stream_client& c, const std::string& target,
                                         int& code);
  int do_session_list();
  int do_session_show();
  int do_session_send();
};

void client_commands::print_info(const client::stream_info& i) const {
  if (common.json) {
    json::object o{
        {"content_type", i.content_type}, {"next_offset", i.next_offset}, {"closed", i.closed}};
    if (i.ttl_seconds) o["ttl_seconds"] = *i.ttl_seconds;
    if (i.expires_at) o["expires_at"] = *i.expires_at;
    std::cout << json::serialize(o) << "\n";
    return;
  }
  std::cout << "content type  " << i.content_type << "\n"
            << "next offset   " << i.next_offset << "\n"
            << "closed        " << (i.closed ? "yes" : "no") << "\n";
  if (i.ttl_seconds) std::cout << "ttl           " << *i.ttl_seconds << " s\n";
  if (i.expires_at) std::cout << "expires at    " << *i.expires_at << "\n";
}

int client_commands::do_create() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  client::create_options o;
  if (!content_type.empty()) o.content_type = content_type;
  o.ttl_seconds = ttl;
  if (!expires_at.empty()) o.expires_at = expires_at;
  o.closed = closed;
  if (has_data) o.initial_data = data;
  auto r = c->create(path, o);
  if (!r) return fail(r.error());
  print_info(*r);
  return k_exit_ok;
}

int client_commands::do_append() {
  client::producer_options o;
  o.path = path;
  o.producer_id = producer_id.empty() ? "ordo-cli-" + random_hex(8) : producer_id;
  o.epoch = epoch;
  o.content_type = content_type;
  o.max_batch_messages = batch_messages;
  o.linger = *parse_duration(linger);
  auto p = client::producer::start(options(), o);
  if (!p) return fail(p.error());
  std::vector<client::ticket> tickets;
  std::uint64_t bytes = 0;
  progress bar("appended");
  auto add = [&](std::string message) -> std::optional<int> {
    bytes += message.size();
    auto t = (*p)->append(std::move(message));
    if (!t) return fail(t.error());
    tickets.push_back(*t);
    bar.update(0, tickets.size(), bytes);
    return std::nullopt;
  };
  if (has_data) {
    if (auto rc = add(data)) return *rc;
  } else if (lines) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (auto rc = add(std::move(line))) return *rc;
    }
  } else {
    std::stringstream all;
    all << std::cin.rdbuf();
    if (auto rc = add(all.str())) return *rc;
  }
  auto timeout = std::chrono::milliseconds(60'000);
  auto closed_status = (*p)->close(timeout);
  bar.finish();
  std::uint64_t acked = 0, failed = 0;
  std::string last_offset;
  std::optional<failure> first_error;
  for (const auto& t : tickets) {
    if (t->state() == client::message_state::acknowledged) {
      ++acked;
      last_offset = t->offset();
    } else {
      ++failed;
      if (!first_error) first_error = t->error();
    }
  }
  if (common.json) {
    json::object out{{"acknowledged", acked}, {"failed", failed}, {"next_offset", last_offset}};
    if (first_error)
      out["error"] = json::object{{"code", first_error->code}, {"message", first_error->message}};
    std::cout << json::serialize(out) << "\n";
  } else if (failed == 0) {
    std::cout << last_offset << "\n";
  } else {
    std::cerr << "ordo: " << failed << " of " << tickets.size()
              << " messages were not acknowledged; first error: " << first_error->code << ": "
              << first_error->message << "\n";
  }
  if (failed == 0) return k_exit_ok;
  if (failed == tickets.size() && first_error) return exit_code_of(*first_error);
  return k_exit_not_acknowledged;
}

int client_commands::follow_target(const std::string& target, const std::string& from,
                                   live_mode mode, bool follow_live, std::uint64_t total) {
  client::reader_options o;
  o.target = target;
  o.offset = from;
  o.live = follow_live ? mode : live_mode::none;
  auto r = client::reader::open(options(), o);
  if (!r) return fail(r.error());
  std::uint64_t messages = 0, bytes = 0;
  progress bar("read", total);
  auto outcome = (*r)->run([&](const read_event& e) {
    if (e.what == read_event::kind::resync) {
      std::cerr << "ordo: " << e.error.code << ": " << e.error.message
                << "; reading again from the start\n";
      return true;
    }
    if (e.what == read_event::kind::up_to_date) {
      bar.finish();
      return true;
    }
    if (e.what != read_event::kind::messages) return true;
    for (const auto& m : e.messages) {
      ++messages;
      bytes += m.size();
      if (common.json) {
        json::object line{{"offset", e.offset}};
        if (e.json) {
          line["message"] = json::parse(m);
        } else if (valid_utf8(m)) {
          line["message"] = m;
        } else {
          line["message_base64"] = base64_encode(m);
        }
        std::cout << json::serialize(line) << "\n";
      } else if (e.json) {
        std::cout << m << "\n";  // one JSON value per line
      } else {
        std::cout << m;  // bytes as they are
      }
    }
    std::cout.flush();
    bar.update(position_of(e.offset), messages, bytes);
    return true;
  });
  bar.finish();
  if (!outcome) return fail(outcome.error());
  return k_exit_ok;
}

int client_commands::do_read(bool tail_mode) {
  live_mode mode = live == "sse"         ? live_mode::sse
                   : live == "long-poll" ? live_mode::long_poll
                                         : live_mode::automatic;
  std::uint64_t total = 0;
  if (!tail_mode && !follow) {
    int code = 0;
    auto c = connect(code);
    if (!c) return code;
    auto info = c->head(path);
    if (!info) return fail(info.error());
    total = position_of(info->next_offset);
  }
  std::string from = tail_mode && tail->count("--offset") == 0 ? "now" : offset;
  return follow_target(client::stream_client::stream_target(path), from, mode, tail_mode || follow,
                       total);
}

int client_commands::do_head() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  auto r = c->head(path);
  if (!r) return fail(r.error());
  print_info(*r);
  return k_exit_ok;
}

int client_commands::do_close() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  auto r = c->close(path);
  if (!r) return fail(r.error());
  if (common.json) {
    std::cout << json::serialize(json::object{{"next_offset", r->next_offset}, {"closed", true}})
              << "\n";
  } else {
    std::cout << r->next_offset << "\n";
  }
  return k_exit_ok;
}

int client_commands::do_remove() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  if (auto r = c->remove(path); !r) return fail(r.error());
  if (common.json) std::cout << json::serialize(json::object{{"deleted", path}}) << "\n";
  return k_exit_ok;
}

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

int client_commands::run_chosen() {
  for (const auto& [cmd, flags] : commons) {
    if (cmd->parsed()) common = *flags;
  }
  if (create->parsed()) return do_create();
  if (append->parsed()) return do_append();
  if (read->parsed()) return do_read(false);
  if (tail->parsed()) return do_read(true);
  if (head->parsed()) return do_head();
  if (close->parsed()) return do_close();
  if (remove->parsed()) return do_remove();
  if (session_list->parsed()) return do_session_list();
  if (session_show->parsed()) return do_session_show();
  if (session_send->parsed()) return do_session_send();
  if (session_tail->parsed()) {
    return follow_target("/v1/sessions/" + query_escape(session_id) + "/events", offset,
                         live_mode::automatic, true, 0);
  }
  if (changes_tail->parsed()) {
    std::string from = changes_tail->count("--offset") == 0 ? "now" : offset;
    return follow_target("/v1/changes", from, live_mode::automatic, true, 0);
  }
  return 2;
}

std::shared_ptr<client_commands> add_client_commands(CLI::App& app) {
  auto c = std::make_shared<client_commands>();
  auto common = [&](CLI::App* cmd) {
    auto& flags = c->commons[cmd];
    flags = std::make_unique<common_flags>();
    cmd->add_option("--server", flags->server, "The ordo server's URL")
        ->envname("ORDO_URL")
        ->capture_default_str();
    cmd->add_flag("--json", flags->json, "Print JSON (one object per line) for scripts");
  };
  auto path = [&](CLI::App* cmd) {
    cmd->add_option("path", c->path, "The stream's path (what follows /v1/stream/)")->required();
    common(cmd);
  };

  c->stream = app.add_subcommand("stream", "Create, write, read and follow streams on a server");
  c->stream->require_subcommand(1);
  c->create = c->stream->add_subcommand("create", "Create a stream");
  path(c->create);
  c->create->add_option("--content-type", c->content_type, "Its content type")
      ->default_str("application/octet-stream");
  c->create->add_option("--ttl", c->ttl, "Seconds without a read or write before it expires");
  c->create->add_option("--expires-at", c->expires_at, "When it expires (RFC 3339)");
  c->create->add_flag("--closed", c->closed, "Create it closed");
  c->create->add_option("--data", c->data, "Its first message")->each([c](const std::string&) {
    c->has_data = true;
  });

  c->append = c->stream->add_subcommand(
      "append",
      "Append messages exactly once (an idempotent producer: batched, retried until "
      "acknowledged): DATA, each line of stdin (--lines), or all of stdin");
  path(c->append);
  c->append->add_option("data", c->data, "The message")->each([c](const std::string&) {
    c->has_data = true;
  });
  c->append->add_flag("--lines", c->lines, "Each line of stdin is one message");
  c->append->add_option("--content-type", c->content_type, "Default: the stream's");
  c->append->add_option("--producer", c->producer_id,
                        "A stable producer id (default: a new one each run)");
  c->append->add_option("--batch-messages", c->batch_messages, "Most messages in one request")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  c->append->add_option("--linger", c->linger, "How long a batch waits for more messages")
      ->check([](const std::string& text) {
        auto d = parse_duration(text);
        return d ? std::string() : d.error().message;
      })
      ->capture_default_str();
  c->append->add_option("--epoch", c->epoch,
                        "The producer's epoch (default: a fresh one claimed at start)");

  for (auto** cmd : {&c->read, &c->tail}) {
    bool is_tail = cmd == &c->tail;
    *cmd = c->stream->add_subcommand(is_tail ? "tail" : "read",
                                     is_tail ? "Follow a stream live from its tail (or --offset)"
                                             : "Read a stream from an offset to its tail");
    path(*cmd);
    (*cmd)
        ->add_option("--offset", c->offset, "Where to start: -1 (the start), now, or an offset")
        ->capture_default_str();
    (*cmd)
        ->add_option("--live", c->live,
                     "How to follow: auto (SSE, else long-poll), sse, "
                     "long-poll")
        ->check(CLI::IsMember({"auto", "sse", "long-poll"}))
        ->capture_default_str();
    if (!is_tail) (*cmd)->add_flag("--follow,-f", c->follow, "Keep following after the tail");
  }
  c->head = c->stream->add_subcommand("head", "Show a stream's metadata");
  path(c->head);
  c->close = c->stream->add_subcommand("close", "Close a stream (no more appends)");
  path(c->close);
  c->remove = c->stream->add_subcommand("delete", "Delete a stream");
  path(c->remove);

  c->session = app.add_subcommand("session", "List, show, follow and message agent sessions");
  c->session->require_subcommand(1);
  c->session_list = c->session->add_subcommand("list", "List sessions, newest first");
  common(c->session_list);
  c->session_list->add_option("--project", c->project, "Only this project's");
  c->session_list->add_option("--state", c->state, "Only sessions in this state");
  c->session_show = c->session->add_subcommand("show", "Show one session");
  c->session_show->add_option("id", c->session_id, "The session id")->required();
  common(c->session_show);
  c->session_tail = c->session->add_subcommand("tail", "Follow a session's events");
  c->session_tail->add_option("id", c->session_id, "The session id")->required();
  c->session_tail->add_option("--offset", c->offset, "Where to start: -1, now, or an offset")
      ->capture_default_str();
  common(c->session_tail);
  c->session_send = c->session->add_subcommand(
      "send", "Send a command to a session (sent once, even if retried)");
  c->session_send->add_option("id", c->session_id, "The session id")->required();
  c->session_send->add_option("text", c->text, "The message")->required();
  c->session_send->add_option("--type", c->command_type, "The command's type")
      ->capture_default_str();
  c->session_send->add_option("--key", c->key,
                              "Idempotency-Key (default: a new one; give one to retry safely "
                              "across runs)");
  common(c->session_send);

  c->changes = app.add_subcommand("changes", "Follow the change feed");
  c->changes->require_subcommand(1);
  c->changes_tail = c->changes->add_subcommand("tail", "Follow every change, live");
  c->changes_tail->add_option("--offset", c->offset, "Where to start: -1, now, or an offset")
      ->default_str("now");
  common(c->changes_tail);
  return c;
}

std::optional<int> run(client_commands& commands) {
  if (!commands.stream->parsed() && !commands.session->parsed() && !commands.changes->parsed()) {
    return std::nullopt;
  }
  return commands.run_chosen();
}

}  // namespace ordo::cli
