// Server-Sent Events framing for Durable Streams live reads (?live=sse).
//
// The response body is a sequence of events, each ended by a blank line:
//
//   event: data                  one per message (or per batch in JSON mode)
//   data:<line 1>                the payload, one "data:" line per payload line
//   data:<line 2>
//   <blank line>
//
//   event: control               after the data events of each chunk
//   data:{"streamNextOffset":"...","streamCursor":"...","upToDate":true,"streamClosed":true}
//   <blank line>
//
//   : <text>                     comment, used as a keep-alive heartbeat; clients ignore it
//   <blank line>
//
// Payloads:
//   - text streams (text/*) carry the bytes as UTF-8 text. The SSE parser splits lines on
//     CRLF, CR or LF and rejoins them with LF, so each payload line gets its own "data:" line;
//     a payload line can therefore never start a new field or event (no injection), but its
//     line breaks come back as LF.
//   - JSON streams (application/json) carry "[" + joined values + "]" (see json_batch.hpp).
//   - every other stream carries the bytes base64-encoded (RFC 4648, padded) on one line.
//
// The parser strips exactly one space after "data:". Data lines are written with no space, so
// a payload line that itself starts with a space is written as "data: " + line to keep it.
// Control events are written "data:{...}" with no space: the JSON starts with '{', so there is
// no leading space to protect.
// The control object's keys: streamNextOffset always; streamCursor when known; upToDate and
// streamClosed only when true.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ordo {

// A data event whose payload is `text`; line breaks in it reach the client as LF.
void append_sse_text_data_event(std::string& out, std::string_view text);

// A data event whose payload is base64(bytes), for streams that are not text.
void append_sse_base64_data_event(std::string& out, std::string_view bytes);

// A data event whose payload is "[" + joined_values + "]" (joined_values in json_batch's
// storage form).
void append_sse_json_data_event(std::string& out, std::string_view joined_values);

struct sse_control {
  std::string next_offset;            // the offset to resume from
  std::optional<std::string> cursor;  // CDN-collapsing cursor, when the read has one
  bool up_to_date = false;            // the client has caught up with the tail
  bool closed = false;                // the stream is closed and fully read
};

// A control event; string fields are JSON-escaped (expected to be UTF-8).
void append_sse_control_event(std::string& out, const sse_control& control);

// A comment line (keep-alive); line breaks in `text` are replaced with spaces so it stays one
// comment.
void append_sse_comment(std::string& out, std::string_view text);

}  // namespace ordo
