#include "streams/content_type.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ordo {
namespace {

TEST(content_type, plain_media_type_is_returned_as_is) {
  EXPECT_EQ(normalized_media_type("application/json"), "application/json");
  EXPECT_EQ(normalized_media_type("text/plain"), "text/plain");
  EXPECT_EQ(normalized_media_type("application/octet-stream"), "application/octet-stream");
}

TEST(content_type, type_and_subtype_are_lowercased) {
  EXPECT_EQ(normalized_media_type("Application/JSON"), "application/json");
  EXPECT_EQ(normalized_media_type("TEXT/Plain"), "text/plain");
}

TEST(content_type, parameters_are_dropped) {
  EXPECT_EQ(normalized_media_type("application/json; charset=utf-8"), "application/json");
  EXPECT_EQ(normalized_media_type("text/plain;charset=UTF-8;format=flowed"), "text/plain");
  EXPECT_EQ(normalized_media_type("text/plain \t; \tcharset=utf-8"), "text/plain");
}

TEST(content_type, quoted_string_parameter_values_are_accepted) {
  EXPECT_EQ(normalized_media_type("text/plain; charset=\"utf-8\""), "text/plain");
  EXPECT_EQ(normalized_media_type("multipart/mixed; boundary=\"a b;c=d\""), "multipart/mixed");
  EXPECT_EQ(normalized_media_type("text/plain; x=\"say \\\"hi\\\"\""), "text/plain");
  EXPECT_EQ(normalized_media_type("text/plain; x=\"\""), "text/plain");
  EXPECT_EQ(normalized_media_type("text/plain; x=\"caf\xC3\xA9\""), "text/plain");
}

TEST(content_type, surrounding_whitespace_is_ignored) {
  EXPECT_EQ(normalized_media_type("  application/json  "), "application/json");
  EXPECT_EQ(normalized_media_type("\ttext/plain; charset=utf-8\t"), "text/plain");
}

TEST(content_type, every_token_character_is_accepted_in_type_and_subtype) {
  EXPECT_EQ(normalized_media_type("application/vnd.api+json"), "application/vnd.api+json");
  EXPECT_EQ(normalized_media_type("x!#$%&'*+-.^_`|~9/y!#$%&'*+-.^_`|~9"),
            "x!#$%&'*+-.^_`|~9/y!#$%&'*+-.^_`|~9");
}

TEST(content_type, json_mode_is_exactly_application_json) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_FALSE(is_json_media_type("application/vnd.api+json"));
  EXPECT_FALSE(is_json_media_type("text/json"));
  EXPECT_FALSE(is_json_media_type("application/jsonl"));
}

TEST(content_type, json_and_text_types_are_sent_as_sse_text) {
  EXPECT_TRUE(is_sse_text_media_type("application/json"));
  EXPECT_TRUE(is_sse_text_media_type("text/plain"));
  EXPECT_TRUE(is_sse_text_media_type("text/csv"));
}

TEST(content_type, other_types_are_sent_as_sse_base64) {
  EXPECT_FALSE(is_sse_text_media_type("application/octet-stream"));
  EXPECT_FALSE(is_sse_text_media_type("application/x-ndjson"));
  EXPECT_FALSE(is_sse_text_media_type("image/png"));
  EXPECT_FALSE(is_sse_text_media_type("application/text"));
}

TEST(content_type, normalized_values_feed_the_predicates) {
  EXPECT_TRUE(is_json_media_type(*normalized_media_type("Application/Json; charset=utf-8")));
  EXPECT_TRUE(is_sse_text_media_type(*normalized_media_type("TEXT/Plain")));
}

// --- Error paths -------------------------------------------------------------------------------

TEST(content_type, empty_or_blank_value_is_rejected) {
  EXPECT_EQ(normalized_media_type(""), std::nullopt);
  EXPECT_EQ(normalized_media_type("   "), std::nullopt);
}

TEST(content_type, missing_type_or_subtype_is_rejected) {
  EXPECT_EQ(normalized_media_type("text"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/"), std::nullopt);
  EXPECT_EQ(normalized_media_type("/plain"), std::nullopt);
  EXPECT_EQ(normalized_media_type("/"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain/extra"), std::nullopt);
}

TEST(content_type, whitespace_inside_the_media_type_is_rejected) {
  EXPECT_EQ(normalized_media_type("text/pl ain"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text /plain"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/ plain"), std::nullopt);
}

TEST(content_type, non_token_characters_are_rejected) {
  EXPECT_EQ(normalized_media_type("text/pl@in"), std::nullopt);
  EXPECT_EQ(normalized_media_type("te(xt/plain"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain\r\n"), std::nullopt);
  EXPECT_EQ(normalized_media_type("t\xC3\xA9xt/plain"), std::nullopt);
  EXPECT_EQ(normalized_media_type(std::string("text/plain\0", 11)), std::nullopt);
}

TEST(content_type, empty_or_incomplete_parameters_are_rejected) {
  EXPECT_EQ(normalized_media_type("text/plain;"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; "), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; charset"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; charset="), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; =utf-8"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain;; charset=utf-8"), std::nullopt);
}

TEST(content_type, whitespace_around_the_parameter_equals_sign_is_rejected) {
  EXPECT_EQ(normalized_media_type("text/plain; charset =utf-8"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; charset= utf-8"), std::nullopt);
}

TEST(content_type, parameters_without_a_separating_semicolon_are_rejected) {
  EXPECT_EQ(normalized_media_type("text/plain charset=utf-8"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; a=b c=d"), std::nullopt);
}

TEST(content_type, malformed_quoted_strings_are_rejected) {
  EXPECT_EQ(normalized_media_type("text/plain; x=\"unterminated"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; x=\"ends in backslash\\"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; x=\"a\"b"), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; x=\"ctl\x01\""), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; x=\"del\x7F\""), std::nullopt);
  EXPECT_EQ(normalized_media_type("text/plain; x=\"esc\\\x01\""), std::nullopt);
}

}  // namespace
}  // namespace ordo
