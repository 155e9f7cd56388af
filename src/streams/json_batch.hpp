// JSON mode appends (Content-Type: application/json). A POST body is one JSON text; when it is
// an array it is flattened one level so each element becomes one message, letting a client
// batch several messages in one request. Reads return the stored messages wrapped in "[...]".
//
// Storage form ("joined"): the messages, each minified, separated by ','. For example the body
//   [ {"a": 1}, [2, 3] ]
// is stored as
//   {"a":1},[2,3]
// with count 2. Joined values concatenate directly: two batches "x,y" and "z" are served as
// "[" + "x,y" + "," + "z" + "]". Minifying only drops whitespace outside strings; numbers and
// string escapes keep the exact bytes the client sent, so no precision or spelling is lost.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ordo {

struct json_values {
  std::string joined;     // the values, each minified, joined by ','
  std::size_t count = 0;  // number of values in joined
};

// Deepest nesting of arrays and objects accepted in a body; bounds the parser's stack.
inline constexpr std::size_t k_max_json_depth = 512;

// Validates that `body` is exactly one JSON text (RFC 8259, strict: no comments, no trailing
// commas, valid UTF-8, nesting at most k_max_json_depth; whitespace around the value is allowed)
// and returns it in storage form. With flatten_top_level_array, a top-level array yields one
// value per element ("[]" yields none); any other value, or flatten off, yields one value.
// A malformed body fails with failure_kind::invalid, code "invalid_json". Beyond RFC 8259's
// grammar, Boost.JSON 1.81 also refuses exponents above INT_MAX ("1e9999999999") and unpaired
// UTF-16 surrogate escapes ("\ud800"), which RFC 8259 section 8.2 leaves unpredictable anyway.
result<json_values> parse_json_append(std::string_view body, bool flatten_top_level_array);

// Splits storage form back into its values. `joined` must come from parse_json_append (or be
// a ','-joined concatenation of such); it is not validated. "" yields no values.
std::vector<std::string_view> split_json_values(std::string_view joined);

}  // namespace ordo
