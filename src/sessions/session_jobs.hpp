// How the session service's work runs, and what every mutation shares: the write and read
// plumbing, the errors, the typed events, the lifecycle steps and the commit of a session change.
// Internal to sessions/; the entity files (projects.cpp, sessions.cpp, executions.cpp,
// commands.cpp, transcript_rows.cpp, pull_requests.cpp, change_feed.cpp, reaper.cpp) use it.
//
// Thread safety:
//  (1) A write_fn runs on the stream engine's writer thread, inside its job's SAVEPOINT: every
//      function below taking a write_context runs there, and whatever it changed commits or
//      rolls back with the job. A write_fn that returns a failure rolls its job back.
//  (2) A read_fn runs on one of the engine's reader threads with that thread's connection; the
//      reply is sent once what it read is durable.
//  (3) The session_tables a function is given belong to that thread's connection: never keep
//      them, or a row read from them, beyond the call.
//  (4) The reply callback runs on the writer or a reader thread, or on the submitting thread
//      when the queue is full; it must only hand the reply to the caller's executor.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_service.hpp"
#include "storage/sqlite/session_tables.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::sessions {

// Every managed stream the service writes (a session's events, the change feed) holds JSON.
inline constexpr std::string_view k_events_content_type = "application/json";

// ---- errors

failure invalid(std::string code, std::string message);
// "{what}_not_found": no {what} '{id}'.
failure not_found(std::string what, std::string_view id);
// 412 revision_mismatch, with the session's current_revision.
failure stale_revision(const sqlite::session_row& s, std::int64_t expected);
failure illegal_transition(session_state from, session_state to);
// 409 session_ended, with the end_reason.
failure session_ended(const sqlite::session_row& s);

// ---- plumbing

using write_fn = std::function<result<reply>(write_context&, session_tables&)>;
using read_fn = std::function<result<reply>(storage::read_snapshot&, session_tables&)>;

// Runs `fn` as one job of the writer; `bytes` is what the job will write, for the batch limit.
// The queue being full is answered with 503 write_queue_full.
void run_write(stream_engine& engine, write_fn fn, reply_callback done, std::size_t bytes = 0);
// Runs `fn` on a reader thread and answers once what it read is durable. The queue being full
// is answered with 503 read_queue_full.
void run_read(stream_engine& engine, read_fn fn, reply_callback done);

// ---- session changes (writer thread)

// One typed event of a session's stream (and of the change feed).
struct event {
  std::string type;
  json::object data;
};

// Finishes the active execution and interrupts pending commands: what losing the agent means.
status release_agent_work(write_context& ctx, session_tables& t, const sqlite::session_row& s,
                          sqlite::finish_reason execution_reason, std::vector<event>& events);
// Moves the session to `to` if the lifecycle table allows it (409 illegal_transition if not).
status apply_transition(write_context& ctx, session_tables& t, sqlite::session_row& s,
                        session_state to, std::string_view cause, std::vector<event>& events);
// Ends the session, releasing its agent's work first.
status apply_end(write_context& ctx, session_tables& t, sqlite::session_row& s, end_reason reason,
                 std::string_view cause, std::vector<event>& events);

// Appends one event to the change feed and to its project's own feed (managed_streams.hpp):
// {offset, type, project, session, revision, at, data}. `offset` is each feed's offset just
// after the event, where a reader that has processed it resumes. The feed streams are created on
// first use, in the same transaction.
status append_change(write_context& ctx, std::string_view type, std::string_view project,
                     const std::optional<std::string>& session,
                     std::optional<std::int64_t> revision, const json::object& data);

// Bumps the revision, stores the session, appends the events (all carrying the new revision)
// to the session's stream and to the change feed, and closes the session's stream when it has
// ended. Nothing happens without events: an update that changes nothing emits nothing.
status commit_session_change(write_context& ctx, session_tables& t, sqlite::session_row& s,
                             std::vector<event>& events);

// The session as stored, or 404 session_not_found.
result<sqlite::session_row> existing_session(session_tables& t, std::string_view id);

// Loads a session for a mutation and checks If-Match (404, then 412).
result<sqlite::session_row> load_for_change(session_tables& t, std::string_view id,
                                            std::optional<std::int64_t> if_match);

// The session as stored, as a reply of `kind` carrying its revision.
result<reply> session_reply(session_tables& t, std::string_view id, reply_kind kind);

// A read of one thing a session holds: the session (404 session_not_found), then what `find`
// loads (404 {what}_not_found naming `key` when it finds nothing), answered as `to_json`
// renders it with the session's revision.
template <typename Find, typename ToJson>
result<reply> session_item_reply(session_tables& t, std::string_view id, std::string what,
                                 std::string_view key, Find find, ToJson to_json) {
  auto s = existing_session(t, id);
  if (!s) return std::move(s).error();
  auto item = find();
  if (!item) return std::move(item).error();
  if (!*item) return not_found(std::move(what), key);
  return reply{reply_kind::ok, to_json(**item), s->revision, false};
}

// ---- the mutation skeleton (writer thread)

// Whether mutate_session() refuses an ended session (409 session_ended) before the mutation
// runs, or leaves that to the mutation (which may first answer a retry, or refuse later).
enum class when_ended { refuse, mutation_decides };

// What a mutation returns: commit_events() to commit the events it collected and answer, or
// answer_now(r) to answer without committing (an idempotent retry answered from what is
// stored; it has collected no events). A failure rolls back everything the job did.
using mutation_result = result<std::optional<reply>>;
inline mutation_result commit_events() {
  return std::optional<reply>();
}
inline mutation_result answer_now(reply r) {
  return std::optional<reply>(std::move(r));
}
using mutation = std::function<mutation_result(sqlite::session_row&, std::vector<event>&)>;
// Builds the reply once the change is committed, from the session as committed.
using answer = std::function<result<reply>(const sqlite::session_row&)>;

// The skeleton every session mutation shares: loads the session (404 session_not_found),
// checks If-Match (412 revision_mismatch with current_revision), refuses an ended session
// (409 session_ended) when `ended` says so, runs `mutate`, commits the session change with the
// events it collected (commit_session_change) and answers with `respond`.
result<reply> mutate_session(write_context& ctx, session_tables& t, std::string_view id,
                             std::optional<std::int64_t> if_match, when_ended ended,
                             const mutation& mutate, const answer& respond);

// The answer of most session mutations: the session as stored after the change.
answer session_answer(session_tables& t, reply_kind kind);

}  // namespace ordo::sessions
