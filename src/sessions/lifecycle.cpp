#include "sessions/lifecycle.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace ordo::sessions {

namespace {

using enum session_state;

// The lifecycle, in one table.
const std::array<std::pair<session_state, std::vector<session_state>>, 7> k_transitions{{
    {created, {starting, closing, ended}},
    {starting, {active, detached, closing, ended}},
    {active, {suspended, detached, closing, ended}},
    {suspended, {active, closing, ended}},
    {detached, {active, closing, ended}},
    {closing, {ended}},
    {ended, {}},
}};

}  // namespace

const std::vector<session_state>& allowed_transitions(session_state from) {
  auto it = std::find_if(k_transitions.begin(), k_transitions.end(),
                         [from](const auto& entry) { return entry.first == from; });
  // Every state has its entry (lifecycle_test checks): only a cast can miss.
  static const std::vector<session_state> none;
  return it == k_transitions.end() ? none : it->second;
}

bool transition_allowed(session_state from, session_state to) {
  const auto& targets = allowed_transitions(from);
  return std::find(targets.begin(), targets.end(), to) != targets.end();
}

bool expects_heartbeat(session_state s) {
  return s == session_state::starting || s == session_state::active;
}

client_state derive_client_state(bool awaiting_approval, bool execution_active) {
  if (awaiting_approval) return client_state::requires_action;
  if (execution_active) return client_state::running;
  return client_state::idle;
}

}  // namespace ordo::sessions
