#include "streams/sse_encoding.hpp"

#include "base/base64.hpp"

namespace ordo {
namespace {

constexpr std::string_view k_data_event_line = "event: data\n";
constexpr std::string_view k_control_event_line = "event: control\n";
constexpr std::string_view k_data_field = "data:";
constexpr std::string_view k_comment_prefix = ": ";
constexpr std::string_view k_event_end = "\n";

// One "data:" line per line of `payload`, splitting where an SSE parser would (CRLF, CR, LF).
void append_data_lines(std::string& out, std::string_view payload) {
  std::size_t line_start = 0;
  while (true) {
    std::size_t line_end = line_start;
    while (line_end < payload.size() && payload[line_end] != '\r' && payload[line_end] != '\n') {
      ++line_end;
    }
    const std::string_view line = payload.substr(line_start, line_end - line_start);
    out += k_data_field;
    // The parser strips one leading space after the colon; supply one so the line's own survives.
    if (!line.empty() && line.front() == ' ') out.push_back(' ');
    out += line;
    out.push_back('\n');
    if (line_end == payload.size()) return;
    line_start = line_end + 1;
    if (payload[line_end] == '\r' && line_start < payload.size() && payload[line_start] == '\n') {
      ++line_start;
    }
  }
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char k_hex_digits[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(k_hex_digits[static_cast<unsigned char>(c) >> 4]);
          out.push_back(k_hex_digits[static_cast<unsigned char>(c) & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

void append_sse_text_data_event(std::string& out, std::string_view text) {
  out += k_data_event_line;
  append_data_lines(out, text);
  out += k_event_end;
}

void append_sse_base64_data_event(std::string& out, std::string_view bytes) {
  out += k_data_event_line;
  out += k_data_field;
  base64_encode_append(out, bytes);
  out.push_back('\n');
  out += k_event_end;
}

void append_sse_json_data_event(std::string& out, std::string_view joined_values) {
  std::string payload;
  payload.reserve(joined_values.size() + 2);
  payload.push_back('[');
  payload += joined_values;
  payload.push_back(']');
  append_sse_text_data_event(out, payload);
}

void append_sse_control_event(std::string& out, const sse_control& control) {
  out += k_control_event_line;
  out += k_data_field;
  out += "{\"streamNextOffset\":";
  append_json_string(out, control.next_offset);
  if (control.cursor) {
    out += ",\"streamCursor\":";
    append_json_string(out, *control.cursor);
  }
  if (control.up_to_date) out += ",\"upToDate\":true";
  if (control.closed) out += ",\"streamClosed\":true";
  out += "}\n";
  out += k_event_end;
}

void append_sse_comment(std::string& out, std::string_view text) {
  out += k_comment_prefix;
  for (const char c : text)
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out.push_back('\n');
  out += k_event_end;
}

}  // namespace ordo
