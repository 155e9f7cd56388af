#include "sessions/lifecycle.hpp"

#include <gtest/gtest.h>

namespace ordo::sessions {
namespace {

TEST(lifecycle, every_state_except_ended_can_end) {
  for (session_state s : enum_values<session_state>()) {
    EXPECT_EQ(transition_allowed(s, session_state::ended), s != session_state::ended)
        << to_string(s);
  }
}

TEST(lifecycle, follows_the_design_state_machine) {
  EXPECT_TRUE(transition_allowed(session_state::created, session_state::starting));
  EXPECT_TRUE(transition_allowed(session_state::starting, session_state::active));
  EXPECT_TRUE(transition_allowed(session_state::active, session_state::suspended));
  EXPECT_TRUE(transition_allowed(session_state::suspended, session_state::active));
  EXPECT_TRUE(transition_allowed(session_state::active, session_state::detached));
  EXPECT_TRUE(transition_allowed(session_state::detached, session_state::active));
  EXPECT_TRUE(transition_allowed(session_state::active, session_state::closing));
  EXPECT_TRUE(transition_allowed(session_state::closing, session_state::ended));
}

TEST(lifecycle, every_state_but_ended_has_somewhere_to_go) {
  for (session_state s : enum_values<session_state>()) {
    EXPECT_EQ(allowed_transitions(s).empty(), s == session_state::ended) << to_string(s);
  }
}

TEST(lifecycle, only_starting_and_active_sessions_expect_heartbeats) {
  for (session_state s : enum_values<session_state>()) {
    EXPECT_EQ(expects_heartbeat(s), s == session_state::starting || s == session_state::active)
        << to_string(s);
  }
}

TEST(lifecycle, the_client_state_prefers_requires_action_then_running) {
  EXPECT_EQ(derive_client_state(true, true), client_state::requires_action);
  EXPECT_EQ(derive_client_state(false, true), client_state::running);
  EXPECT_EQ(derive_client_state(false, false), client_state::idle);
}

TEST(command_lifecycle, accepted_then_acknowledged_or_interrupted) {
  EXPECT_TRUE(transition_allowed(command_status::accepted, command_status::delivered));
  EXPECT_TRUE(transition_allowed(command_status::accepted, command_status::done));
  EXPECT_TRUE(transition_allowed(command_status::accepted, command_status::failed));
  EXPECT_TRUE(transition_allowed(command_status::delivered, command_status::done));
  EXPECT_TRUE(transition_allowed(command_status::delivered, command_status::failed));
  EXPECT_TRUE(transition_allowed(command_status::accepted, command_status::interrupted));
  EXPECT_TRUE(transition_allowed(command_status::delivered, command_status::interrupted));
}

TEST(command_lifecycle, an_agent_acknowledges_with_delivered_done_or_failed_only) {
  for (command_status s : enum_values<command_status>()) {
    EXPECT_EQ(is_acknowledgement(s), s == command_status::delivered || s == command_status::done ||
                                         s == command_status::failed)
        << to_string(s);
  }
}

// ---- error paths -----------------------------------------------------------------------------

TEST(command_lifecycle, final_statuses_never_change_and_nothing_goes_back) {
  for (command_status from :
       {command_status::done, command_status::failed, command_status::interrupted}) {
    EXPECT_TRUE(allowed_transitions(from).empty()) << to_string(from);
  }
  for (command_status s : enum_values<command_status>()) {
    EXPECT_FALSE(transition_allowed(s, command_status::accepted)) << to_string(s);
    EXPECT_FALSE(transition_allowed(s, s)) << to_string(s) << ": a repeat is not a transition";
  }
}

TEST(lifecycle, refuses_skipping_ahead_going_back_and_leaving_ended) {
  EXPECT_FALSE(transition_allowed(session_state::created, session_state::active));
  EXPECT_FALSE(transition_allowed(session_state::closing, session_state::active));
  EXPECT_FALSE(transition_allowed(session_state::suspended, session_state::detached));
  for (session_state s : enum_values<session_state>()) {
    EXPECT_FALSE(transition_allowed(session_state::ended, s)) << to_string(s);
    EXPECT_FALSE(transition_allowed(s, session_state::created)) << "nothing goes back to created";
  }
}

}  // namespace
}  // namespace ordo::sessions
