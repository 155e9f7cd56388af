// The write and read plumbing of the session service and the steps every session mutation
// shares (session_jobs.hpp): errors, lifecycle steps, the change feed's append and the commit of
// a session change.
#include "sessions/session_jobs.hpp"

#include <cassert>
#include <memory>
#include <utility>

#include "base/rfc3339.hpp"
#include "streams/offset.hpp"

namespace ordo::sessions {

failure invalid(std::string code, std::string message) {
  return make_failure(failure_kind::invalid, std::move(code), std::move(message));
}

failure not_found(std::string what, std::string_view id) {
  return make_failure(failure_kind::not_found, what + "_not_found",
                      "no " + what + " '" + std::string(id) + "'");
}

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
  std::string reason = s.end_reason ? std::string(to_string(*s.end_reason)) : "";
  failure f = make_failure(failure_kind::conflict, "session_ended",
                           "session '" + s.id + "' has ended (" + (reason.empty() ? "?" : reason) +
                               "); it accepts no more changes");
  f.with("end_reason", "\"" + reason + "\"");
  return f;
}

status release_agent_work(write_context& ctx, session_tables& t, const sqlite::session_row& s,
                          sqlite::finish_reason execution_reason, std::vector<event>& events) {
  auto active = t.active_execution(s.id);
  if (!active) return std::move(active).error();
  if (*active) {
    if (auto st = t.finish_execution(s.id, (*active)->generation, ctx.now_ms(), execution_reason);
        !st) {
      return st;
    }
    json::object d;
    d["generation"] = (*active)->generation;
    d["reason"] = to_string(execution_reason);
    events.push_back({"execution.finished", std::move(d)});
  }
  auto pending = t.pending_commands(s.id);
  if (!pending) return std::move(pending).error();
  for (auto& c : *pending) {
    assert(transition_allowed(c.status, command_status::interrupted));
    if (auto st = t.update_command_status(s.id, c.seq, command_status::interrupted, std::nullopt,
                                          ctx.now_ms());
        !st) {
      return st;
    }
    c.status = command_status::interrupted;
    c.updated_at_ms = ctx.now_ms();
    json::object d;
    d["command"] = command_json(c);
    events.push_back({"command.updated", std::move(d)});
  }
  return ok_v;
}

status apply_transition(write_context& ctx, session_tables& t, sqlite::session_row& s,
                        session_state to, std::string_view cause, std::vector<event>& events) {
  session_state from = s.state;
  if (!transition_allowed(from, to)) return illegal_transition(from, to);
  if (to == session_state::detached) {
    if (auto st = release_agent_work(ctx, t, s, sqlite::finish_reason::lost, events); !st)
      return st;
  }
  s.state = to;
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
  session_state from = s.state;
  if (auto st = release_agent_work(ctx, t, s, sqlite::finish_reason::session_ended, events); !st)
    return st;
  s.state = session_state::ended;
  s.end_reason = reason;
  s.ended_at_ms = ctx.now_ms();
  json::object d;
  d["from"] = std::string(to_string(from));
  d["reason"] = std::string(to_string(reason));
  d["cause"] = std::string(cause);
  events.push_back({"session.ended", std::move(d)});
  return ok_v;
}

namespace {

// Appends `change` to the feed at `path` (created on first use, in the same transaction), its
// "offset" set to that feed's offset just after it.
status append_to_feed(write_context& ctx, const std::string& path, json::object change) {
  auto feed = ctx.find_stream(path);
  if (!feed) return std::move(feed).error();
  if (!*feed) {
    auto created = ctx.create_stream(path, std::string(k_events_content_type));
    if (!created) return std::move(created).error();
    *feed = *created;
  }
  auto offset = ctx.next_offset(**feed);
  if (!offset) return std::move(offset).error();
  change["offset"] = format_offset(*offset);
  auto appended = ctx.append(**feed, json::serialize(change));
  if (!appended) return std::move(appended).error();
  return ok_v;
}

}  // namespace

status append_change(write_context& ctx, std::string_view type, std::string_view project,
                     const std::optional<std::string>& session,
                     std::optional<std::int64_t> revision, const json::object& data) {
  json::object change;
  change["offset"] = nullptr;  // each feed's own, set by append_to_feed(); first, as documented
  change["type"] = std::string(type);
  change["project"] = std::string(project);
  change["session"] = optional_text(session);
  change["revision"] = revision ? json::value(*revision) : json::value(nullptr);
  change["at"] = format_rfc3339_ms(ctx.now_ms());
  change["data"] = data;
  if (auto s = append_to_feed(ctx, std::string(session_service::k_changes_stream_path), change);
      !s) {
    return s;
  }
  return append_to_feed(ctx, sqlite::project_changes_path(project), std::move(change));
}

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
  if (s.state == session_state::ended) return ctx.close(s.events_stream_id);
  return ok_v;
}

result<sqlite::session_row> existing_session(session_tables& t, std::string_view id) {
  auto s = t.session(id);
  if (!s) return std::move(s).error();
  if (!*s) return not_found("session", id);
  return std::move(**s);
}

result<sqlite::session_row> load_for_change(session_tables& t, std::string_view id,
                                            std::optional<std::int64_t> if_match) {
  auto s = existing_session(t, id);
  if (!s) return s;
  if (if_match && *if_match != s->revision) return stale_revision(*s, *if_match);
  return s;
}

result<reply> session_reply(session_tables& t, std::string_view id, reply_kind kind) {
  auto s = existing_session(t, id);
  if (!s) return std::move(s).error();
  return reply{kind, session_json(*s), s->revision, false};
}

result<reply> mutate_session(write_context& ctx, session_tables& t, std::string_view id,
                             std::optional<std::int64_t> if_match, when_ended ended,
                             const mutation& mutate, const answer& respond) {
  auto s = load_for_change(t, id, if_match);
  if (!s) return std::move(s).error();
  if (ended == when_ended::refuse && s->state == session_state::ended) {
    return session_ended(*s);
  }
  std::vector<event> events;
  auto outcome = mutate(*s, events);
  if (!outcome) return std::move(outcome).error();
  if (*outcome) {
    assert(events.empty() && "a mutation answering at once must have changed nothing");
    return std::move(**outcome);
  }
  if (auto st = commit_session_change(ctx, t, *s, events); !st) return std::move(st).error();
  return respond(*s);
}

answer session_answer(session_tables& t, reply_kind kind) {
  return [&t, kind](const sqlite::session_row& s) { return session_reply(t, s.id, kind); };
}

// ---- plumbing --------------------------------------------------------------------------------

void run_write(stream_engine& engine, write_fn fn, reply_callback done, std::size_t bytes) {
  auto outcome = std::make_shared<std::optional<result<reply>>>();
  write_job job;
  job.bytes = bytes;
  // Every session change appends to the change feed: where nodes share the storage, the feed
  // is locked at the batch's start, before any session's event stream.
  job.streams = {std::string(session_service::k_changes_stream_path)};
  job.run = [fn = std::move(fn), outcome](write_context& ctx) -> status {
    session_tables t(ctx.sql());
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
      [fn = std::move(fn), shared_done, e = &engine](storage::read_snapshot& ctx) {
        session_tables t(ctx.sql);
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

}  // namespace ordo::sessions
