#include "sessions/session_service.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <future>

#include "base/rfc3339.hpp"
#include "base/utf8.hpp"
#include "sessions/lifecycle.hpp"
#include "storage/sqlite/session_tables.hpp"
#include "streams/offset.hpp"

namespace ordo::sessions {

namespace json = boost::json;
using sqlite::session_tables;

namespace {

constexpr std::string_view k_events_content_type = "application/json";
constexpr std::string_view k_command_id_infix = "-c";

failure invalid(std::string code, std::string message) {
  return make_failure(failure_kind::invalid, std::move(code), std::move(message));
}

failure not_found(std::string what, std::string_view id) {
  return make_failure(failure_kind::not_found, what + "_not_found",
                      "no " + what + " '" + std::string(id) + "'");
}

json::value optional_text(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value optional_time(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(format_rfc3339_ms(*ms)) : json::value(nullptr);
}

// The canonical text of a JSON value: members of every object sorted by key, no whitespace.
// Idempotent retries compare requests in this form, so member order and formatting don't matter.
json::value sorted(const json::value& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, json::value>> members;
    for (const auto& [k, x] : v.as_object())
      members.emplace_back(std::string(k), sorted(x));
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    json::object o;
    for (auto& [k, x] : members)
      o[k] = std::move(x);
    return o;
  }
  if (v.is_array()) {
    json::array a;
    for (const auto& x : v.as_array())
      a.push_back(sorted(x));
    return a;
  }
  return v;
}

std::string canonical_json(const json::value& v) {
  return json::serialize(sorted(v));
}

json::value parse_stored(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value(text) : v;
}

// ---- JSON views of rows ----------------------------------------------------------------------

json::object project_json(const sqlite::project_row& p) {
  json::object o;
  o["id"] = p.id;
  o["name"] = p.name;
  o["repo_path"] = optional_text(p.repo_path);
  o["origin_url"] = optional_text(p.origin_url);
  o["description"] = optional_text(p.description);
  o["archived"] = p.archived_at_ms.has_value();
  o["archived_at"] = optional_time(p.archived_at_ms);
  o["created_at"] = format_rfc3339_ms(p.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(p.updated_at_ms);
  o["revision"] = p.revision;
  return o;
}

json::object session_json(const sqlite::session_row& s) {
  json::object o;
  o["id"] = s.id;
  o["project"] = s.project_id;
  o["number"] = s.number;
  o["state"] = s.state;
  // An ended session asks nothing of anyone, whatever its rows say.
  bool ended = s.state == to_string(session_state::ended);
  o["client_state"] = std::string(
      to_string(ended ? client_state::idle
                      : derive_client_state(s.awaiting_approval, s.active_generation.has_value())));
  o["end_reason"] = optional_text(s.end_reason);
  o["revision"] = s.revision;
  o["agent_kind"] = optional_text(s.agent_kind);
  o["model"] = optional_text(s.model);
  o["title"] = optional_text(s.title);
  o["branch"] = optional_text(s.branch);
  o["workspace_path"] = optional_text(s.workspace_path);
  o["tags"] = parse_stored(s.tags);
  if (s.active_generation) {
    json::object e;
    e["generation"] = *s.active_generation;
    e["started_at"] = optional_time(s.active_started_at_ms);
    o["active_execution"] = std::move(e);
  } else {
    o["active_execution"] = nullptr;
  }
  o["last_heartbeat_at"] = optional_time(s.last_heartbeat_ms);
  o["created_at"] = format_rfc3339_ms(s.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(s.updated_at_ms);
  o["ended_at"] = optional_time(s.ended_at_ms);
  o["events_url"] = "/v1/sessions/" + s.id + "/events";
  return o;
}

std::string command_id(std::string_view session_id, std::int64_t seq) {
  return std::string(session_id) + std::string(k_command_id_infix) + std::to_string(seq);
}

json::object command_json(const sqlite::command_row& c) {
  json::object o;
  o["id"] = command_id(c.session_id, c.seq);
  o["session"] = c.session_id;
  o["sequence"] = c.seq;
  o["status"] = c.status;
  o["request_id"] = c.request_id;
  o["body"] = parse_stored(c.body);
  o["result"] = c.result ? parse_stored(*c.result) : json::value(nullptr);
  o["created_at"] = format_rfc3339_ms(c.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

json::object row_json(const sqlite::transcript_row& r) {
  json::object o;
  o["row_id"] = r.row_id;
  o["session"] = r.session_id;
  o["sequence"] = r.seq;
  o["kind"] = r.kind;
  o["status"] = r.status;
  o["body"] = parse_stored(r.body);
  o["revision"] = r.revision;
  o["created_at"] = format_rfc3339_ms(r.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(r.updated_at_ms);
  return o;
}

json::object execution_json(const sqlite::execution_row& e) {
  json::object o;
  o["generation"] = e.generation;
  o["started_at"] = format_rfc3339_ms(e.started_at_ms);
  o["finished_at"] = optional_time(e.finished_at_ms);
  o["finish_reason"] = optional_text(e.finish_reason);
  return o;
}

// ---- request bodies --------------------------------------------------------------------------

// Reads typed fields of a JSON object body, refusing unknown fields and wrong types with a
// message naming the field and what it must be.
class body_reader {
 public:
  static result<body_reader> of(const json::value& body, std::vector<std::string_view> known) {
    if (!body.is_object()) return invalid("invalid_body", "the request body must be a JSON object");
    for (const auto& [key, value] : body.as_object()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (auto k : known)
          list += (list.empty() ? "" : ", ") + std::string(k);
        return invalid("unknown_field",
                       "unknown field '" + std::string(key) + "'; this request accepts: " + list);
      }
    }
    return body_reader(body.as_object());
  }

  bool has(std::string_view key) const { return o_.contains(key); }

  // Absent: nullopt. Present: a string (or null when nullable, giving an empty optional inside).
  result<std::optional<std::optional<std::string>>> text(std::string_view key, bool nullable,
                                                         std::size_t max_bytes) const {
    auto it = o_.find(key);
    if (it == o_.end()) return std::optional<std::optional<std::string>>();
    if (it->value().is_null() && nullable) {
      return std::optional<std::optional<std::string>>(std::optional<std::string>());
    }
    if (!it->value().is_string()) {
      return invalid("invalid_field", "field '" + std::string(key) + "' must be a string" +
                                          (nullable ? " or null" : ""));
    }
    const auto& s = it->value().as_string();
    if (s.size() > max_bytes) {
      return invalid("invalid_field", "field '" + std::string(key) + "' is longer than " +
                                          std::to_string(max_bytes) + " bytes");
    }
    return std::optional<std::optional<std::string>>(std::string(s));
  }

  result<std::string> required_text(std::string_view key, std::size_t max_bytes) const {
    auto v = text(key, false, max_bytes);
    if (!v) return std::move(v).error();
    if (!*v || !**v || (**v)->empty()) {
      return invalid("missing_field", "field '" + std::string(key) + "' is required");
    }
    return ***v;
  }

  const json::value* raw(std::string_view key) const {
    auto it = o_.find(key);
    return it == o_.end() ? nullptr : &it->value();
  }

 private:
  explicit body_reader(json::object o) : o_(std::move(o)) {}
  json::object o_;  // a copy: callers may pass temporaries
};

bool valid_slug(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return s.back() != '-';
}

std::string slug_from(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 48) break;
  }
  while (!out.empty() && out.back() == '-')
    out.pop_back();
  return out;
}

result<std::string> tags_from(const json::value& v) {
  if (!v.is_array()) return invalid("invalid_field", "field 'tags' must be an array of strings");
  const auto& a = v.as_array();
  if (a.size() > k_max_tags) {
    return invalid("invalid_field", "at most " + std::to_string(k_max_tags) + " tags");
  }
  for (const auto& t : a) {
    if (!t.is_string() || t.as_string().empty() || t.as_string().size() > k_max_tag_bytes) {
      return invalid("invalid_field", "each tag must be a non-empty string of at most " +
                                          std::to_string(k_max_tag_bytes) + " bytes");
    }
  }
  return json::serialize(a);
}

// ---- session mutations -----------------------------------------------------------------------

struct event {
  std::string type;
  json::object data;
};

failure stale_revision(const sqlite::session_row& s, std::int64_t expected) {
  failure f = make_failure(failure_kind::precondition_failed, "revision_mismatch",
                           "If-Match names revision " + std::to_string(expected) +
                               " but the session is at revision " + std::to_string(s.revision) +
                               "; re-read it and retry");
  f.with("current_revision", std::to_string(s.revision));
  return f;
}

failure illegal_transition(session_state from, session_state to) {
  std::string allowed = "[";
  std::string names;
  for (session_state t : allowed_transitions(from)) {
    allowed += (allowed.size() > 1 ? ",\"" : "\"") + std::string(to_string(t)) + "\"";
    names += (names.empty() ? "" : ", ") + std::string(to_string(t));
  }
  allowed += "]";
  failure f =
      make_failure(failure_kind::conflict, "illegal_transition",
                   "a session cannot go from " + std::string(to_string(from)) + " to " +
                       std::string(to_string(to)) + "; allowed from " +
                       std::string(to_string(from)) + ": " + (names.empty() ? "none" : names));
  f.with("from", "\"" + std::string(to_string(from)) + "\"");
  f.with("to", "\"" + std::string(to_string(to)) + "\"");
  f.with("allowed", allowed);
  return f;
}

failure session_ended(const sqlite::session_row& s) {
  failure f = make_failure(failure_kind::conflict, "session_ended",
                           "session '" + s.id + "' has ended (" + s.end_reason.value_or("?") +
                               "); it accepts no more changes");
  f.with("end_reason", "\"" + s.end_reason.value_or("") + "\"");
  return f;
}

// Finishes the active execution and interrupts pending commands: what losing the agent means.
status release_agent_work(write_context& ctx, session_tables& t, const sqlite::session_row& s,
                          std::string_view execution_reason, std::vector<event>& events) {
  auto active = t.active_execution(s.id);
  if (!active) return std::move(active).error();
  if (*active) {
    if (auto st = t.finish_execution(s.id, (*active)->generation, ctx.now_ms(), execution_reason);
        !st) {
      return st;
    }
    json::object d;
    d["generation"] = (*active)->generation;
    d["reason"] = std::string(execution_reason);
    events.push_back({"execution.finished", std::move(d)});
  }
  auto pending = t.pending_commands(s.id);
  if (!pending) return std::move(pending).error();
  for (auto& c : *pending) {
    if (auto st = t.update_command_status(s.id, c.seq, "interrupted", std::nullopt, ctx.now_ms());
        !st) {
      return st;
    }
    c.status = "interrupted";
    c.updated_at_ms = ctx.now_ms();
    json::object d;
    d["command"] = command_json(c);
    events.push_back({"command.updated", std::move(d)});
  }
  return ok_v;
}

status apply_transition(write_context& ctx, session_tables& t, sqlite::session_row& s,
                        session_state to, std::string_view cause, std::vector<event>& events) {
  session_state from = *parse_session_state(s.state);
  if (!transition_allowed(from, to)) return illegal_transition(from, to);
  if (to == session_state::detached) {
    if (auto st = release_agent_work(ctx, t, s, "lost", events); !st) return st;
  }
  s.state = std::string(to_string(to));
  // Entering a state that expects heartbeats starts the reaper's clock afresh.
  if (expects_heartbeat(to)) s.last_heartbeat_ms = ctx.now_ms();
  json::object d;
  d["from"] = std::string(to_string(from));
  d["to"] = std::string(to_string(to));
  d["cause"] = std::string(cause);
  events.push_back({"session.transitioned", std::move(d)});
  return ok_v;
}

status apply_end(write_context& ctx, session_tables& t, sqlite::session_row& s, end_reason reason,
                 std::string_view cause, std::vector<event>& events) {
  session_state from = *parse_session_state(s.state);
  if (auto st = release_agent_work(ctx, t, s, "session_ended", events); !st) return st;
  s.state = std::string(to_string(session_state::ended));
  s.end_reason = std::string(to_string(reason));
  s.ended_at_ms = ctx.now_ms();
  json::object d;
  d["from"] = std::string(to_string(from));
  d["reason"] = std::string(to_string(reason));
  d["cause"] = std::string(cause);
  events.push_back({"session.ended", std::move(d)});
  return ok_v;
}

// Appends one event to the change feed: {offset, type, project, session, revision, at, data}.
// `offset` is the feed offset just after the event, where a reader that has processed it
// resumes. The feed stream is created on first use, in the same transaction.
status append_change(write_context& ctx, std::string_view type, std::string_view project,
                     const std::optional<std::string>& session,
                     std::optional<std::int64_t> revision, const json::object& data) {
  auto feed = ctx.find_stream(session_service::k_changes_stream_path);
  if (!feed) return std::move(feed).error();
  if (!*feed) {
    auto created = ctx.create_stream(std::string(session_service::k_changes_stream_path),
                                     std::string(k_events_content_type));
    if (!created) return std::move(created).error();
    *feed = *created;
  }
  auto offset = ctx.next_offset(**feed);
  if (!offset) return std::move(offset).error();
  json::object change;
  change["offset"] = format_offset(*offset);
  change["type"] = std::string(type);
  change["project"] = std::string(project);
  change["session"] = optional_text(session);
  change["revision"] = revision ? json::value(*revision) : json::value(nullptr);
  change["at"] = format_rfc3339_ms(ctx.now_ms());
  change["data"] = data;
  auto appended = ctx.append(**feed, json::serialize(change));
  if (!appended) return std::move(appended).error();
  return ok_v;
}

// Bumps the revision, stores the session, appends the events (all carrying the new revision)
// to the session's stream and to the change feed, and closes the session's stream when it has
// ended. Nothing happens without events: an update that changes nothing emits nothing.
status commit_session_change(write_context& ctx, session_tables& t, sqlite::session_row& s,
                             std::vector<event>& events) {
  if (events.empty()) return ok_v;
  s.revision += 1;
  s.updated_at_ms = ctx.now_ms();
  if (auto st = t.update_session(s); !st) return st;
  std::string at = format_rfc3339_ms(ctx.now_ms());
  for (auto& e : events) {
    if (auto st = append_change(ctx, e.type, s.project_id, s.id, s.revision, e.data); !st) {
      return st;
    }
    json::object envelope;
    envelope["type"] = e.type;
    envelope["session"] = s.id;
    envelope["revision"] = s.revision;
    envelope["at"] = at;
    envelope["data"] = std::move(e.data);
    auto appended = ctx.append(s.events_stream_id, json::serialize(envelope));
    if (!appended) return std::move(appended).error();
  }
  if (s.state == to_string(session_state::ended)) return ctx.close(s.events_stream_id);
  return ok_v;
}

// Loads a session for a mutation and checks If-Match.
result<sqlite::session_row> load_for_change(session_tables& t, std::string_view id,
                                            std::optional<std::int64_t> if_match) {
  auto s = t.session(id);
  if (!s) return std::move(s).error();
  if (!*s) return not_found("session", id);
  if (if_match && *if_match != (*s)->revision) return stale_revision(**s, *if_match);
  return std::move(**s);
}

result<reply> session_reply(session_tables& t, std::string_view id, reply_kind kind) {
  auto s = t.session(id);
  if (!s) return std::move(s).error();
  if (!*s) return not_found("session", id);
  return reply{kind, session_json(**s), (*s)->revision, false};
}

result<std::int64_t> parse_command_seq(std::string_view session_id, std::string_view command) {
  std::string prefix = std::string(session_id) + std::string(k_command_id_infix);
  if (command.substr(0, prefix.size()) != prefix) return not_found("command", command);
  std::string_view digits = command.substr(prefix.size());
  if (digits.empty() || digits.size() > 18) return not_found("command", command);
  std::int64_t seq = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return not_found("command", command);
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

}  // namespace

// ---- plumbing --------------------------------------------------------------------------------

namespace {

using write_fn = std::function<result<reply>(write_context&, session_tables&)>;
using read_fn = std::function<result<reply>(sqlite::read_context&, session_tables&)>;

void run_write(stream_engine& engine, write_fn fn, reply_callback done, std::size_t bytes = 0) {
  auto outcome = std::make_shared<std::optional<result<reply>>>();
  write_job job;
  job.bytes = bytes;
  job.run = [fn = std::move(fn), outcome](write_context& ctx) -> status {
    session_tables t(ctx.statements());
    outcome->emplace(fn(ctx, t));
    if (**outcome) return ok_v;
    return (*outcome)->error();
  };
  auto shared_done = std::make_shared<reply_callback>(std::move(done));
  job.done = [outcome, shared_done](const std::optional<failure>& f) {
    if (f) {
      (*shared_done)(*f);
    } else {
      (*shared_done)(std::move(**outcome));
    }
  };
  if (!engine.submit(std::move(job))) {
    (*shared_done)(make_failure(failure_kind::unavailable, "write_queue_full",
                                "the server is busy writing; retry shortly"));
  }
}

void run_read(stream_engine& engine, read_fn fn, reply_callback done) {
  auto shared_done = std::make_shared<reply_callback>(std::move(done));
  bool queued = engine.read_with(
      [fn = std::move(fn), shared_done, e = &engine](sqlite::read_context& ctx) {
        session_tables t(ctx.statements);
        result<reply> r = fn(ctx, t);
        // What the queries saw may be committed but not yet on disk: answer once it is.
        if (auto durable = e->await_durable(); !durable) r = std::move(durable).error();
        (*shared_done)(std::move(r));
      },
      [shared_done](const failure& f) { (*shared_done)(f); });
  if (!queued) {
    (*shared_done)(make_failure(failure_kind::unavailable, "read_queue_full",
                                "too many reads are waiting; retry shortly"));
  }
}

}  // namespace

session_service::session_service(stream_engine& engine, session_service_options options)
    : engine_(engine), options_(options) {}

session_service::~session_service() {
  stop();
}

std::string session_service::events_stream_path(std::string_view session_id) {
  return "__ordo/sessions/" + std::string(session_id) + "/events";
}

void session_service::start() {
  ensure_change_feed();
  // A replacement database without a change feed gets one (submitted, not waited for: the hook
  // runs on the writer thread).
  engine_.on_adopted([this] { submit_change_feed_job({}); });
  reap_once();
  reaper_ = std::thread([this] { reaper_loop(); });
}

void session_service::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  engine_.on_adopted(nullptr);
}

namespace {
// A PR with its checks and comments (defined with the pull-request code below).
result<json::object> pr_view(session_tables& t, const sqlite::pr_row& p);
}  // namespace

void session_service::ensure_change_feed() {
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  if (submit_change_feed_job([finished] { finished->set_value(); })) future.wait();
}

bool session_service::submit_change_feed_job(std::function<void()> then) {
  write_job job;
  job.run = [](write_context& ctx) -> status {
    auto feed = ctx.find_stream(k_changes_stream_path);
    if (!feed) return std::move(feed).error();
    if (*feed) return ok_v;
    auto created =
        ctx.create_stream(std::string(k_changes_stream_path), std::string(k_events_content_type));
    if (!created) return std::move(created).error();
    return ok_v;
  };
  job.done = [this, then = std::move(then)](const std::optional<failure>& f) {
    if (f) {
      background_.change_feed_failures.add();
      spdlog::error("cannot create the change feed: {}", f->message);
    }
    if (then) then();
  };
  return engine_.submit(std::move(job));
}

void session_service::counts(std::function<void(result<session_counts>)> done) {
  auto shared_done = std::make_shared<std::function<void(result<session_counts>)>>(std::move(done));
  // Metrics may show a commit whose flush is still running: nothing is answered from them that
  // a client could act on, so this read does not wait for durability.
  bool queued = engine_.read_with(
      [shared_done](sqlite::read_context& ctx) {
        session_tables t(ctx.statements);
        auto states = t.sessions_by_state();
        if (!states) return (*shared_done)(std::move(states).error());
        auto statuses = t.commands_by_status();
        if (!statuses) return (*shared_done)(std::move(statuses).error());
        auto count_of = [](const auto& rows, std::string_view name) -> std::int64_t {
          for (const auto& [key, n] : rows)
            if (key == name) return n;
          return 0;
        };
        session_counts out;
        for (std::string_view state : all_state_names())
          out.sessions_by_state.emplace_back(std::string(state), count_of(*states, state));
        for (std::string_view status : k_command_statuses)
          out.commands_by_status.emplace_back(std::string(status), count_of(*statuses, status));
        (*shared_done)(std::move(out));
      },
      [shared_done](const failure& f) { (*shared_done)(f); });
  if (!queued) {
    (*shared_done)(make_failure(failure_kind::unavailable, "read_queue_full",
                                "too many reads are waiting; retry shortly"));
  }
}

void session_service::changes_snapshot(reply_callback done) {
  run_read(
      engine_,
      [](sqlite::read_context& ctx, session_tables& t) -> result<reply> {
        std::uint64_t epoch = ctx.database_epoch;
        // One read transaction: the entities and the feed offset agree.
        auto read = sqlite::read_transaction::begin(ctx.db);
        if (!read) return std::move(read).error();
        // Live (not archived) projects; a live session may belong to an archived project,
        // which GET /v1/projects/{id} still resolves.
        auto projects = t.projects(false);
        if (!projects) return std::move(projects).error();
        auto sessions = t.live_sessions();
        if (!sessions) return std::move(sessions).error();

        auto feed = t.stream_by_path(k_changes_stream_path);
        if (!feed) return std::move(feed).error();
        std::int64_t tail = 0, incarnation = 0;
        if (*feed) {
          auto tl = t.stream_tail(**feed);
          if (!tl) return std::move(tl).error();
          auto inc = t.stream_incarnation(**feed);
          if (!inc) return std::move(inc).error();
          tail = *tl;
          incarnation = *inc;
        }
        json::array project_array, session_array, pr_array;
        for (const auto& p : *projects)
          project_array.push_back(project_json(p));
        for (const auto& s : *sessions) {
          session_array.push_back(session_json(s));
          auto prs = t.prs_of_session(s.id);
          if (!prs) return std::move(prs).error();
          for (const auto& pr : *prs) {
            auto view = pr_view(t, pr);
            if (!view) return std::move(view).error();
            pr_array.push_back(std::move(*view));
          }
        }
        json::object o;
        o["projects"] = std::move(project_array);
        o["sessions"] = std::move(session_array);
        o["prs"] = std::move(pr_array);
        o["offset"] =
            format_offset({offset_prefix_for(epoch, static_cast<std::uint64_t>(incarnation)),
                           static_cast<std::uint64_t>(tail)});
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

// ---- projects --------------------------------------------------------------------------------

void session_service::create_project(json::value body, reply_callback done) {
  run_write(
      engine_,
      [body = std::move(body)](write_context& ctx, session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"id", "name", "repo_path", "origin_url", "description"});
        if (!r) return std::move(r).error();
        auto name = r->required_text("name", k_max_text_field_bytes);
        if (!name) return std::move(name).error();
        auto id = r->text("id", false, 63);
        if (!id) return std::move(id).error();
        std::string slug = *id && **id ? ***id : slug_from(*name);
        if (!valid_slug(slug)) {
          return invalid("invalid_project_id",
                         "project id '" + slug +
                             "' must be 1-63 characters of a-z, 0-9 and '-', starting and "
                             "ending with a letter or digit" +
                             (*id ? "" : " (derived from the name; send an id)"));
        }
        sqlite::project_row p;
        p.id = slug;
        p.name = *name;
        for (auto [field, target] :
             {std::pair{"repo_path", &p.repo_path}, std::pair{"origin_url", &p.origin_url},
              std::pair{"description", &p.description}}) {
          auto v = r->text(field, true, k_max_text_field_bytes);
          if (!v) return std::move(v).error();
          if (*v) *target = **v;
        }
        p.created_at_ms = p.updated_at_ms = ctx.now_ms();
        auto existing = t.project(slug);
        if (!existing) return std::move(existing).error();
        if (*existing) {
          return make_failure(failure_kind::conflict, "project_exists",
                              "a project with id '" + slug + "' already exists");
        }
        if (auto s = t.insert_project(p); !s) return std::move(s).error();
        json::object d;
        d["project"] = project_json(p);
        if (auto s = append_change(ctx, "project.created", p.id, std::nullopt, std::nullopt, d);
            !s) {
          return std::move(s).error();
        }
        return reply{reply_kind::created, project_json(p), std::nullopt, false};
      },
      std::move(done));
}

void session_service::list_projects(bool include_archived, reply_callback done) {
  run_read(
      engine_,
      [include_archived](sqlite::read_context&, session_tables& t) -> result<reply> {
        auto rows = t.projects(include_archived);
        if (!rows) return std::move(rows).error();
        json::array a;
        for (const auto& p : *rows)
          a.push_back(project_json(p));
        json::object o;
        o["projects"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

void session_service::get_project(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](sqlite::read_context&, session_tables& t) -> result<reply> {
        auto p = t.project(id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", id);
        return reply{reply_kind::ok, project_json(**p), std::nullopt, false};
      },
      std::move(done));
}

void session_service::archive_project(std::string id, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id)](write_context& ctx, session_tables& t) -> result<reply> {
        auto p = t.project(id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", id);
        if (!(*p)->archived_at_ms) {
          (*p)->archived_at_ms = ctx.now_ms();
          (*p)->updated_at_ms = ctx.now_ms();
          (*p)->revision += 1;
          if (auto s = t.update_project(**p); !s) return std::move(s).error();
          json::object d;
          d["project"] = project_json(**p);
          if (auto s = append_change(ctx, "project.archived", id, std::nullopt, std::nullopt, d);
              !s) {
            return std::move(s).error();
          }
        }
        return reply{reply_kind::ok, project_json(**p), std::nullopt, false};
      },
      std::move(done));
}

// ---- sessions --------------------------------------------------------------------------------

namespace {

// Applies the typed, optional session fields present in `r` to `s`; records what changed.
status apply_session_fields(const body_reader& r, sqlite::session_row& s, json::object& changes) {
  for (auto [field, target] : {std::pair{"agent_kind", &s.agent_kind}, std::pair{"model", &s.model},
                               std::pair{"title", &s.title}, std::pair{"branch", &s.branch},
                               std::pair{"workspace_path", &s.workspace_path}}) {
    auto v = r.text(field, true, k_max_text_field_bytes);
    if (!v) return std::move(v).error();
    if (*v && **v != *target) {
      *target = **v;
      changes[field] = optional_text(*target);
    }
  }
  if (const json::value* tags = r.raw("tags")) {
    auto t = tags_from(*tags);
    if (!t) return std::move(t).error();
    if (*t != s.tags) {
      s.tags = *t;
      changes["tags"] = parse_stored(s.tags);
    }
  }
  return ok_v;
}

const std::vector<std::string_view> k_session_fields{"agent_kind", "model",          "title",
                                                     "branch",     "workspace_path", "tags"};

}  // namespace

void session_service::create_session(std::string project_id, json::value body,
                                     reply_callback done) {
  run_write(
      engine_,
      [project_id = std::move(project_id), body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto r =
            body_reader::of(body.is_null() ? json::value(json::object()) : body, k_session_fields);
        if (!r) return std::move(r).error();
        auto p = t.project(project_id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", project_id);
        if ((*p)->archived_at_ms) {
          return make_failure(failure_kind::conflict, "project_archived",
                              "project '" + project_id + "' is archived; new sessions are refused");
        }
        sqlite::session_row s;
        s.number = (*p)->next_session_number;
        (*p)->next_session_number += 1;
        if (auto st = t.update_project(**p); !st) return std::move(st).error();
        s.id = project_id + "-" + std::to_string(s.number);
        s.project_id = project_id;
        s.state = std::string(to_string(session_state::created));
        s.revision = 0;  // commit_session_change makes the first revision 1
        s.created_at_ms = s.updated_at_ms = ctx.now_ms();
        json::object changes;
        if (auto st = apply_session_fields(*r, s, changes); !st) return std::move(st).error();
        auto stream = ctx.create_stream(session_service::events_stream_path(s.id),
                                        std::string(k_events_content_type));
        if (!stream) return std::move(stream).error();
        s.events_stream_id = *stream;
        if (auto st = t.insert_session(s); !st) return std::move(st).error();
        auto inserted = t.session(s.id);
        if (!inserted) return std::move(inserted).error();
        sqlite::session_row& row = **inserted;
        row.revision = 0;
        std::vector<event> events;
        json::object d;
        d["session"] = session_json(row);
        d["session"].as_object()["revision"] = 1;  // the revision this event commits
        events.push_back({"session.created", std::move(d)});
        if (auto st = commit_session_change(ctx, t, row, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, s.id, reply_kind::created);
      },
      std::move(done));
}

void session_service::list_sessions(session_list_query q, reply_callback done) {
  run_read(
      engine_,
      [q = std::move(q)](sqlite::read_context&, session_tables& t) -> result<reply> {
        if (q.require_project) {
          auto p = t.project(*q.project_id);
          if (!p) return std::move(p).error();
          if (!*p) return not_found("project", *q.project_id);
        }
        sqlite::session_filter f;
        f.project_id = q.project_id;
        if (q.state) {
          if (!parse_session_state(*q.state)) {
            return invalid("invalid_state", "state '" + *q.state +
                                                "' is not one of created, starting, active, "
                                                "suspended, detached, closing, ended");
          }
          f.state = q.state;
        }
        if (q.client_state) {
          if (!parse_client_state(*q.client_state)) {
            return invalid("invalid_client_state",
                           "client_state '" + *q.client_state +
                               "' is not one of idle, running, requires_action");
          }
          f.client_state = q.client_state;
        }
        if (q.cursor) {
          try {
            std::size_t used = 0;
            f.before_seq = std::stoll(*q.cursor, &used);
            if (used != q.cursor->size() || *f.before_seq < 1) throw std::invalid_argument("");
          } catch (const std::exception&) {
            return invalid("invalid_cursor",
                           "cursor must be a next_cursor value returned by this list");
          }
        }
        f.limit = q.limit.value_or(k_default_session_page);
        if (f.limit < 1 || f.limit > k_max_session_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_session_page));
        }
        auto rows = t.sessions(f);
        if (!rows) return std::move(rows).error();
        json::array a;
        for (const auto& s : *rows)
          a.push_back(session_json(s));
        json::object o;
        o["sessions"] = std::move(a);
        o["next_cursor"] = static_cast<int>(rows->size()) == f.limit
                               ? json::value(std::to_string(rows->back().seq))
                               : json::value(nullptr);
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

void session_service::get_session(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](sqlite::read_context&, session_tables& t) {
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::update_session(std::string id, std::optional<std::int64_t> if_match,
                                     json::value body, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, k_session_fields);
        if (!r) return std::move(r).error();
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        json::object changes;
        if (auto st = apply_session_fields(*r, *s, changes); !st) return std::move(st).error();
        std::vector<event> events;
        if (!changes.empty()) {
          json::object d;
          d["changes"] = std::move(changes);
          events.push_back({"session.updated", std::move(d)});
        }
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::transition(std::string id, std::optional<std::int64_t> if_match,
                                 json::value body, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"to"});
        if (!r) return std::move(r).error();
        auto to_text = r->required_text("to", 32);
        if (!to_text) return std::move(to_text).error();
        auto to = parse_session_state(*to_text);
        if (!to) {
          return invalid("invalid_state",
                         "'to' must be one of starting, active, suspended, detached, closing");
        }
        if (*to == session_state::ended) {
          return invalid("use_end", "to end a session, POST /v1/sessions/{id}/end with a reason");
        }
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        std::vector<event> events;
        if (auto st = apply_transition(ctx, t, *s, *to, "api", events); !st) {
          return std::move(st).error();
        }
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::end(std::string id, std::optional<std::int64_t> if_match, json::value body,
                          reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"reason"});
        if (!r) return std::move(r).error();
        auto reason_text = r->required_text("reason", 32);
        if (!reason_text) return std::move(reason_text).error();
        auto reason = parse_end_reason(*reason_text);
        if (!reason) {
          return invalid("invalid_end_reason",
                         "'reason' must be one of completed, killed, failed, pr_merged, reaped, "
                         "cancelled");
        }
        // Ending an ended session with the same reason is a retry: answer what is stored,
        // before If-Match (the retry carries the revision the first attempt changed).
        auto current = t.session(id);
        if (!current) return std::move(current).error();
        if (*current && (*current)->state == to_string(session_state::ended)) {
          if ((*current)->end_reason != *reason_text) return session_ended(**current);
          auto reply_value = session_reply(t, id, reply_kind::ok);
          if (reply_value) reply_value->replayed = true;
          return reply_value;
        }
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        std::vector<event> events;
        if (auto st = apply_end(ctx, t, *s, *reason, "api", events); !st) {
          return std::move(st).error();
        }
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::heartbeat(std::string id, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id)](write_context& ctx, session_tables& t) -> result<reply> {
        auto s = load_for_change(t, id, std::nullopt);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        // A heartbeat is a liveness signal, not a change: it bumps no revision and emits no
        // event, unless it brings a detached session back.
        s->last_heartbeat_ms = ctx.now_ms();
        std::vector<event> events;
        if (s->state == to_string(session_state::detached)) {
          if (auto st = apply_transition(ctx, t, *s, session_state::active, "heartbeat", events);
              !st) {
            return std::move(st).error();
          }
        }
        if (events.empty()) {
          if (auto st = t.update_session(*s); !st) return std::move(st).error();
        } else if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::snapshot(std::string id, std::optional<int> row_limit, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), row_limit](sqlite::read_context& ctx,
                                      session_tables& t) -> result<reply> {
        std::uint64_t epoch = ctx.database_epoch;
        int limit = row_limit.value_or(k_default_snapshot_rows);
        if (limit < 0 || limit > k_max_row_page) {
          return invalid("invalid_rows",
                         "rows must be between 0 and " + std::to_string(k_max_row_page));
        }
        // One read transaction: the state, the rows, the commands and the event offset agree.
        auto read = sqlite::read_transaction::begin(ctx.db);
        if (!read) return std::move(read).error();
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        sqlite::row_page_query q;
        q.limit = limit + 1;
        q.newest_first = true;
        auto rows = t.rows(id, q);
        if (!rows) return std::move(rows).error();
        bool more = static_cast<int>(rows->size()) > limit;
        if (more) rows->pop_back();
        auto pending = t.pending_commands(id);
        if (!pending) return std::move(pending).error();
        auto tail = t.stream_tail((*s)->events_stream_id);
        if (!tail) return std::move(tail).error();
        auto incarnation = t.stream_incarnation((*s)->events_stream_id);
        if (!incarnation) return std::move(incarnation).error();

        json::array row_array;
        for (auto it = rows->rbegin(); it != rows->rend(); ++it)
          row_array.push_back(row_json(*it));
        json::array command_array;
        for (const auto& c : *pending)
          command_array.push_back(command_json(c));
        json::object o;
        o["session"] = session_json(**s);
        o["rows"] = std::move(row_array);
        // Page backwards from here (before=) for older rows; null when there are none.
        o["rows_before"] = !more           ? json::value(nullptr)
                           : rows->empty() ? json::value((*s)->next_row_seq)
                                           : json::value(rows->back().seq);
        o["pending_commands"] = std::move(command_array);
        o["events_offset"] =
            format_offset({offset_prefix_for(epoch, static_cast<std::uint64_t>(*incarnation)),
                           static_cast<std::uint64_t>(*tail)});
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

// ---- executions ------------------------------------------------------------------------------

void session_service::start_execution(std::string id, std::optional<std::int64_t> if_match,
                                      reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match](write_context& ctx, session_tables& t) -> result<reply> {
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        if (s->state == to_string(session_state::closing)) {
          return make_failure(failure_kind::conflict, "session_closing",
                              "session '" + id + "' is closing; no new executions start");
        }
        if (s->active_generation) {
          failure f = make_failure(failure_kind::conflict, "execution_active",
                                   "execution " + std::to_string(*s->active_generation) +
                                       " is still active; finish or abort it first");
          f.with("active_generation", std::to_string(*s->active_generation));
          return f;
        }
        sqlite::execution_row e{id, s->next_generation, ctx.now_ms(), std::nullopt, std::nullopt};
        s->next_generation += 1;
        if (auto st = t.insert_execution(e); !st) return std::move(st).error();
        std::vector<event> events;
        json::object d;
        d["generation"] = e.generation;
        events.push_back({"execution.started", std::move(d)});
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        json::object body = execution_json(e);
        return reply{reply_kind::created, std::move(body), s->revision, false};
      },
      std::move(done));
}

void session_service::finish_execution(std::string id, std::int64_t generation, bool abort,
                                       std::optional<std::int64_t> if_match, json::value body,
                                       reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), generation, abort, if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        std::string reason = abort ? "aborted" : "completed";
        std::vector<std::string_view> fields;
        if (!abort) fields.push_back("outcome");
        auto r = body_reader::of(body.is_null() ? json::value(json::object()) : body, fields);
        if (!r) return std::move(r).error();
        if (!abort) {
          auto outcome = r->text("outcome", false, 32);
          if (!outcome) return std::move(outcome).error();
          if (*outcome && **outcome) {
            reason = ***outcome;
            if (reason != "completed" && reason != "failed") {
              return invalid("invalid_outcome", "'outcome' must be completed or failed");
            }
          }
        }
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        auto e = t.execution(id, generation);
        if (!e) return std::move(e).error();
        if (!*e || (*e)->finished_at_ms) {
          failure f = make_failure(
              failure_kind::conflict, "stale_generation",
              "execution " + std::to_string(generation) +
                  (*e ? " has already finished" : " does not exist") +
                  (s->active_generation
                       ? "; the active execution is " + std::to_string(*s->active_generation)
                       : "; no execution is active"));
          f.with("active_generation", s->active_generation ? std::to_string(*s->active_generation)
                                                           : std::string("null"));
          return f;
        }
        if (auto st = t.finish_execution(id, generation, ctx.now_ms(), reason); !st) {
          return std::move(st).error();
        }
        std::vector<event> events;
        json::object d;
        d["generation"] = generation;
        d["reason"] = reason;
        events.push_back({"execution.finished", std::move(d)});
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        auto finished = t.execution(id, generation);
        if (!finished) return std::move(finished).error();
        return reply{reply_kind::ok, execution_json(**finished), s->revision, false};
      },
      std::move(done));
}

void session_service::list_executions(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](sqlite::read_context&, session_tables& t) -> result<reply> {
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto executions = t.executions(id);
        if (!executions) return std::move(executions).error();
        json::array a;
        for (const auto& e : *executions)
          a.push_back(execution_json(e));
        json::object o;
        o["executions"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

// ---- commands --------------------------------------------------------------------------------

void session_service::send_command(std::string id, std::optional<std::int64_t> if_match,
                                   std::string key, json::value body, reply_callback done) {
  std::string canonical = canonical_json(body);
  std::size_t bytes = canonical.size();
  run_write(
      engine_,
      [id = std::move(id), if_match, key = std::move(key), canonical = std::move(canonical),
       body = std::move(body)](write_context& ctx, session_tables& t) -> result<reply> {
        if (!body.is_object()) {
          return invalid("invalid_body", "a command must be a JSON object");
        }
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        // A retry with the same key is answered from what was stored, before any other check.
        auto existing = t.command_by_request(id, key);
        if (!existing) return std::move(existing).error();
        if (*existing) {
          if ((*existing)->body != canonical) {
            return make_failure(failure_kind::conflict, "idempotency_key_reused",
                                "Idempotency-Key '" + key +
                                    "' was already used for a different command in this "
                                    "session; use a new key for a new command");
          }
          return reply{reply_kind::accepted, command_json(**existing), (*s)->revision, true};
        }
        auto row = load_for_change(t, id, if_match);
        if (!row) return std::move(row).error();
        if (row->state == to_string(session_state::ended)) return session_ended(*row);
        sqlite::command_row c{id,         row->next_command_seq, key,          canonical,
                              "accepted", std::nullopt,          ctx.now_ms(), ctx.now_ms()};
        row->next_command_seq += 1;
        if (auto st = t.insert_command(c); !st) return std::move(st).error();
        std::vector<event> events;
        json::object d;
        d["command"] = command_json(c);
        events.push_back({"command.accepted", std::move(d)});
        if (auto st = commit_session_change(ctx, t, *row, events); !st) {
          return std::move(st).error();
        }
        return reply{reply_kind::accepted, command_json(c), row->revision, false};
      },
      std::move(done), bytes);
}

void session_service::update_command(std::string id, std::string command,
                                     std::optional<std::int64_t> if_match, json::value body,
                                     reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), command = std::move(command), if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"status", "result"});
        if (!r) return std::move(r).error();
        auto status_text = r->required_text("status", 32);
        if (!status_text) return std::move(status_text).error();
        const std::string& to = *status_text;
        if (to != "delivered" && to != "done" && to != "failed") {
          return invalid("invalid_command_status",
                         "'status' must be delivered, done or failed (the agent's "
                         "acknowledgements)");
        }
        std::optional<std::string> result_json;
        if (const json::value* v = r->raw("result")) result_json = json::serialize(*v);
        auto seq = parse_command_seq(id, command);
        if (!seq) return std::move(seq).error();
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        auto c = t.command(id, *seq);
        if (!c) return std::move(c).error();
        if (!*c) return not_found("command", command);
        const std::string from = (*c)->status;
        // A repeated acknowledgement is a retry, even after the session ended.
        if (from == to) {
          return reply{reply_kind::ok, command_json(**c), s->revision, true};
        }
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        // accepted -> delivered -> done | failed; accepted -> done | failed. Terminal states and
        // interrupted commands never run again.
        bool allowed = (from == "accepted") || (from == "delivered" && to != "delivered");
        if (!allowed) {
          failure f =
              make_failure(failure_kind::conflict, "illegal_command_transition",
                           "command " + command + " is " + from + " and cannot become " + to);
          f.with("from", "\"" + from + "\"");
          f.with("to", "\"" + to + "\"");
          return f;
        }
        if (auto st = t.update_command_status(id, *seq, to, result_json, ctx.now_ms()); !st) {
          return std::move(st).error();
        }
        auto updated = t.command(id, *seq);
        if (!updated) return std::move(updated).error();
        std::vector<event> events;
        json::object d;
        d["command"] = command_json(**updated);
        events.push_back({"command.updated", std::move(d)});
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return reply{reply_kind::ok, command_json(**updated), s->revision, false};
      },
      std::move(done));
}

void session_service::get_command(std::string id, std::string command, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), command = std::move(command)](sqlite::read_context&,
                                                         session_tables& t) -> result<reply> {
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto seq = parse_command_seq(id, command);
        if (!seq) return std::move(seq).error();
        auto c = t.command(id, *seq);
        if (!c) return std::move(c).error();
        if (!*c) return not_found("command", command);
        return reply{reply_kind::ok, command_json(**c), (*s)->revision, false};
      },
      std::move(done));
}

void session_service::list_commands(std::string id, std::optional<std::string> status_filter,
                                    std::optional<std::int64_t> after, std::optional<int> limit,
                                    reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), status_filter, after, limit](sqlite::read_context&,
                                                        session_tables& t) -> result<reply> {
        if (status_filter && *status_filter != "pending") {
          return invalid("invalid_status_filter", "status may only be 'pending'");
        }
        int n = limit.value_or(k_default_row_page);
        if (n < 1 || n > k_max_row_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_row_page));
        }
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto rows = t.commands(id, after.value_or(0), n, status_filter.has_value());
        if (!rows) return std::move(rows).error();
        json::array a;
        for (const auto& c : *rows)
          a.push_back(command_json(c));
        json::object o;
        o["commands"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

// ---- rows ------------------------------------------------------------------------------------

namespace {

const std::vector<std::string_view> k_row_kinds{
    "user",  "assistant", "tool_call", "tool_result", "approval_request", "approval_response",
    "system"};
const std::vector<std::string_view> k_row_statuses{"pending",  "in_progress", "complete", "failed",
                                                   "approved", "denied",      "cancelled"};

std::string joined(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto n : names)
    out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

struct row_fields {
  std::optional<std::string> row_id;
  std::optional<std::string> kind;
  std::optional<std::string> status;
  std::optional<std::string> body;            // as sent (serialized)
  std::optional<std::string> body_canonical;  // for telling a change from a repetition
};

result<row_fields> read_row_fields(const json::value& body, bool allow_row_id) {
  std::vector<std::string_view> known{"kind", "status", "body"};
  if (allow_row_id) known.push_back("row_id");
  auto r = body_reader::of(body, known);
  if (!r) return std::move(r).error();
  row_fields f;
  if (allow_row_id) {
    auto id = r->text("row_id", false, k_max_id_bytes);
    if (!id) return std::move(id).error();
    if (*id) f.row_id = **id;
  }
  auto kind = r->text("kind", false, 32);
  if (!kind) return std::move(kind).error();
  if (*kind) {
    if (std::find(k_row_kinds.begin(), k_row_kinds.end(), ***kind) == k_row_kinds.end()) {
      return invalid("invalid_row_kind", "'kind' must be one of " + joined(k_row_kinds));
    }
    f.kind = **kind;
  }
  auto status = r->text("status", false, 32);
  if (!status) return std::move(status).error();
  if (*status) {
    if (std::find(k_row_statuses.begin(), k_row_statuses.end(), ***status) ==
        k_row_statuses.end()) {
      return invalid("invalid_row_status", "'status' must be one of " + joined(k_row_statuses));
    }
    f.status = **status;
  }
  if (const json::value* b = r->raw("body")) {
    f.body = json::serialize(*b);
    f.body_canonical = canonical_json(*b);
  }
  return f;
}

// Rows appended without a row_id get "seq-{sequence}"; clients may not use that form, so a
// generated id never collides with one a client chose.
std::string generated_row_id(std::int64_t seq) {
  return "seq-" + std::to_string(seq);
}

bool is_generated_row_id(std::string_view id) {
  if (id.substr(0, 4) != "seq-" || id.size() == 4) return false;
  return std::all_of(id.begin() + 4, id.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_row_id(std::string_view id) {
  if (id.empty() || id.size() > k_max_id_bytes) return false;
  for (unsigned char c : id) {
    if (c <= 0x20 || c == '/' || c == '?' || c == '#' || c == '%' || c == 0x7f) return false;
  }
  // Row ids are echoed in JSON (rows, events): a percent-decoded path may hold any byte.
  return is_valid_utf8(id);
}

}  // namespace

void session_service::append_row(std::string id, std::optional<std::int64_t> if_match,
                                 std::optional<std::string> key, json::value body,
                                 reply_callback done) {
  std::string canonical = canonical_json(body);
  std::size_t bytes = canonical.size();
  run_write(
      engine_,
      [id = std::move(id), if_match, key = std::move(key), canonical = std::move(canonical),
       body = std::move(body)](write_context& ctx, session_tables& t) -> result<reply> {
        auto f = read_row_fields(body, true);
        if (!f) return std::move(f).error();
        if (!f->kind) return invalid("missing_field", "field 'kind' is required");
        if (!f->body) return invalid("missing_field", "field 'body' is required");
        if (f->row_id && !valid_row_id(*f->row_id)) {
          return invalid("invalid_row_id",
                         "row_id must be 1-128 bytes of printable UTF-8 without "
                         "spaces, '/', '?', '#' or '%'");
        }
        if (f->row_id && is_generated_row_id(*f->row_id)) {
          return invalid("invalid_row_id",
                         "row ids of the form seq-{number} are reserved for rows appended "
                         "without a row_id");
        }
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        if (key) {
          auto existing = t.row_by_request(id, *key);
          if (!existing) return std::move(existing).error();
          if (*existing) {
            if ((*existing)->request_body != canonical) {
              return make_failure(failure_kind::conflict, "idempotency_key_reused",
                                  "Idempotency-Key '" + *key +
                                      "' was already used for a different row in this session");
            }
            return reply{reply_kind::created, row_json(**existing), (*s)->revision, true};
          }
        }
        auto row = load_for_change(t, id, if_match);
        if (!row) return std::move(row).error();
        if (row->state == to_string(session_state::ended)) return session_ended(*row);
        sqlite::transcript_row r;
        r.session_id = id;
        r.seq = row->next_row_seq;
        row->next_row_seq += 1;
        r.row_id = f->row_id ? *f->row_id : generated_row_id(r.seq);
        auto clash = t.row_by_id(id, r.row_id);
        if (!clash) return std::move(clash).error();
        if (*clash) {
          return make_failure(failure_kind::conflict, "row_exists",
                              "row '" + r.row_id + "' already exists; PUT /rows/" + r.row_id +
                                  " updates it in place");
        }
        r.kind = *f->kind;
        r.status = f->status.value_or("complete");
        r.body = *f->body;
        r.request_id = key;
        if (key) r.request_body = canonical;
        r.created_at_ms = r.updated_at_ms = ctx.now_ms();
        if (auto st = t.insert_row(r); !st) return std::move(st).error();
        std::vector<event> events;
        json::object d;
        d["row"] = row_json(r);
        events.push_back({"row.appended", std::move(d)});
        if (auto st = commit_session_change(ctx, t, *row, events); !st) {
          return std::move(st).error();
        }
        return reply{reply_kind::created, row_json(r), row->revision, false};
      },
      std::move(done), bytes);
}

void session_service::upsert_row(std::string id, std::string row_id,
                                 std::optional<std::int64_t> if_match, json::value body,
                                 reply_callback done) {
  std::size_t bytes = json::serialize(body).size();
  run_write(
      engine_,
      [id = std::move(id), row_id = std::move(row_id), if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        if (!valid_row_id(row_id)) {
          return invalid("invalid_row_id",
                         "row_id must be 1-128 bytes of printable UTF-8 without "
                         "spaces, '/', '?', '#' or '%'");
        }
        auto f = read_row_fields(body, false);
        if (!f) return std::move(f).error();
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        if (s->state == to_string(session_state::ended)) return session_ended(*s);
        auto existing = t.row_by_id(id, row_id);
        if (!existing) return std::move(existing).error();
        std::vector<event> events;
        sqlite::transcript_row r;
        reply_kind kind = reply_kind::ok;
        if (*existing) {
          r = **existing;
          bool changed = false;
          if (f->kind && *f->kind != r.kind) r.kind = *f->kind, changed = true;
          if (f->status && *f->status != r.status) r.status = *f->status, changed = true;
          // Member order and formatting are not a change.
          if (f->body && *f->body_canonical != canonical_json(parse_stored(r.body))) {
            r.body = *f->body;
            changed = true;
          }
          if (!changed) return reply{reply_kind::ok, row_json(r), s->revision, true};
          r.revision += 1;  // the sequence of the first insert is kept
          r.updated_at_ms = ctx.now_ms();
          if (auto st = t.update_row(r); !st) return std::move(st).error();
          json::object d;
          d["row"] = row_json(r);
          events.push_back({"row.updated", std::move(d)});
        } else {
          if (is_generated_row_id(row_id)) {
            return invalid("invalid_row_id",
                           "row ids of the form seq-{number} are reserved for rows appended "
                           "without a row_id");
          }
          if (!f->kind) return invalid("missing_field", "field 'kind' is required for a new row");
          if (!f->body) return invalid("missing_field", "field 'body' is required for a new row");
          r.session_id = id;
          r.seq = s->next_row_seq;
          s->next_row_seq += 1;
          r.row_id = row_id;
          r.kind = *f->kind;
          r.status = f->status.value_or("complete");
          r.body = *f->body;
          r.created_at_ms = r.updated_at_ms = ctx.now_ms();
          if (auto st = t.insert_row(r); !st) return std::move(st).error();
          json::object d;
          d["row"] = row_json(r);
          events.push_back({"row.appended", std::move(d)});
          kind = reply_kind::created;
        }
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        return reply{kind, row_json(r), s->revision, false};
      },
      std::move(done), bytes);
}

void session_service::get_row(std::string id, std::string row_id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), row_id = std::move(row_id)](sqlite::read_context&,
                                                       session_tables& t) -> result<reply> {
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto r = t.row_by_id(id, row_id);
        if (!r) return std::move(r).error();
        if (!*r) return not_found("row", row_id);
        return reply{reply_kind::ok, row_json(**r), (*s)->revision, false};
      },
      std::move(done));
}

void session_service::list_rows(std::string id, row_list_query q, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), q](sqlite::read_context&, session_tables& t) -> result<reply> {
        int limit = q.limit.value_or(k_default_row_page);
        if (limit < 1 || limit > k_max_row_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_row_page));
        }
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        sqlite::row_page_query query;
        query.after = q.after;
        query.before = q.before;
        query.limit = limit;
        // `before` alone pages backwards from it; otherwise forwards from `after` (or the start).
        query.newest_first = q.before && !q.after;
        auto rows = t.rows(id, query);
        if (!rows) return std::move(rows).error();
        if (query.newest_first) std::reverse(rows->begin(), rows->end());
        json::array a;
        for (const auto& r : *rows)
          a.push_back(row_json(r));
        json::object o;
        o["rows"] = std::move(a);
        o["next_after"] = rows->empty() ? json::value(nullptr) : json::value(rows->back().seq);
        o["next_before"] = rows->empty() ? json::value(nullptr) : json::value(rows->front().seq);
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

// ---- pull requests ---------------------------------------------------------------------------

namespace {

const std::vector<std::string_view> k_pr_states{"open", "merged", "closed"};
const std::vector<std::string_view> k_review_decisions{"approved", "changes_requested",
                                                       "review_required", "none"};
const std::vector<std::string_view> k_mergeabilities{"mergeable", "conflicting", "unknown"};
const std::vector<std::string_view> k_ci_states{"pending", "passing", "failing", "none"};
const std::vector<std::string_view> k_check_statuses{
    "queued", "in_progress", "success", "failure", "cancelled", "skipped", "neutral", "timed_out"};
constexpr std::size_t k_max_url_bytes = 2048;
constexpr std::size_t k_max_comment_bytes = 65536;

json::object pr_json(const sqlite::pr_row& p) {
  json::object o;
  o["url"] = p.url;
  o["session"] = p.session_id;
  o["number"] = p.number ? json::value(*p.number) : json::value(nullptr);
  o["title"] = optional_text(p.title);
  o["state"] = p.state;
  o["review_decision"] = p.review_decision;
  o["mergeability"] = p.mergeability;
  o["ci_state"] = p.ci_state;
  o["head_commit"] = optional_text(p.head_commit);
  o["revision"] = p.revision;
  o["created_at"] = format_rfc3339_ms(p.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(p.updated_at_ms);
  return o;
}

json::object check_json(const sqlite::check_row& c) {
  json::object o;
  o["pr"] = c.pr_url;
  o["name"] = c.name;
  o["commit"] = c.commit_sha;
  o["status"] = c.status;
  o["url"] = optional_text(c.url);
  o["started_at"] = optional_time(c.started_at_ms);
  o["completed_at"] = optional_time(c.completed_at_ms);
  o["first_seen"] = c.seq;
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

json::object comment_json(const sqlite::comment_row& c) {
  json::object o;
  o["pr"] = c.pr_url;
  o["id"] = c.comment_id;
  o["author"] = optional_text(c.author);
  o["body"] = c.body;
  o["path"] = optional_text(c.path);
  o["line"] = c.line ? json::value(*c.line) : json::value(nullptr);
  o["resolved"] = c.resolved;
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

result<std::string> enum_field(const body_reader& r, std::string_view object,
                               std::string_view field, const std::vector<std::string_view>& allowed,
                               std::optional<std::string_view> fallback) {
  auto v = r.text(field, false, 64);
  if (!v) return std::move(v).error();
  if (!*v || !**v) {
    if (fallback) return std::string(*fallback);
    return invalid("missing_field",
                   "field '" + std::string(object) + "." + std::string(field) + "' is required");
  }
  const std::string& value = ***v;
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    return invalid("invalid_enum", "field '" + std::string(object) + "." + std::string(field) +
                                       "' is '" + value + "'; allowed: " + joined(allowed));
  }
  return value;
}

result<std::optional<std::int64_t>> time_field(const body_reader& r, std::string_view object,
                                               std::string_view field) {
  auto v = r.text(field, true, 64);
  if (!v) return std::move(v).error();
  if (!*v || !**v) return std::optional<std::int64_t>();
  auto ms = parse_rfc3339_ms(***v);
  if (!ms) {
    return invalid("invalid_field", "field '" + std::string(object) + "." + std::string(field) +
                                        "' must be an RFC 3339 timestamp");
  }
  return std::optional<std::int64_t>(*ms);
}

result<std::optional<std::int64_t>> integer_field(const body_reader& r, std::string_view object,
                                                  std::string_view field) {
  const json::value* v = r.raw(field);
  if (!v || v->is_null()) return std::optional<std::int64_t>();
  // Integers up to 2^53-1 only: every JSON client (JavaScript included) reads them exactly.
  constexpr std::int64_t k_max = 9007199254740991;
  if (!v->is_int64() || v->as_int64() < 0 || v->as_int64() > k_max) {
    return invalid("invalid_field", "field '" + std::string(object) + "." + std::string(field) +
                                        "' must be an integer from 0 to 2^53-1");
  }
  return std::optional<std::int64_t>(v->as_int64());
}

struct observation {
  sqlite::pr_row pr;  // facts only (url .. head_commit)
  std::vector<sqlite::check_row> checks;
  std::optional<std::vector<sqlite::comment_row>> comments;  // nullopt: leave comments alone
};

result<observation> parse_observation(const json::value& body) {
  auto top = body_reader::of(body, {"pr", "checks", "comments"});
  if (!top) return std::move(top).error();
  const json::value* pr_value = top->raw("pr");
  if (!pr_value) return invalid("missing_field", "field 'pr' is required");
  auto pr = body_reader::of(*pr_value, {"url", "number", "title", "state", "review_decision",
                                        "mergeability", "ci_state", "head_commit"});
  if (!pr) return std::move(pr).error();
  observation o;
  auto url = pr->required_text("url", k_max_url_bytes);
  if (!url) return std::move(url).error();
  o.pr.url = *url;
  auto number = integer_field(*pr, "pr", "number");
  if (!number) return std::move(number).error();
  o.pr.number = *number;
  auto title = pr->text("title", true, k_max_text_field_bytes);
  if (!title) return std::move(title).error();
  if (*title) o.pr.title = **title;
  auto head = pr->text("head_commit", true, 128);
  if (!head) return std::move(head).error();
  if (*head) o.pr.head_commit = **head;
  for (auto [field, allowed, fallback, target] :
       {std::tuple{"state", &k_pr_states, std::optional<std::string_view>(), &o.pr.state},
        std::tuple{"review_decision", &k_review_decisions, std::optional<std::string_view>("none"),
                   &o.pr.review_decision},
        std::tuple{"mergeability", &k_mergeabilities, std::optional<std::string_view>("unknown"),
                   &o.pr.mergeability},
        std::tuple{"ci_state", &k_ci_states, std::optional<std::string_view>("none"),
                   &o.pr.ci_state}}) {
    auto v = enum_field(*pr, "pr", field, *allowed, fallback);
    if (!v) return std::move(v).error();
    *target = *v;
  }

  if (const json::value* checks = top->raw("checks")) {
    if (!checks->is_array()) return invalid("invalid_field", "field 'checks' must be an array");
    std::vector<std::pair<std::string, std::string>> seen;
    for (const json::value& c : checks->as_array()) {
      auto r =
          body_reader::of(c, {"name", "commit", "status", "url", "started_at", "completed_at"});
      if (!r) return std::move(r).error();
      sqlite::check_row row;
      row.pr_url = o.pr.url;
      auto name = r->required_text("name", 256);
      if (!name) return std::move(name).error();
      auto commit = r->required_text("commit", 128);
      if (!commit) return std::move(commit).error();
      auto status = enum_field(*r, "checks[]", "status", k_check_statuses, std::nullopt);
      if (!status) return std::move(status).error();
      auto link = r->text("url", true, k_max_url_bytes);
      if (!link) return std::move(link).error();
      auto started = time_field(*r, "checks[]", "started_at");
      if (!started) return std::move(started).error();
      auto completed = time_field(*r, "checks[]", "completed_at");
      if (!completed) return std::move(completed).error();
      std::pair<std::string, std::string> key{*name, *commit};
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return invalid("duplicate_check", "check '" + *name + "' on commit '" + *commit +
                                              "' appears twice in one observation");
      }
      seen.push_back(key);
      row.name = *name;
      row.commit_sha = *commit;
      row.status = *status;
      if (*link) row.url = **link;
      row.started_at_ms = *started;
      row.completed_at_ms = *completed;
      o.checks.push_back(std::move(row));
    }
  }

  if (const json::value* comments = top->raw("comments")) {
    if (!comments->is_array()) return invalid("invalid_field", "field 'comments' must be an array");
    std::vector<sqlite::comment_row> rows;
    for (const json::value& c : comments->as_array()) {
      auto r = body_reader::of(c, {"id", "author", "body", "path", "line", "resolved"});
      if (!r) return std::move(r).error();
      sqlite::comment_row row;
      row.pr_url = o.pr.url;
      auto id = r->required_text("id", k_max_id_bytes);
      if (!id) return std::move(id).error();
      auto author = r->text("author", true, 256);
      if (!author) return std::move(author).error();
      auto text = r->text("body", false, k_max_comment_bytes);
      if (!text) return std::move(text).error();
      if (!*text) return invalid("missing_field", "field 'comments[].body' is required");
      auto path = r->text("path", true, k_max_text_field_bytes);
      if (!path) return std::move(path).error();
      auto line = integer_field(*r, "comments[]", "line");
      if (!line) return std::move(line).error();
      const json::value* resolved = r->raw("resolved");
      if (resolved && !resolved->is_bool() && !resolved->is_null()) {
        return invalid("invalid_field", "field 'comments[].resolved' must be true or false");
      }
      for (const auto& other : rows) {
        if (other.comment_id == *id) {
          return invalid("duplicate_comment",
                         "comment '" + *id + "' appears twice in one observation");
        }
      }
      row.comment_id = *id;
      if (*author) row.author = **author;
      row.body = ***text;
      if (*path) row.path = **path;
      row.line = *line;
      row.resolved = resolved && resolved->is_bool() && resolved->as_bool();
      rows.push_back(std::move(row));
    }
    o.comments = std::move(rows);
  }
  return o;
}

result<json::object> pr_view(session_tables& t, const sqlite::pr_row& p) {
  auto checks = t.checks_of_pr(p.url);
  if (!checks) return std::move(checks).error();
  auto comments = t.comments_of_pr(p.url);
  if (!comments) return std::move(comments).error();
  json::object o = pr_json(p);
  json::array ca, ma;
  for (const auto& c : *checks)
    ca.push_back(check_json(c));
  for (const auto& c : *comments)
    ma.push_back(comment_json(c));
  o["checks"] = std::move(ca);
  o["comments"] = std::move(ma);
  return o;
}

bool check_failed(std::string_view status) {
  return status == "failure" || status == "timed_out";
}

}  // namespace

void session_service::observe_pr(std::string id, std::optional<std::int64_t> if_match,
                                 json::value body, reply_callback done) {
  std::size_t bytes = json::serialize(body).size();
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body), end_on_merge = options_.end_on_merge](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto o = parse_observation(body);
        if (!o) return std::move(o).error();
        auto s = load_for_change(t, id, if_match);
        if (!s) return std::move(s).error();
        // An ended session takes no change, but a poller re-sending what it saw (say the
        // observation that merged the PR, whose answer was lost) is answered as a replay.
        const bool was_ended = s->state == to_string(session_state::ended);
        std::vector<event> events;

        // The PR's facts, upserted by URL.
        auto existing = t.pr(o->pr.url);
        if (!existing) return std::move(existing).error();
        sqlite::pr_row pr;
        bool merged_now = false;
        if (*existing) {
          pr = **existing;
          if (pr.session_id != id) {
            if (was_ended) return session_ended(*s);
            return make_failure(failure_kind::conflict, "pr_belongs_to_another_session",
                                "PR " + pr.url + " is tracked by session " + pr.session_id);
          }
          json::object changes;
          auto update = [&](auto& field, const auto& value, const char* name, json::value v) {
            if (field != value) {
              field = value;
              changes[name] = std::move(v);
            }
          };
          const sqlite::pr_row& n = o->pr;
          update(pr.number, n.number, "number", n.number ? json::value(*n.number) : nullptr);
          update(pr.title, n.title, "title", optional_text(n.title));
          merged_now = pr.state != "merged" && n.state == "merged";
          update(pr.state, n.state, "state", json::value(n.state));
          update(pr.review_decision, n.review_decision, "review_decision",
                 json::value(n.review_decision));
          update(pr.mergeability, n.mergeability, "mergeability", json::value(n.mergeability));
          update(pr.ci_state, n.ci_state, "ci_state", json::value(n.ci_state));
          update(pr.head_commit, n.head_commit, "head_commit", optional_text(n.head_commit));
          if (!changes.empty()) {
            pr.revision += 1;
            pr.updated_at_ms = ctx.now_ms();
            json::object d;
            d["pr"] = pr_json(pr);
            d["changes"] = std::move(changes);
            events.push_back({"pr.updated", std::move(d)});
          }
        } else {
          pr = o->pr;
          pr.session_id = id;
          pr.created_at_ms = pr.updated_at_ms = ctx.now_ms();
          merged_now = pr.state == "merged";
          if (auto st = t.insert_pr(pr); !st) return std::move(st).error();
          json::object d;
          d["pr"] = pr_json(pr);
          events.push_back({"pr.created", std::move(d)});
        }

        // Checks: history, one row per check per commit; a change on the same commit updates it.
        for (auto& c : o->checks) {
          auto known = t.check(pr.url, c.name, c.commit_sha);
          if (!known) return std::move(known).error();
          if (!*known) {
            c.seq = pr.next_check_seq++;
            c.created_at_ms = c.updated_at_ms = ctx.now_ms();
            if (auto st = t.insert_check(c); !st) return std::move(st).error();
            json::object d;
            d["check"] = check_json(c);
            events.push_back({"check.created", std::move(d)});
            continue;
          }
          sqlite::check_row k = **known;
          if (k.status == c.status && k.url == c.url && k.started_at_ms == c.started_at_ms &&
              k.completed_at_ms == c.completed_at_ms) {
            continue;  // seen before, unchanged
          }
          std::string previous = k.status;
          k.status = c.status;
          k.url = c.url;
          k.started_at_ms = c.started_at_ms;
          k.completed_at_ms = c.completed_at_ms;
          k.updated_at_ms = ctx.now_ms();
          if (auto st = t.update_check(k); !st) return std::move(st).error();
          json::object d;
          d["check"] = check_json(k);
          d["previous_status"] = previous;
          events.push_back({"check.updated", std::move(d)});
        }
        if (auto st = ctx.checkpoint("pr.observation.checks_written"); !st) {
          return std::move(st).error();
        }

        // Comments: reconciled as a set.
        if (o->comments) {
          auto current = t.comments_of_pr(pr.url);
          if (!current) return std::move(current).error();
          for (auto& c : *o->comments) {
            auto it = std::find_if(current->begin(), current->end(),
                                   [&](const auto& x) { return x.comment_id == c.comment_id; });
            if (it == current->end()) {
              c.created_at_ms = c.updated_at_ms = ctx.now_ms();
              if (auto st = t.insert_comment(c); !st) return std::move(st).error();
              json::object d;
              d["comment"] = comment_json(c);
              events.push_back({"comment.created", std::move(d)});
              continue;
            }
            bool content_changed = it->author != c.author || it->body != c.body ||
                                   it->path != c.path || it->line != c.line;
            bool resolved_now = !it->resolved && c.resolved;
            if (!content_changed && it->resolved == c.resolved) continue;
            c.created_at_ms = it->created_at_ms;
            c.updated_at_ms = ctx.now_ms();
            if (auto st = t.update_comment(c); !st) return std::move(st).error();
            json::object d;
            d["comment"] = comment_json(c);
            events.push_back(
                {!content_changed && resolved_now ? "comment.resolved" : "comment.updated",
                 std::move(d)});
          }
          for (const auto& old : *current) {
            bool still = std::any_of(o->comments->begin(), o->comments->end(),
                                     [&](const auto& x) { return x.comment_id == old.comment_id; });
            if (still) continue;
            if (auto st = t.delete_comment(pr.url, old.comment_id); !st) {
              return std::move(st).error();
            }
            json::object d;
            d["comment"] = comment_json(old);
            events.push_back({"comment.removed", std::move(d)});
          }
        }
        // The PR row carries the check counter even when its facts did not change.
        if (*existing || !o->checks.empty()) {
          if (auto st = t.update_pr(pr); !st) return std::move(st).error();
        }

        if (was_ended) {
          if (!events.empty()) return session_ended(*s);  // rolls back everything above
          auto stored = t.pr(pr.url);
          if (!stored) return std::move(stored).error();
          auto view = pr_view(t, **stored);
          if (!view) return std::move(view).error();
          return reply{reply_kind::ok, std::move(*view), s->revision, true};
        }
        if (merged_now && end_on_merge) {
          if (auto st = apply_end(ctx, t, *s, end_reason::pr_merged, "pr_merged", events); !st) {
            return std::move(st).error();
          }
        }
        if (auto st = commit_session_change(ctx, t, *s, events); !st) {
          return std::move(st).error();
        }
        auto fresh = t.pr(pr.url);
        if (!fresh) return std::move(fresh).error();
        auto view = pr_view(t, **fresh);
        if (!view) return std::move(view).error();
        return reply{*existing ? reply_kind::ok : reply_kind::created, std::move(*view),
                     s->revision, events.empty()};
      },
      std::move(done), bytes);
}

void session_service::list_prs(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](sqlite::read_context&, session_tables& t) -> result<reply> {
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto prs = t.prs_of_session(id);
        if (!prs) return std::move(prs).error();
        json::array a;
        for (const auto& p : *prs) {
          auto view = pr_view(t, p);
          if (!view) return std::move(view).error();
          a.push_back(std::move(*view));
        }
        json::object o;
        o["prs"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

void session_service::ci_brake(std::string id, std::optional<int> commits, reply_callback done) {
  int n = commits.value_or(options_.ci_brake_commits);
  run_read(
      engine_,
      [id = std::move(id), n](sqlite::read_context&, session_tables& t) -> result<reply> {
        if (n < 1 || n > 100)
          return invalid("invalid_commits", "commits must be between 1 and 100");
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        if (!*s) return not_found("session", id);
        auto prs = t.prs_of_session(id);
        if (!prs) return std::move(prs).error();
        json::object o;
        o["commits"] = n;
        o["brake"] = false;
        o["pr"] = nullptr;
        o["check"] = nullptr;
        o["evidence"] = json::array();
        for (const auto& p : *prs) {
          auto checks = t.checks_of_pr(p.url);
          if (!checks) return std::move(checks).error();
          // Distinct commits, most recent first (by when a check on them was first seen).
          std::vector<std::pair<std::int64_t, std::string>> first_seen;
          for (const auto& c : *checks) {
            auto it = std::find_if(first_seen.begin(), first_seen.end(),
                                   [&](const auto& e) { return e.second == c.commit_sha; });
            if (it == first_seen.end()) first_seen.emplace_back(c.seq, c.commit_sha);
          }
          std::sort(first_seen.begin(), first_seen.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
          if (static_cast<int>(first_seen.size()) < n) continue;
          first_seen.resize(static_cast<std::size_t>(n));
          // A check that failed on every one of those commits.
          std::vector<std::string> names;
          for (const auto& c : *checks) {
            if (std::find(names.begin(), names.end(), c.name) == names.end())
              names.push_back(c.name);
          }
          for (const auto& name : names) {
            json::array evidence;
            bool all_failed = true;
            for (const auto& [seq, commit] : first_seen) {
              auto it = std::find_if(checks->begin(), checks->end(), [&](const auto& c) {
                return c.name == name && c.commit_sha == commit;
              });
              if (it == checks->end() || !check_failed(it->status)) {
                all_failed = false;
                break;
              }
              evidence.push_back(check_json(*it));
            }
            if (all_failed) {
              o["brake"] = true;
              o["pr"] = p.url;
              o["check"] = name;
              o["evidence"] = std::move(evidence);
              return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
            }
          }
        }
        return reply{reply_kind::ok, std::move(o), (*s)->revision, false};
      },
      std::move(done));
}

// ---- the reaper ------------------------------------------------------------------------------

void session_service::reap_once() {
  auto heartbeat_timeout = options_.heartbeat_timeout.count();
  auto detach_timeout = options_.detach_timeout.count();
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  write_job job;
  job.run = [heartbeat_timeout, detach_timeout](write_context& ctx) -> status {
    session_tables t(ctx.statements());
    // Detach sessions whose agent stopped heartbeating; end those detached for too long. Every
    // change goes through the lifecycle functions, like an API call.
    auto lost =
        t.sessions_with_heartbeat_before({"starting", "active"}, ctx.now_ms() - heartbeat_timeout);
    if (!lost) return std::move(lost).error();
    for (const auto& id : *lost) {
      auto s = t.session(id);
      if (!s) return std::move(s).error();
      if (!*s) return not_found("session", id);
      std::vector<event> events;
      if (auto st =
              apply_transition(ctx, t, **s, session_state::detached, "heartbeat_lost", events);
          !st) {
        return st;
      }
      if (auto st = commit_session_change(ctx, t, **s, events); !st) return st;
      spdlog::info("session detached id={} cause=heartbeat_lost", id);
    }
    // Looked up after detaching: a session silent for longer than both timeouts (e.g. while
    // ordo was down) is detached and ended in the same pass.
    auto abandoned = t.sessions_with_heartbeat_before({"detached"}, ctx.now_ms() - detach_timeout);
    if (!abandoned) return std::move(abandoned).error();
    for (const auto& id : *abandoned) {
      auto s = t.session(id);
      if (!s) return std::move(s).error();
      if (!*s) return not_found("session", id);
      std::vector<event> events;
      if (auto st = apply_end(ctx, t, **s, end_reason::reaped, "detach_timeout", events); !st) {
        return st;
      }
      if (auto st = commit_session_change(ctx, t, **s, events); !st) return st;
      spdlog::info("session ended id={} reason=reaped", id);
    }
    return ok_v;
  };
  job.done = [this, finished](const std::optional<failure>& f) {
    if (f) {
      background_.reaper_failures.add();
      spdlog::warn("reaper pass failed: {}", f->message);
    }
    finished->set_value();
  };
  if (engine_.submit(std::move(job))) future.wait();
}

bool session_service::prune_changes_once() {
  auto more = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  write_job job;
  job.run = [retention = options_.changes_retention.count(), more](write_context& ctx) -> status {
    auto feed = ctx.find_stream(k_changes_stream_path);
    if (!feed) return std::move(feed).error();
    if (!*feed) return ok_v;
    auto oldest = ctx.oldest_messages(**feed, k_prune_batch);
    if (!oldest) return std::move(oldest).error();
    std::int64_t cutoff = ctx.now_ms() - retention;
    std::optional<std::int64_t> upto;
    for (const auto& m : *oldest) {
      boost::system::error_code ec;
      json::value v = json::parse(m.data, ec);
      if (ec || !v.is_object() || !v.as_object().contains("at")) break;
      auto at = parse_rfc3339_ms(json::value_to<std::string>(v.as_object().at("at")));
      if (!at || *at >= cutoff) break;
      upto = m.seq;
    }
    if (!upto) return ok_v;
    more->store(static_cast<std::size_t>(*upto - oldest->front().seq + 1) == k_prune_batch);
    return ctx.prune(**feed, static_cast<std::uint64_t>(*upto));
  };
  job.done = [this, finished](const std::optional<failure>& f) {
    if (f) {
      background_.retention_failures.add();
      spdlog::warn("change-feed retention pass failed: {}", f->message);
    }
    finished->set_value();
  };
  if (!engine_.submit(std::move(job))) return false;
  future.wait();
  return more->load();
}

void session_service::reaper_loop() {
  // Often enough that a session is detached within a quarter of its timeout after it is due.
  auto interval = std::clamp(std::min(options_.heartbeat_timeout, options_.detach_timeout) / 4,
                             std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval, [&] { return stopping_; })) {
    lock.unlock();
    reap_once();
    // A few retention batches per tick at most: the rest waits for the next tick.
    for (int i = 0; i < 4 && prune_changes_once(); ++i) {
    }
    lock.lock();
  }
}

}  // namespace ordo::sessions
