#include "http/access.hpp"

#include <gtest/gtest.h>

#include "http/session_api.hpp"

namespace ordo::http {
namespace {

auth::principal with(std::string_view scopes) {
  auth::principal p;
  p.scopes = *auth::parse_scopes(scopes, true);
  return p;
}

// Generated from the tables themselves: a route added without a rule fails here.
TEST(access, every_route_of_both_tables_declares_a_rule) {
  auto rules = router_route_rules();
  for (auto& r : session_route_rules())
    rules.push_back(r);
  ASSERT_GT(rules.size(), 30u);
  for (const auto& r : rules)
    EXPECT_FALSE(r.rule.empty()) << r.method << " " << r.path << " has no access rule";
}

TEST(access, bearer_tokens_and_cookies_are_read_strictly) {
  EXPECT_EQ(bearer_token(std::string("Bearer abc")), "abc");
  EXPECT_EQ(bearer_token(std::string("bearer   abc ")), "abc");
  EXPECT_EQ(bearer_token(std::string("Basic abc")), std::nullopt);
  EXPECT_EQ(bearer_token(std::string("Bearerabc")), std::nullopt);
  EXPECT_EQ(bearer_token(std::nullopt), std::nullopt);
  EXPECT_EQ(cookie_value(std::string("a=1; ordo_token=t-2 ;b=3"), "ordo_token"), "t-2");
  EXPECT_EQ(cookie_value(std::string("xordo_token=1"), "ordo_token"), std::nullopt);
}

TEST(access, an_unreadable_stream_answers_like_a_missing_one_and_a_read_only_one_403) {
  auto p = with("streams:read:chat/**");
  auto hidden = check_stream_access(p, "logs/a", auth::access_level::write);
  ASSERT_TRUE(hidden);
  EXPECT_EQ(hidden->code, stream_not_found().code);
  EXPECT_EQ(hidden->message, stream_not_found().message);
  auto read_only = check_stream_access(p, "chat/a", auth::access_level::write);
  ASSERT_TRUE(read_only);
  EXPECT_EQ(read_only->kind, failure_kind::forbidden);
  EXPECT_FALSE(check_stream_access(p, "chat/a", auth::access_level::read));
  EXPECT_EQ(stream_level_of("DELETE"), auth::access_level::admin);
  EXPECT_EQ(stream_level_of("PUT"), auth::access_level::write);
}

TEST(access, an_agent_may_work_its_own_session_but_not_steer_it) {
  auto agent = with("agent:s-1");
  EXPECT_FALSE(check_session_access(agent, "s-1", "web", session_access::session_read));
  EXPECT_FALSE(check_session_access(agent, "s-1", "web", session_access::session_agent));
  auto steer = check_session_access(agent, "s-1", "web", session_access::session_write);
  ASSERT_TRUE(steer);
  EXPECT_EQ(steer->kind, failure_kind::forbidden);
  auto other = check_session_access(agent, "s-2", "web", session_access::session_read);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->code, "session_not_found");
  EXPECT_EQ(other->message, "no session 's-2'");
}

TEST(access, project_scopes_decide_reads_and_writes_and_lists_see_only_theirs) {
  auto reader = with("sessions:read:web-*");
  EXPECT_FALSE(check_project_access(reader, "web-app", session_access::project_read));
  EXPECT_EQ(check_project_access(reader, "web-app", session_access::project_write)->kind,
            failure_kind::forbidden);
  EXPECT_EQ(check_project_access(reader, "api", session_access::project_read)->code,
            "project_not_found");
  auto visible = visibility_of(std::make_shared<auth::principal>(reader));
  ASSERT_TRUE(visible);
  EXPECT_TRUE(visible("web-app", ""));
  EXPECT_FALSE(visible("api", "s-1"));
  EXPECT_FALSE(visibility_of(unrestricted()));
}

}  // namespace
}  // namespace ordo::http
