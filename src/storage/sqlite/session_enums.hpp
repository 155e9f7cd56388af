// The enumerated columns of the session tables, each with the one table of texts it is stored as
// in SQLite and shown as in JSON (base/enum_names.hpp: to_string, parse_enum, joined_names).
//
// The texts are the schema's (migrations.cpp): each column's CHECK constraint lists exactly these,
// in this order (session_enums_test.cpp compares them), so renaming one is a migration. The
// order is also the order error messages list the allowed values in.
//
// A text read from the database that names no value is a damaged database: stored_enum() turns
// it into a storage_corrupt failure (the schema's CHECK constraints keep ordo from writing one,
// but a file edited by hand, or with CHECK constraints ignored, may hold one).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/enum_names.hpp"
#include "base/result.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite {

// So that argument-dependent lookup finds it for these enums from any namespace.
using ordo::to_string;

// sessions.state: where a session is in its lifecycle (sessions/lifecycle.hpp has the
// transitions).
enum class session_state { created, starting, active, suspended, detached, closing, ended };
constexpr std::array<enum_name<session_state>, 7> enum_names(session_state) {
  return {{{session_state::created, "created"},
           {session_state::starting, "starting"},
           {session_state::active, "active"},
           {session_state::suspended, "suspended"},
           {session_state::detached, "detached"},
           {session_state::closing, "closing"},
           {session_state::ended, "ended"}}};
}

// sessions.end_reason: why a session ended; set exactly when its state is ended.
enum class end_reason { completed, killed, failed, pr_merged, reaped, cancelled };
constexpr std::array<enum_name<end_reason>, 6> enum_names(end_reason) {
  return {{{end_reason::completed, "completed"},
           {end_reason::killed, "killed"},
           {end_reason::failed, "failed"},
           {end_reason::pr_merged, "pr_merged"},
           {end_reason::reaped, "reaped"},
           {end_reason::cancelled, "cancelled"}}};
}

// Not stored but derived, in JSON and in the sessions filter: what a session asks of a client.
// sessions/lifecycle.hpp derives it from a row, session_tables.cpp in SQL for the filter.
enum class client_state { idle, running, requires_action };
constexpr std::array<enum_name<client_state>, 3> enum_names(client_state) {
  return {{{client_state::idle, "idle"},
           {client_state::running, "running"},
           {client_state::requires_action, "requires_action"}}};
}

// executions.finish_reason: how an execution ended — by the agent (completed, failed), by a
// client (aborted), or with its session (lost: the agent detached; session_ended).
enum class finish_reason { completed, failed, aborted, lost, session_ended };
constexpr std::array<enum_name<finish_reason>, 5> enum_names(finish_reason) {
  return {{{finish_reason::completed, "completed"},
           {finish_reason::failed, "failed"},
           {finish_reason::aborted, "aborted"},
           {finish_reason::lost, "lost"},
           {finish_reason::session_ended, "session_ended"}}};
}

// commands.status: accepted, then the agent's acknowledgements; interrupted when the agent was
// lost first (sessions/lifecycle.hpp has the transitions).
enum class command_status { accepted, delivered, done, failed, interrupted };
constexpr std::array<enum_name<command_status>, 5> enum_names(command_status) {
  return {{{command_status::accepted, "accepted"},
           {command_status::delivered, "delivered"},
           {command_status::done, "done"},
           {command_status::failed, "failed"},
           {command_status::interrupted, "interrupted"}}};
}

// rows.kind: what a transcript row records.
enum class row_kind {
  user,
  assistant,
  tool_call,
  tool_result,
  approval_request,
  approval_response,
  system
};
constexpr std::array<enum_name<row_kind>, 7> enum_names(row_kind) {
  return {{{row_kind::user, "user"},
           {row_kind::assistant, "assistant"},
           {row_kind::tool_call, "tool_call"},
           {row_kind::tool_result, "tool_result"},
           {row_kind::approval_request, "approval_request"},
           {row_kind::approval_response, "approval_response"},
           {row_kind::system, "system"}}};
}

// rows.status: where the row's subject stands (an approval request is pending until answered).
enum class row_status { pending, in_progress, complete, failed, approved, denied, cancelled };
constexpr std::array<enum_name<row_status>, 7> enum_names(row_status) {
  return {{{row_status::pending, "pending"},
           {row_status::in_progress, "in_progress"},
           {row_status::complete, "complete"},
           {row_status::failed, "failed"},
           {row_status::approved, "approved"},
           {row_status::denied, "denied"},
           {row_status::cancelled, "cancelled"}}};
}

// What an SCM poller last saw of a pull request: prs.state, prs.review_decision,
// prs.mergeability, prs.ci_state.
enum class pr_state { open, merged, closed };
constexpr std::array<enum_name<pr_state>, 3> enum_names(pr_state) {
  return {{{pr_state::open, "open"}, {pr_state::merged, "merged"}, {pr_state::closed, "closed"}}};
}

enum class review_decision { approved, changes_requested, review_required, none };
constexpr std::array<enum_name<review_decision>, 4> enum_names(review_decision) {
  return {{{review_decision::approved, "approved"},
           {review_decision::changes_requested, "changes_requested"},
           {review_decision::review_required, "review_required"},
           {review_decision::none, "none"}}};
}

enum class mergeability { mergeable, conflicting, unknown };
constexpr std::array<enum_name<mergeability>, 3> enum_names(mergeability) {
  return {{{mergeability::mergeable, "mergeable"},
           {mergeability::conflicting, "conflicting"},
           {mergeability::unknown, "unknown"}}};
}

enum class ci_state { pending, passing, failing, none };
constexpr std::array<enum_name<ci_state>, 4> enum_names(ci_state) {
  return {{{ci_state::pending, "pending"},
           {ci_state::passing, "passing"},
           {ci_state::failing, "failing"},
           {ci_state::none, "none"}}};
}

// pr_checks.status: one CI check's run on one commit.
enum class check_status {
  queued,
  in_progress,
  success,
  failure,
  cancelled,
  skipped,
  neutral,
  timed_out
};
constexpr std::array<enum_name<check_status>, 8> enum_names(check_status) {
  return {{{check_status::queued, "queued"},
           {check_status::in_progress, "in_progress"},
           {check_status::success, "success"},
           {check_status::failure, "failure"},
           {check_status::cancelled, "cancelled"},
           {check_status::skipped, "skipped"},
           {check_status::neutral, "neutral"},
           {check_status::timed_out, "timed_out"}}};
}

// The value `text` read from `column` ("table.column") stands for, or storage_corrupt naming
// the column, the text and the values it may hold.
template <named_enum E>
result<E> stored_enum(std::string_view column, std::string_view text) {
  if (auto value = parse_enum<E>(text)) return *value;
  return make_failure(failure_kind::internal, std::string(k_storage_corrupt),
                      std::string(column) + " holds '" + std::string(text) +
                          "', which is not one of " + joined_names<E>() +
                          " (the database was changed outside ordo)");
}

}  // namespace ordo::sqlite
