// The session lifecycle: the one table of allowed state transitions, and the client-facing
// derived state; and a command's, below. Every state change (API or reaper) is checked here.
// The states, end reasons, client states and command statuses, and the texts they are stored
// and shown as, are the session tables' (storage/sqlite/session_enums.hpp).
//
//   created ──> starting ──> active <──> suspended
//                  │           │  ^
//                  │           v  │ (agent back)
//                  └──────> detached           any non-ended ──> closing ──> ended
//   any non-ended state ──> ended (an explicit end always works, with a reason)
#pragma once

#include <vector>

#include "storage/sqlite/session_enums.hpp"

namespace ordo::sessions {

using sqlite::client_state;
using sqlite::command_status;
using sqlite::end_reason;
using sqlite::session_state;

// The targets a session in `from` may move to (ended is always among them unless `from` is ended).
const std::vector<session_state>& allowed_transitions(session_state from);
bool transition_allowed(session_state from, session_state to);

// States in which an agent is expected to heartbeat (the reaper watches them).
bool expects_heartbeat(session_state s);

// requires_action (an approval request is pending) > running (an execution is active) > idle.
client_state derive_client_state(bool awaiting_approval, bool execution_active);

// A command's lifecycle:
//
//   accepted ──> delivered ──> done | failed      (the agent's acknowledgements)
//      │              │
//      │              └──────> interrupted       (the agent was lost first)
//      └──> done | failed | interrupted
//
// done, failed and interrupted are final: a command never runs again.
const std::vector<command_status>& allowed_transitions(command_status from);
bool transition_allowed(command_status from, command_status to);

// The statuses an agent's acknowledgement may set (PATCH .../commands/{id}): delivered, done,
// failed. accepted is where a command starts; interrupted is the server's to set.
bool is_acknowledgement(command_status s);

}  // namespace ordo::sessions
