// Tests of the session API's JSON: the canonical form idempotent retries compare, stored texts
// read back, and the request-body reader's refusals, each naming what to fix.
#include "sessions/api_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ordo::sessions {
namespace {

TEST(api_json, canonical_json_sorts_members_at_every_depth_without_whitespace) {
  json::value a = json::parse(R"({"b": 1, "a": {"y": [ {"d": 2, "c": 3} ], "x": null}})");
  json::value b = json::parse(R"({"a":{"x":null,"y":[{"c":3,"d":2}]},"b":1})");
  EXPECT_EQ(canonical_json(a), R"({"a":{"x":null,"y":[{"c":3,"d":2}]},"b":1})");
  EXPECT_EQ(canonical_json(a), canonical_json(b));
}

TEST(api_json, canonical_json_keeps_array_order) {
  EXPECT_NE(canonical_json(json::parse("[1,2]")), canonical_json(json::parse("[2,1]")));
}

TEST(api_json, parse_stored_reads_json_and_gives_other_text_back_as_a_string) {
  EXPECT_EQ(parse_stored(R"({"a":1})"), json::parse(R"({"a":1})"));
  EXPECT_EQ(parse_stored("not json"), json::value("not json"));
}

TEST(api_json, session_ids_are_the_project_and_the_number) {
  EXPECT_EQ(session_id("proj", sqlite::session_number{12}), "proj-12");
}

TEST(api_json, command_ids_are_the_session_id_and_the_sequence) {
  EXPECT_EQ(command_id("proj-1", 7), "proj-1-c7");
}

TEST(api_json, body_reader_reads_absent_null_and_string_fields_apart) {
  auto r = body_reader::of(json::parse(R"({"a":"x","b":null})"), {"a", "b", "c"});
  ASSERT_TRUE(r);
  auto a = r->text("a", true, 10);
  ASSERT_TRUE(a);
  ASSERT_TRUE(*a && **a);
  EXPECT_EQ(***a, "x");
  auto b = r->text("b", true, 10);
  ASSERT_TRUE(b);
  ASSERT_TRUE(*b);
  EXPECT_FALSE(**b);  // present, null
  auto c = r->text("c", true, 10);
  ASSERT_TRUE(c);
  EXPECT_FALSE(*c);  // absent
}

// ---- errors

TEST(api_json, body_reader_refuses_a_body_that_is_not_an_object) {
  auto r = body_reader::of(json::parse("[1]"), {"a"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, failure_kind::invalid);
  EXPECT_EQ(r.error().code, "invalid_body");
}

TEST(api_json, body_reader_refuses_an_unknown_field_and_lists_the_accepted_ones) {
  auto r = body_reader::of(json::parse(R"({"nmae":"x"})"), {"name", "id"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "unknown_field");
  EXPECT_EQ(r.error().message, "unknown field 'nmae'; this request accepts: name, id");
}

TEST(api_json, body_reader_refuses_a_wrong_type_naming_what_the_field_must_be) {
  auto r = body_reader::of(json::parse(R"({"a":1,"b":null})"), {"a", "b"});
  ASSERT_TRUE(r);
  auto a = r->text("a", true, 10);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, "invalid_field");
  EXPECT_EQ(a.error().message, "field 'a' must be a string or null");
  auto b = r->text("b", false, 10);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message, "field 'b' must be a string");
}

TEST(api_json, body_reader_refuses_text_longer_than_its_limit) {
  auto r = body_reader::of(json::parse(R"({"a":"abcd"})"), {"a"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->text("a", false, 4));
  auto a = r->text("a", false, 3);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message, "field 'a' is longer than 3 bytes");
}

TEST(api_json, required_text_refuses_absent_null_and_empty_fields) {
  auto r = body_reader::of(json::parse(R"({"b":""})"), {"a", "b"});
  ASSERT_TRUE(r);
  for (const char* key : {"a", "b"}) {
    auto v = r->required_text(key, 10);
    ASSERT_FALSE(v) << key;
    EXPECT_EQ(v.error().code, "missing_field") << key;
    EXPECT_EQ(v.error().message, "field '" + std::string(key) + "' is required") << key;
  }
}

}  // namespace
}  // namespace ordo::sessions
