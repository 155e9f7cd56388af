// Harness: the SSE framing of live reads (streams/sse_encoding.hpp). Whatever the payload, each
// append_* call writes exactly one complete event (or one comment), and an EventSource parser
// reads back the payload: a text payload with its line breaks as LF, a binary one base64-decoded
// to the same bytes, a JSON batch as "[" + values + "]", a control event as JSON naming the same
// offset and cursor. A payload line that would start a new field or event fails the check.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/json.hpp>
#include <cstdint>
#include <string>

#include "base/base64.hpp"
#include "base/utf8.hpp"
#include "fuzz/check.hpp"
#include "fuzz/sse_parser.hpp"
#include "streams/sse_encoding.hpp"

namespace {

using ordo::fuzz::check;

// What an SSE client gets for a text payload: each CRLF or CR becomes LF.
std::string normalised_line_breaks(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// The encoder appends to what is already there: a previous event must stay intact.
constexpr std::string_view k_previous = "event: data\ndata:x\n\n";

void check_one_event(const std::string& out, std::string_view type, std::string_view data) {
  auto parsed = ordo::fuzz::parse_sse(out);
  check(!parsed.trailing_partial, "the event is complete");
  check(parsed.events.size() == 2, "exactly one event after the previous one");
  check(parsed.events[0].data == "x", "the previous event is untouched");
  check(parsed.events[1].type == type, "the event's type");
  check(parsed.events[1].data == data, "the payload reads back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange(0, 4);
  std::string out(k_previous);
  switch (mode) {
    case 0: {
      std::string text = in.ConsumeRemainingBytesAsString();
      ordo::append_sse_text_data_event(out, text);
      check_one_event(out, "data", normalised_line_breaks(text));
      break;
    }
    case 1: {
      std::string bytes = in.ConsumeRemainingBytesAsString();
      ordo::append_sse_base64_data_event(out, bytes);
      auto parsed = ordo::fuzz::parse_sse(out);
      check(parsed.events.size() == 2 && !parsed.trailing_partial, "one base64 event");
      auto decoded = ordo::base64_decode(parsed.events[1].data);
      check(decoded && *decoded == bytes, "base64 payload decodes to the bytes");
      break;
    }
    case 2: {
      std::string joined = in.ConsumeRemainingBytesAsString();
      ordo::append_sse_json_data_event(out, joined);
      check_one_event(out, "data", normalised_line_breaks("[" + joined + "]"));
      break;
    }
    case 3: {
      ordo::sse_control control;
      const std::uint8_t flags = in.ConsumeIntegral<std::uint8_t>();
      control.up_to_date = flags & 1;
      control.closed = flags & 2;
      control.next_offset = in.ConsumeRandomLengthString(64);
      if (flags & 4) control.cursor = in.ConsumeRandomLengthString(64);
      ordo::append_sse_control_event(out, control);
      auto parsed = ordo::fuzz::parse_sse(out);
      check(parsed.events.size() == 2 && !parsed.trailing_partial, "one control event");
      check(parsed.events[1].type == "control", "its type is control");
      check(parsed.events[1].data.find('\n') == std::string::npos, "control data is one line");
      const bool utf8 = ordo::is_valid_utf8(control.next_offset) &&
                        (!control.cursor || ordo::is_valid_utf8(*control.cursor));
      if (utf8) {
        boost::system::error_code ec;
        auto v = boost::json::parse(parsed.events[1].data, ec);
        check(!ec && v.is_object(), "control data is a JSON object");
        const auto& o = v.as_object();
        check(o.at("streamNextOffset").as_string() == control.next_offset, "the offset reads back");
        check(!control.cursor || o.at("streamCursor").as_string() == *control.cursor,
              "the cursor reads back");
        check(o.contains("upToDate") == control.up_to_date, "upToDate only when true");
        check(o.contains("streamClosed") == control.closed, "streamClosed only when true");
      }
      break;
    }
    default: {
      std::string text = in.ConsumeRemainingBytesAsString();
      ordo::append_sse_comment(out, text);
      auto parsed = ordo::fuzz::parse_sse(out);
      check(parsed.events.size() == 1 && !parsed.trailing_partial, "a comment adds no event");
      check(parsed.comments == 1, "exactly one comment line");
      break;
    }
  }
  return 0;
}
