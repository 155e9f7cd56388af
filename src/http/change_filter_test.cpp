#include "http/change_filter.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace ordo::http {
namespace {

query_param param(std::string key, std::string value) {
  return query_param{std::move(key), std::move(value), true};
}

// `f` keeps each event of `kept` and drops each of `dropped`.
void expect_keeps(const change_filter& f, std::initializer_list<std::string_view> kept,
                  std::initializer_list<std::string_view> dropped) {
  for (std::string_view e : kept)
    EXPECT_TRUE(f.matches(e)) << e;
  for (std::string_view e : dropped)
    EXPECT_FALSE(f.matches(e)) << e;
}

change_filter filter_of(const std::vector<query_param>& params) {
  auto f = change_filter_from_query(params);
  EXPECT_TRUE(f) << f.error().message;
  return f ? *f : change_filter{};
}

const std::string k_session_event =
    R"({"type":"session.updated","project":"shop","session":"web-app-1","offset":"x"})";
const std::string k_project_event = R"({"type":"project.created","project":"shop"})";
const std::string k_check_event =
    R"({"type":"check.created","project":"shop","session":"web-app-2"})";
const std::string k_other_project_event =
    R"({"type":"session.created","project":"blog","session":"web-app-1"})";

// ---- change_types ----------------------------------------------------------------------------

TEST(change_filter, change_types_lists_every_documented_type_once) {
  const std::vector<std::string_view> documented = {
      "project.created",      "project.archived", "session.created",   "session.updated",
      "session.transitioned", "session.ended",    "execution.started", "execution.finished",
      "command.accepted",     "command.updated",  "row.appended",      "row.updated",
      "pr.created",           "pr.updated",       "check.created",     "check.updated",
      "comment.created",      "comment.updated",  "comment.resolved",  "comment.removed"};
  EXPECT_EQ(change_types(), documented);
}

// ---- change_filter_from_query ----------------------------------------------------------------

TEST(change_filter, no_filter_parameters_make_an_inactive_filter) {
  change_filter f = filter_of({param("offset", "-1"), param("live", "sse"), param("x", "y")});
  EXPECT_FALSE(f.active());
  EXPECT_FALSE(f.project);
  EXPECT_FALSE(f.session);
  EXPECT_TRUE(f.types.empty());
}

TEST(change_filter, project_session_and_types_are_read_from_the_query) {
  change_filter f = filter_of({param("project", "shop"), param("session", "web-app-1"),
                               param("types", "check.created,check.updated")});
  EXPECT_TRUE(f.active());
  EXPECT_EQ(f.project, "shop");
  EXPECT_EQ(f.session, "web-app-1");
  EXPECT_EQ(f.types, (std::vector<std::string>{"check.created", "check.updated"}));
}

TEST(change_filter, each_parameter_alone_makes_the_filter_active) {
  EXPECT_TRUE(filter_of({param("project", "shop")}).active());
  EXPECT_TRUE(filter_of({param("session", "s")}).active());
  EXPECT_TRUE(filter_of({param("types", "pr.created")}).active());
}

TEST(change_filter, repeated_types_parameters_add_up) {
  change_filter f =
      filter_of({param("types", "pr.created"), param("types", "pr.updated,row.updated")});
  EXPECT_EQ(f.types, (std::vector<std::string>{"pr.created", "pr.updated", "row.updated"}));
}

TEST(change_filter, every_known_type_is_accepted) {
  for (std::string_view t : change_types()) {
    change_filter f = filter_of({param("types", std::string(t))});
    EXPECT_EQ(f.types, std::vector<std::string>{std::string(t)});
  }
}

// ---- change_filter_from_query: refusals ------------------------------------------------------

void expect_invalid_types(const std::vector<query_param>& params, std::string_view named) {
  auto f = change_filter_from_query(params);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().kind, failure_kind::invalid);
  EXPECT_EQ(f.error().code, "invalid_types");
  EXPECT_NE(f.error().message.find("'" + std::string(named) + "'"), std::string::npos)
      << f.error().message;
  // The message lists the known types.
  EXPECT_NE(f.error().message.find("project.created"), std::string::npos);
  EXPECT_NE(f.error().message.find("comment.removed"), std::string::npos);
}

TEST(change_filter, an_unknown_type_is_refused_and_named) {
  expect_invalid_types({param("types", "pr.merged")}, "pr.merged");
  expect_invalid_types({param("types", "check.created,pr.merged")}, "pr.merged");
  expect_invalid_types({param("types", "Check.Created")}, "Check.Created");
  expect_invalid_types({param("types", "check.created ")}, "check.created ");
}

TEST(change_filter, an_empty_type_is_refused) {
  expect_invalid_types({param("types", "")}, "");
  expect_invalid_types({param("types", "check.created,")}, "");
  expect_invalid_types({param("types", ",check.created")}, "");
  expect_invalid_types({param("types", "check.created,,check.updated")}, "");
  expect_invalid_types({{"types", "", false}}, "");
}

// ---- matches ---------------------------------------------------------------------------------

TEST(change_filter, an_inactive_filter_matches_everything_even_non_json) {
  change_filter f;
  EXPECT_TRUE(f.matches(k_session_event));
  EXPECT_TRUE(f.matches("not json"));
  EXPECT_TRUE(f.matches("[]"));
}

TEST(change_filter, a_project_filter_keeps_the_project_and_its_sessions_events) {
  change_filter f;
  f.project = "shop";
  expect_keeps(f, {k_session_event, k_project_event, k_check_event}, {k_other_project_event});
}

TEST(change_filter, a_session_filter_never_matches_project_events) {
  change_filter f;
  f.session = "web-app-1";
  expect_keeps(f, {k_session_event, k_other_project_event}, {k_project_event, k_check_event});
}

TEST(change_filter, a_types_filter_keeps_the_listed_types) {
  change_filter f;
  f.types = {"check.created", "project.created"};
  expect_keeps(f, {k_check_event, k_project_event}, {k_session_event, R"({"project":"shop"})"});
}

TEST(change_filter, all_filters_must_match) {
  change_filter f = filter_of({param("project", "shop"), param("session", "web-app-1"),
                               param("types", "session.updated,session.created")});
  EXPECT_TRUE(f.matches(k_session_event));
  EXPECT_FALSE(f.matches(k_other_project_event));  // another project
  EXPECT_FALSE(f.matches(k_check_event));          // another session and type
  EXPECT_FALSE(f.matches(
      R"({"type":"session.ended","project":"shop","session":"web-app-1"})"));  // another type
}

TEST(change_filter, values_are_compared_exactly) {
  change_filter f;
  f.project = "Shop";
  EXPECT_FALSE(f.matches(k_project_event));
  f.project = "sho";
  EXPECT_FALSE(f.matches(k_project_event));
}

TEST(change_filter, an_active_filter_drops_malformed_or_non_object_events) {
  change_filter f;
  f.project = "shop";
  expect_keeps(f, {},
               {"", "not json", R"({"project":"shop")", R"(["project","shop"])", R"("shop")"});
}

TEST(change_filter, a_field_that_is_not_a_string_does_not_match) {
  change_filter f;
  f.project = "1";
  EXPECT_FALSE(f.matches(R"({"type":"project.created","project":1})"));
  EXPECT_FALSE(f.matches(R"({"type":"project.created","project":null})"));
  change_filter t;
  t.types = {"project.created"};
  EXPECT_FALSE(t.matches(R"({"type":["project.created"]})"));
}

// ---- fingerprint -----------------------------------------------------------------------------

TEST(change_filter, the_fingerprint_tells_different_filters_apart) {
  std::vector<change_filter> filters(6);
  filters[1].project = "a";
  filters[2].session = "a";
  filters[3].types = {"pr.created"};
  filters[4].types = {"pr.created", "pr.updated"};
  filters[5].project = "a";
  filters[5].session = "b";
  for (std::size_t i = 0; i < filters.size(); ++i) {
    for (std::size_t j = i + 1; j < filters.size(); ++j) {
      EXPECT_NE(filters[i].fingerprint(), filters[j].fingerprint()) << i << " " << j;
    }
  }
}

// Regression: values were joined without marks, so `?project=` and `?session=` (both "p=;s=;t=")
// or project "x;s=y" and project "x" with session "y;s=" shared a fingerprint, and so an ETag:
// a read with one filter could get a 304 for a body only the other had received.
TEST(change_filter, filters_that_match_different_events_never_share_a_fingerprint) {
  change_filter empty_project, empty_session, tricky, plain;
  empty_project.project = "";
  empty_session.session = "";
  tricky.project = "x;s=y";
  plain.project = "x";
  plain.session = "y;s=";
  EXPECT_NE(empty_project.fingerprint(), empty_session.fingerprint());
  EXPECT_NE(empty_project.fingerprint(), change_filter{}.fingerprint());
  EXPECT_NE(tricky.fingerprint(), plain.fingerprint());
}

TEST(change_filter, the_fingerprint_is_stable) {
  change_filter a = filter_of({param("project", "shop"), param("types", "pr.created")});
  change_filter b = filter_of({param("types", "pr.created"), param("project", "shop")});
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint(), a.fingerprint());
}

}  // namespace
}  // namespace ordo::http
