#include "sessions/lifecycle.hpp"

#include <gtest/gtest.h>

namespace ordo::sessions {
namespace {

TEST(lifecycle, every_state_except_ended_can_end) {
  for (std::string_view name : all_state_names()) {
    session_state s = *parse_session_state(name);
    EXPECT_EQ(transition_allowed(s, session_state::ended), s != session_state::ended) << name;
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

TEST(lifecycle, the_client_state_prefers_requires_action_then_running) {
  EXPECT_EQ(derive_client_state(true, true), client_state::requires_action);
  EXPECT_EQ(derive_client_state(false, true), client_state::running);
  EXPECT_EQ(derive_client_state(false, false), client_state::idle);
}

TEST(lifecycle, names_round_trip) {
  for (std::string_view name : all_state_names()) {
    EXPECT_EQ(to_string(*parse_session_state(name)), name);
  }
  for (std::string_view name : all_end_reason_names()) {
    EXPECT_EQ(to_string(*parse_end_reason(name)), name);
  }
}

// ---- error paths -----------------------------------------------------------------------------

TEST(lifecycle, refuses_skipping_ahead_going_back_and_leaving_ended) {
  EXPECT_FALSE(transition_allowed(session_state::created, session_state::active));
  EXPECT_FALSE(transition_allowed(session_state::closing, session_state::active));
  EXPECT_FALSE(transition_allowed(session_state::suspended, session_state::detached));
  for (std::string_view name : all_state_names()) {
    EXPECT_FALSE(transition_allowed(session_state::ended, *parse_session_state(name)));
  }
  EXPECT_FALSE(parse_session_state("ACTIVE"));
  EXPECT_FALSE(parse_end_reason("done"));
}

}  // namespace
}  // namespace ordo::sessions
