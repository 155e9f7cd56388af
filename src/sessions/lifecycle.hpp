// The session lifecycle: the one table of allowed state transitions, the typed end reasons,
// and the client-facing derived state. Every state change (API or reaper) is checked here.
//
//   created ──> starting ──> active <──> suspended
//                  │           │  ^
//                  │           v  │ (agent back)
//                  └──────> detached           any non-ended ──> closing ──> ended
//   any non-ended state ──> ended (an explicit end always works, with a reason)
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace ordo::sessions {

enum class session_state { created, starting, active, suspended, detached, closing, ended };
enum class end_reason { completed, killed, failed, pr_merged, reaped, cancelled };
enum class client_state { idle, running, requires_action };

std::string_view to_string(session_state s);
std::string_view to_string(end_reason r);
std::string_view to_string(client_state s);
std::optional<session_state> parse_session_state(std::string_view text);
std::optional<end_reason> parse_end_reason(std::string_view text);
std::optional<client_state> parse_client_state(std::string_view text);

// The targets a session in `from` may move to (ended is always among them unless `from` is ended).
const std::vector<session_state>& allowed_transitions(session_state from);
bool transition_allowed(session_state from, session_state to);

// States in which an agent is expected to heartbeat (the reaper watches them).
bool expects_heartbeat(session_state s);

// requires_action (an approval request is pending) > running (an execution is active) > idle.
client_state derive_client_state(bool awaiting_approval, bool execution_active);

const std::vector<std::string_view>& all_state_names();
const std::vector<std::string_view>& all_end_reason_names();

}  // namespace ordo::sessions
