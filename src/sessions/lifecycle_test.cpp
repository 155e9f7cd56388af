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

// ---- error paths -----------------------------------------------------------------------------

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
