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

constexpr std::array<std::string_view, 7> k_state_names{
    "created", "starting", "active", "suspended", "detached", "closing", "ended"};
constexpr std::array<std::string_view, 6> k_reason_names{"completed", "killed", "failed",
                                                         "pr_merged", "reaped", "cancelled"};
constexpr std::array<std::string_view, 3> k_client_names{"idle", "running", "requires_action"};

template <class Enum, std::size_t N>
std::optional<Enum> parse(std::string_view text, const std::array<std::string_view, N>& names) {
  auto it = std::find(names.begin(), names.end(), text);
  if (it == names.end()) return std::nullopt;
  return static_cast<Enum>(it - names.begin());
}

}  // namespace

std::string_view to_string(session_state s) {
  return k_state_names[static_cast<int>(s)];
}
std::string_view to_string(end_reason r) {
  return k_reason_names[static_cast<int>(r)];
}
std::string_view to_string(client_state s) {
  return k_client_names[static_cast<int>(s)];
}

std::optional<session_state> parse_session_state(std::string_view text) {
  return parse<session_state>(text, k_state_names);
}
std::optional<end_reason> parse_end_reason(std::string_view text) {
  return parse<end_reason>(text, k_reason_names);
}
std::optional<client_state> parse_client_state(std::string_view text) {
  return parse<client_state>(text, k_client_names);
}

const std::vector<session_state>& allowed_transitions(session_state from) {
  return k_transitions[static_cast<int>(from)].second;
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

const std::vector<std::string_view>& all_state_names() {
  static const std::vector<std::string_view> names(k_state_names.begin(), k_state_names.end());
  return names;
}

const std::vector<std::string_view>& all_end_reason_names() {
  static const std::vector<std::string_view> names(k_reason_names.begin(), k_reason_names.end());
  return names;
}

}  // namespace ordo::sessions
