// A Server-Sent Events parser for the harnesses, written from the WHATWG HTML standard's "Parsing
// an event stream": lines end at CRLF, CR or LF; a blank line dispatches the event; a line
// starting with ':' is a comment; "field:value" drops one space after the colon; "data" lines
// are joined with LF. What a browser's EventSource would see is what the harness checks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ordo::fuzz {

struct sse_event {
  std::string type;  // "message" when no event field was given
  std::string data;
};

struct sse_parse {
  std::vector<sse_event> events;
  std::size_t comments = 0;
  bool trailing_partial = false;  // bytes after the last dispatched event
};

inline sse_parse parse_sse(std::string_view stream) {
  sse_parse out;
  std::string type;
  std::string data;
  bool has_data = false;
  bool pending = false;
  std::size_t i = 0;
  while (i < stream.size()) {
    std::size_t end = i;
    while (end < stream.size() && stream[end] != '\r' && stream[end] != '\n')
      ++end;
    if (end == stream.size()) {  // a line without its end: never dispatched
      out.trailing_partial = true;
      break;
    }
    std::string_view line = stream.substr(i, end - i);
    i = end + 1;
    if (stream[end] == '\r' && i < stream.size() && stream[i] == '\n') ++i;
    if (line.empty()) {
      if (has_data) {
        if (!data.empty() && data.back() == '\n') data.pop_back();
        out.events.push_back({type.empty() ? "message" : type, data});
      }
      type.clear();
      data.clear();
      has_data = false;
      pending = false;
      continue;
    }
    pending = true;
    if (line.front() == ':') {
      ++out.comments;
      continue;
    }
    std::string_view field = line;
    std::string_view value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      type = value;
    } else if (field == "data") {
      data += value;
      data += '\n';
      has_data = true;
    }
  }
  if (pending) out.trailing_partial = true;
  return out;
}

}  // namespace ordo::fuzz
