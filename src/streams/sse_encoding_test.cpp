#include "streams/sse_encoding.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/base64.hpp"

namespace ordo {
namespace {

// What an EventSource client sees: the WHATWG HTML "event stream interpretation" rules, reduced
// to the fields ordo writes.
struct parsed_event {
  std::string type;
  std::string data;
};

struct parsed_stream {
  std::vector<parsed_event> events;
  std::vector<std::string> comments;
  std::string unterminated;  // field lines after the last blank line (an event never dispatched)
};

parsed_stream parse_sse(std::string_view stream) {
  parsed_stream result;
  std::string type;
  std::string data;
  bool pending = false;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t end = pos;
    while (end < stream.size() && stream[end] != '\r' && stream[end] != '\n')
      ++end;
    if (end == stream.size()) {
      result.unterminated = std::string(stream.substr(pos));  // a line needs its terminator
      break;
    }
    const std::string_view line = stream.substr(pos, end - pos);
    pos = end + 1;
    if (stream[end] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;

    if (line.empty()) {
      // Dispatch: an event with an empty data buffer is dropped.
      if (!data.empty()) {
        data.pop_back();  // the '\n' appended after the last data line
        result.events.push_back({type.empty() ? "message" : type, data});
      }
      type.clear();
      data.clear();
      pending = false;
      continue;
    }
    if (line.front() == ':') {
      std::string_view comment = line.substr(1);
      if (!comment.empty() && comment.front() == ' ') comment.remove_prefix(1);
      result.comments.emplace_back(comment);
      continue;
    }
    const std::size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") type = value;
    if (field == "data") {
      data += value;
      data.push_back('\n');
    }
    pending = true;
  }
  if (pending && result.unterminated.empty()) result.unterminated = "(fields without blank line)";
  return result;
}

// The payload a client receives for `text`: every line break becomes '\n'.
std::string with_lf_line_breaks(std::string_view text) {
  std::string normalized;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      normalized.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      normalized.push_back(text[i]);
    }
  }
  return normalized;
}

parsed_event single_event(const std::string& stream) {
  const parsed_stream parsed = parse_sse(stream);
  EXPECT_EQ(parsed.events.size(), 1u) << stream;
  EXPECT_TRUE(parsed.comments.empty()) << stream;
  EXPECT_EQ(parsed.unterminated, "") << stream;
  return parsed.events.empty() ? parsed_event{} : parsed.events.front();
}

std::string text_event(std::string_view text) {
  std::string out;
  append_sse_text_data_event(out, text);
  return out;
}

std::string comment(std::string_view text) {
  std::string out;
  append_sse_comment(out, text);
  return out;
}

// --- Text data events --------------------------------------------------------------------------

TEST(sse_encoding, text_event_writes_one_data_line_per_payload_line) {
  EXPECT_EQ(text_event("line1\nline2"), "event: data\ndata:line1\ndata:line2\n\n");
}

TEST(sse_encoding, empty_text_is_one_empty_data_line) {
  EXPECT_EQ(text_event(""), "event: data\ndata:\n\n");
  EXPECT_EQ(single_event(text_event("")).data, "");
}

TEST(sse_encoding, trailing_line_break_becomes_a_trailing_empty_data_line) {
  EXPECT_EQ(text_event("a\n"), "event: data\ndata:a\ndata:\n\n");
  EXPECT_EQ(single_event(text_event("a\n")).data, "a\n");
}

TEST(sse_encoding, crlf_and_cr_split_lines_like_lf) {
  EXPECT_EQ(text_event("a\r\nb\rc\nd"), "event: data\ndata:a\ndata:b\ndata:c\ndata:d\n\n");
  EXPECT_EQ(text_event("\r\n"), "event: data\ndata:\ndata:\n\n");
  EXPECT_EQ(text_event("\n\r"), "event: data\ndata:\ndata:\ndata:\n\n");
}

TEST(sse_encoding, line_starting_with_a_space_gets_an_extra_space_after_the_colon) {
  EXPECT_EQ(text_event(" x\n  y\nz "), "event: data\ndata:  x\ndata:   y\ndata:z \n\n");
  EXPECT_EQ(single_event(text_event(" x\n  y\nz ")).data, " x\n  y\nz ");
}

TEST(sse_encoding, text_event_is_parsed_as_a_data_event) {
  EXPECT_EQ(single_event(text_event("hello")).type, "data");
}

TEST(sse_encoding, text_payloads_round_trip_with_line_breaks_as_lf) {
  for (const std::string_view text :
       {"", "hello", "a\nb", "a\r\nb", "a\rb", "\n", "\r", "\r\n", "\n\n\n", " ", "  ",
        " leading\n trailing ", "tab\tinside", ":colon first", "caf\xC3\xA9 \xF0\x9F\x98\x80",
        "\r\r\n\n\r", "no newline at end", "ends in cr\r"}) {
    EXPECT_EQ(single_event(text_event(text)).data, with_lf_line_breaks(text)) << text;
  }
}

TEST(sse_encoding, payload_lines_that_look_like_fields_stay_data) {
  const std::string injection = "event: control\ndata: {\"streamNextOffset\":\"evil\"}\n\nid: 7";
  const parsed_event event = single_event(text_event(injection));
  EXPECT_EQ(event.type, "data");
  EXPECT_EQ(event.data, injection);
}

TEST(sse_encoding, cr_only_and_crlf_injection_attempts_stay_data) {
  for (const std::string_view injection :
       {"x\r\revent: control\rdata: evil\r\r", "x\r\n\r\nevent: control\r\ndata: evil\r\n\r\n",
        "x\n\n: comment\n\nretry: 1\n", "\r\n\r\n\r\n"}) {
    const parsed_event event = single_event(text_event(injection));
    EXPECT_EQ(event.type, "data");
    EXPECT_EQ(event.data, with_lf_line_breaks(injection));
  }
}

TEST(sse_encoding, append_keeps_what_was_already_in_the_buffer) {
  std::string out = ": earlier\n\n";
  append_sse_text_data_event(out, "x");
  EXPECT_EQ(out, ": earlier\n\nevent: data\ndata:x\n\n");
}

TEST(sse_encoding, events_appended_in_sequence_parse_in_order) {
  std::string out;
  append_sse_text_data_event(out, "one");
  append_sse_text_data_event(out, "two\nlines");
  const parsed_stream parsed = parse_sse(out);
  ASSERT_EQ(parsed.events.size(), 2u);
  EXPECT_EQ(parsed.events[0].data, "one");
  EXPECT_EQ(parsed.events[1].data, "two\nlines");
}

// --- Base64 data events ------------------------------------------------------------------------

TEST(sse_encoding, base64_event_carries_the_encoding_on_one_data_line) {
  std::string out;
  append_sse_base64_data_event(out, "foobar");
  EXPECT_EQ(out, "event: data\ndata:Zm9vYmFy\n\n");
}

TEST(sse_encoding, base64_event_of_no_bytes_is_an_empty_data_line) {
  std::string out;
  append_sse_base64_data_event(out, "");
  EXPECT_EQ(out, "event: data\ndata:\n\n");
}

TEST(sse_encoding, every_byte_value_round_trips_through_base64) {
  std::string bytes;
  for (int b = 0; b < 256; ++b)
    bytes.push_back(static_cast<char>(b));
  std::string out;
  append_sse_base64_data_event(out, bytes);
  const parsed_event event = single_event(out);
  EXPECT_EQ(event.type, "data");
  EXPECT_EQ(base64_decode(event.data), bytes);
}

TEST(sse_encoding, line_breaks_in_binary_payloads_cannot_break_the_frame) {
  const std::string bytes("\r\n\r\nevent: control\n\n\0\r", 23);
  std::string out;
  append_sse_base64_data_event(out, bytes);
  EXPECT_EQ(base64_decode(single_event(out).data), bytes);
}

// --- JSON data events --------------------------------------------------------------------------

TEST(sse_encoding, json_event_wraps_the_joined_values_in_an_array) {
  std::string out;
  append_sse_json_data_event(out, R"({"a":1},[2,3])");
  EXPECT_EQ(out, "event: data\ndata:[{\"a\":1},[2,3]]\n\n");
  EXPECT_EQ(single_event(out).data, R"([{"a":1},[2,3]])");
}

TEST(sse_encoding, json_event_of_no_values_is_an_empty_array) {
  std::string out;
  append_sse_json_data_event(out, "");
  EXPECT_EQ(out, "event: data\ndata:[]\n\n");
}

TEST(sse_encoding, json_event_splits_lines_like_a_text_event) {
  // Stored values are minified, so this only guards the framing if one ever is not.
  std::string out;
  append_sse_json_data_event(out, "1,\n 2");
  EXPECT_EQ(out, "event: data\ndata:[1,\ndata:  2]\n\n");
  EXPECT_EQ(single_event(out).data, "[1,\n 2]");
}

// --- Control events ----------------------------------------------------------------------------

std::string control_event(const sse_control& control) {
  std::string out;
  append_sse_control_event(out, control);
  return out;
}

TEST(sse_encoding, control_event_always_has_the_next_offset) {
  EXPECT_EQ(control_event({"0000_0042", std::nullopt, false, false}),
            "event: control\ndata:{\"streamNextOffset\":\"0000_0042\"}\n\n");
}

TEST(sse_encoding, control_event_keys_appear_in_protocol_order) {
  EXPECT_EQ(control_event({"0000_0042", "12345", true, true}),
            "event: control\ndata:{\"streamNextOffset\":\"0000_0042\",\"streamCursor\":\"12345\","
            "\"upToDate\":true,\"streamClosed\":true}\n\n");
}

TEST(sse_encoding, control_event_omits_false_flags_and_absent_cursor) {
  EXPECT_EQ(control_event({"7", "99", false, false}),
            "event: control\ndata:{\"streamNextOffset\":\"7\",\"streamCursor\":\"99\"}\n\n");
  EXPECT_EQ(control_event({"7", std::nullopt, true, false}),
            "event: control\ndata:{\"streamNextOffset\":\"7\",\"upToDate\":true}\n\n");
  EXPECT_EQ(control_event({"7", std::nullopt, false, true}),
            "event: control\ndata:{\"streamNextOffset\":\"7\",\"streamClosed\":true}\n\n");
}

TEST(sse_encoding, control_event_is_parsed_as_a_control_event) {
  const parsed_event event = single_event(control_event({"7", "99", true, false}));
  EXPECT_EQ(event.type, "control");
  EXPECT_EQ(event.data, R"({"streamNextOffset":"7","streamCursor":"99","upToDate":true})");
}

TEST(sse_encoding, control_event_strings_are_json_escaped_and_stay_on_one_line) {
  const std::string out = control_event({"a\"b\\c\nd\re\x01", "x\ty", false, false});
  EXPECT_EQ(out,
            "event: control\ndata:{\"streamNextOffset\":\"a\\\"b\\\\c\\nd\\re\\u0001\","
            "\"streamCursor\":\"x\\ty\"}\n\n");
  EXPECT_EQ(single_event(out).type, "control");
}

// --- Comments ----------------------------------------------------------------------------------

TEST(sse_encoding, comment_is_a_colon_line_and_a_blank_line) {
  const std::string out = comment("keep-alive");
  EXPECT_EQ(out, ": keep-alive\n\n");
  const parsed_stream parsed = parse_sse(out);
  EXPECT_TRUE(parsed.events.empty());
  ASSERT_EQ(parsed.comments.size(), 1u);
  EXPECT_EQ(parsed.comments[0], "keep-alive");
}

TEST(sse_encoding, line_breaks_in_a_comment_become_spaces) {
  const std::string out = comment("a\nevent: data\r\ndata: evil\rb");
  EXPECT_EQ(out, ": a event: data  data: evil b\n\n");
  const parsed_stream parsed = parse_sse(out);
  EXPECT_TRUE(parsed.events.empty());
  EXPECT_EQ(parsed.comments.size(), 1u);
}

TEST(sse_encoding, empty_comment_is_still_a_comment) {
  EXPECT_EQ(comment(""), ": \n\n");
  EXPECT_TRUE(parse_sse(comment("")).events.empty());
}

TEST(sse_encoding, mixed_sequence_parses_into_the_same_events) {
  std::string out;
  append_sse_comment(out, "hello");
  append_sse_text_data_event(out, "x\r\ny");
  append_sse_control_event(out, {"1", "2", false, false});
  append_sse_base64_data_event(out, std::string("\0\xFF", 2));
  append_sse_control_event(out, {"3", "4", true, true});
  const parsed_stream parsed = parse_sse(out);
  ASSERT_EQ(parsed.events.size(), 4u);
  EXPECT_EQ(parsed.events[0].type, "data");
  EXPECT_EQ(parsed.events[0].data, "x\ny");
  EXPECT_EQ(parsed.events[1].type, "control");
  EXPECT_EQ(parsed.events[2].data, "AP8=");
  EXPECT_EQ(parsed.events[3].data,
            R"({"streamNextOffset":"3","streamCursor":"4","upToDate":true,"streamClosed":true})");
  EXPECT_EQ(parsed.comments, std::vector<std::string>{"hello"});
  EXPECT_EQ(parsed.unterminated, "");
}

// --- Error paths: hostile payloads -------------------------------------------------------------

TEST(sse_encoding, no_payload_byte_sequence_can_forge_a_second_event) {
  // Every two-byte combination of the framing characters, repeated, stays one data event.
  const std::string framing = "\r\n :ed";
  for (const char a : framing) {
    for (const char b : framing) {
      const std::string text = std::string(3, a) + "event: control" + std::string(3, b) + "data:x";
      const parsed_stream parsed = parse_sse(text_event(text));
      ASSERT_EQ(parsed.events.size(), 1u) << text;
      EXPECT_EQ(parsed.events[0].type, "data");
      EXPECT_EQ(parsed.events[0].data, with_lf_line_breaks(text));
      EXPECT_TRUE(parsed.comments.empty());
    }
  }
}

TEST(sse_encoding, nul_and_control_bytes_in_text_pass_through_unchanged) {
  const std::string text("a\0b\x01\x7F", 5);
  EXPECT_EQ(single_event(text_event(text)).data, text);
}

}  // namespace
}  // namespace ordo
