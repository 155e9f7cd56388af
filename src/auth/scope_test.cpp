#include "auth/scope.hpp"

#include <gtest/gtest.h>

namespace ordo::auth {
namespace {

principal with(std::string_view scopes) {
  principal p;
  p.scopes = *parse_scopes(scopes, true);
  return p;
}

TEST(glob, one_star_stays_within_a_segment_and_two_cross_segments) {
  EXPECT_TRUE(glob_matches("chat/*", "chat/a"));
  EXPECT_FALSE(glob_matches("chat/*", "chat/a/b"));
  EXPECT_TRUE(glob_matches("chat/**", "chat/a/b"));
  EXPECT_TRUE(glob_matches("chat/**", "chat/"));
  EXPECT_FALSE(glob_matches("chat/**", "chatter/a"));
  EXPECT_TRUE(glob_matches("**", "anything/at/all"));
  EXPECT_TRUE(glob_matches("logs/*/today", "logs/web/today"));
  EXPECT_FALSE(glob_matches("logs/*/today", "logs/web/x/today"));
  EXPECT_TRUE(glob_matches("**/x/*", "a/x/b/x/c"));
  EXPECT_FALSE(glob_matches("**/x/*", "a/x/b/c"));
  EXPECT_TRUE(glob_matches("web-*", "web-app"));
  EXPECT_FALSE(glob_matches("web-*", "api"));
  EXPECT_TRUE(glob_matches("exact", "exact"));
  EXPECT_FALSE(glob_matches("exact", "exactly"));
  EXPECT_FALSE(glob_matches("", "a"));
}

TEST(scope, parses_the_grammar_and_writes_it_back) {
  for (std::string_view text :
       {"admin", "metrics:read", "agent:s-1", "streams:read:chat/**", "streams:write:a",
        "streams:admin:**", "sessions:read:web-app", "sessions:write:*"}) {
    auto s = parse_scope(text);
    ASSERT_TRUE(s) << text;
    EXPECT_EQ(s->to_string(), text);
  }
}

TEST(scope, refuses_unknown_and_malformed_scopes_with_a_reason) {
  for (std::string_view text :
       {"", "root", "streams:read", "streams:read:", "streams:own:x", "sessions:admin:x",
        "agent:", "agent:s-*", "streams:read:a***", "streams:read:a\tb"}) {
    auto s = parse_scope(text);
    ASSERT_FALSE(s) << text;
    EXPECT_EQ(s.error().code, "invalid_scope");
  }
}

TEST(scope, lists_skip_unknown_scopes_unless_strict) {
  auto lenient = parse_scopes("  openid streams:read:a  profile ", false);
  ASSERT_TRUE(lenient);
  ASSERT_EQ(lenient->size(), 1u);
  EXPECT_EQ((*lenient)[0].to_string(), "streams:read:a");
  EXPECT_FALSE(parse_scopes("openid streams:read:a", true));
}

TEST(principal, levels_nest_admin_over_write_over_read) {
  auto p = with("streams:write:chat/** streams:read:logs/*");
  EXPECT_TRUE(p.may_stream("chat/a", access_level::read));
  EXPECT_TRUE(p.may_stream("chat/a", access_level::write));
  EXPECT_FALSE(p.may_stream("chat/a", access_level::admin));
  EXPECT_TRUE(p.may_stream("logs/x", access_level::read));
  EXPECT_FALSE(p.may_stream("logs/x", access_level::write));
  EXPECT_FALSE(p.may_stream("other", access_level::read));
  EXPECT_FALSE(p.is_admin());
  EXPECT_FALSE(p.may_read_metrics());
}

TEST(principal, admin_may_do_everything) {
  auto p = with("admin");
  EXPECT_TRUE(p.may_stream("x/y", access_level::admin));
  EXPECT_TRUE(p.may_project("any", access_level::write));
  EXPECT_TRUE(p.may_read_metrics());
  EXPECT_TRUE(p.is_admin());
}

TEST(principal, sessions_scopes_name_projects_and_agents_one_session) {
  auto p = with("sessions:read:web-* sessions:write:api agent:s-7");
  EXPECT_TRUE(p.may_project("web-app", access_level::read));
  EXPECT_FALSE(p.may_project("web-app", access_level::write));
  EXPECT_TRUE(p.may_project("api", access_level::write));
  EXPECT_FALSE(p.may_project("billing", access_level::read));
  EXPECT_TRUE(p.is_agent_of("s-7"));
  EXPECT_FALSE(p.is_agent_of("s-8"));
  EXPECT_FALSE(p.may_stream("web-app", access_level::read));
}

}  // namespace
}  // namespace ordo::auth
