#include "sessions/lifecycle.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace ordo::sessions {

namespace {

using enum session_state;

// The lifecycle, in one table.
const std::array<std::pair<session_state, std::vector<session_state>>, 7> k_session_transitions{{
    {created, {starting, closing, ended}},
    {starting, {active, detached, closing, ended}},
    {active, {suspended, detached, closing, ended}},
    {suspended, {active, closing, ended}},
    {detached, {active, closing, ended}},
    {closing, {ended}},
    {ended, {}},
}};

// A command's, in one table.
const std::array<std::pair<command_status, std::vector<command_status>>, 5> k_command_transitions{{
    {command_status::accepted,
     {command_status::delivered, command_status::done, command_status::failed,
      command_status::interrupted}},
    {command_status::delivered,
     {command_status::done, command_status::failed, command_status::interrupted}},
    {command_status::done, {}},
    {command_status::failed, {}},
    {command_status::interrupted, {}},
}};

// The targets of `from` in `table`; every value has its entry (lifecycle_test checks), so only
// a cast can miss.
template <class E, std::size_t N>
const std::vector<E>& targets_in(const std::array<std::pair<E, std::vector<E>>, N>& table, E from) {
  auto it = std::find_if(table.begin(), table.end(),
                         [from](const auto& entry) { return entry.first == from; });
  static const std::vector<E> none;
  return it == table.end() ? none : it->second;
}

template <class E>
bool is_among(const std::vector<E>& targets, E to) {
  return std::find(targets.begin(), targets.end(), to) != targets.end();
}

}  // namespace

const std::vector<session_state>& allowed_transitions(session_state from) {
  return targets_in(k_session_transitions, from);
}

bool transition_allowed(session_state from, session_state to) {
  return is_among(allowed_transitions(from), to);
}

bool expects_heartbeat(session_state s) {
  return s == session_state::starting || s == session_state::active;
}

client_state derive_client_state(bool awaiting_approval, bool execution_active) {
  if (awaiting_approval) return client_state::requires_action;
  if (execution_active) return client_state::running;
  return client_state::idle;
}

const std::vector<command_status>& allowed_transitions(command_status from) {
  return targets_in(k_command_transitions, from);
}

bool transition_allowed(command_status from, command_status to) {
  return is_among(allowed_transitions(from), to);
}

bool is_acknowledgement(command_status s) {
  return s == command_status::delivered || s == command_status::done || s == command_status::failed;
}

}  // namespace ordo::sessions
