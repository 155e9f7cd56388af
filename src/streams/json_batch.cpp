#include "streams/json_batch.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <cstdint>

namespace ordo {
namespace {

// Validation only: every event is accepted and dropped, so no DOM is built and memory stays
// bounded by the parser's own stack (k_max_json_depth).
struct validating_handler {
  using error_code = boost::json::error_code;
  using string_view = boost::json::string_view;

  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_key_part(string_view, std::size_t, error_code&) { return true; }
  bool on_key(string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
  bool on_double(double, string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }
};

failure invalid_json(std::string_view why, std::size_t position) {
  return make_failure(failure_kind::invalid, "invalid_json",
                      "request body is not valid JSON: " + std::string(why) + " at byte " +
                          std::to_string(position));
}

status validate_json_text(std::string_view body) {
  boost::json::parse_options options;
  options.max_depth = k_max_json_depth;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  options.allow_invalid_utf8 = false;

  boost::json::basic_parser<validating_handler> parser(options);
  boost::json::error_code ec;
  // more = false: the body is complete, so a truncated value is an error, not a suspension.
  // On failure the returned count is the offset of the offending byte.
  const std::size_t consumed = parser.write_some(false, body.data(), body.size(), ec);
  if (ec) return invalid_json(ec.message(), consumed);
  // The parser stops after the value and its trailing whitespace; anything left is a second
  // value or garbage.
  if (consumed != body.size()) return invalid_json("unexpected data after the value", consumed);
  return ok_v;
}

// RFC 8259 section 2: the four insignificant whitespace characters.
bool is_json_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Where a scan of valid JSON text is outside strings: how deep in arrays and objects. Fed each
// character outside a string (a '"' enters one; the caller skips the string's characters).
struct nesting {
  bool in_string = false;
  std::size_t depth = 0;

  // True when `c` is a comma between the values at depth `level`.
  bool separates_at(char c, std::size_t level) {
    switch (c) {
      case '"':
        in_string = true;
        return false;
      case '[':
      case '{':
        ++depth;
        return false;
      case ']':
      case '}':
        --depth;
        return false;
      case ',':
        return depth == level;
      default:
        return false;
    }
  }
};

}  // namespace

result<json_values> parse_json_append(std::string_view body, bool flatten_top_level_array) {
  if (status valid = validate_json_text(body); !valid) return std::move(valid).error();

  // The body is valid from here on, so this pass only tracks strings and nesting.
  json_values values;
  values.joined.reserve(body.size());
  std::string& out = values.joined;
  nesting scan;
  std::size_t top_level_commas = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (scan.in_string) {
      out.push_back(c);
      if (c == '\\') {
        out.push_back(body[++i]);  // the escaped character, which may be '"'
      } else if (c == '"') {
        scan.in_string = false;
      }
      continue;
    }
    if (is_json_whitespace(c)) continue;
    out.push_back(c);
    if (scan.separates_at(c, 1)) ++top_level_commas;
  }

  if (flatten_top_level_array && out.front() == '[') {
    // Drop the outer brackets; the elements are already ','-separated.
    out.pop_back();
    out.erase(0, 1);
    values.count = out.empty() ? 0 : top_level_commas + 1;
  } else {
    values.count = 1;
  }
  return values;
}

std::vector<std::string_view> split_json_values(std::string_view joined) {
  std::vector<std::string_view> values;
  if (joined.empty()) return values;
  nesting scan;
  std::size_t start = 0;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    const char c = joined[i];
    if (scan.in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character, which may be '"'
      } else if (c == '"') {
        scan.in_string = false;
      }
      continue;
    }
    if (scan.separates_at(c, 0)) {
      values.push_back(joined.substr(start, i - start));
      start = i + 1;
    }
  }
  values.push_back(joined.substr(start));
  return values;
}

}  // namespace ordo
