// Harness: the JSON batch splitter of application/json appends (streams/json_batch.hpp).
// For any body it accepts: splitting the storage form gives `count` values; each value is one
// minified JSON text that the splitter accepts again unchanged (minifying is idempotent); and
// the values, read back as the server serves them ("[" + joined + "]"), equal the body's own
// values (same_value): its elements when a top-level array was flattened, else the body itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz/check.hpp"
#include "streams/json_batch.hpp"

using ordo::fuzz::check;

namespace {

boost::json::value parse_deep(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = ordo::k_max_json_depth + 1;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, {}, options);
  check(!ec, "what the splitter accepted is JSON");
  return v;
}

// Value equality, with numbers compared as doubles to a relative 1e-12, and NaN equal to NaN.
// ordo keeps the bytes of a number as sent; Boost.JSON 1.81 turns them into a double by a fast,
// not correctly rounded, algorithm whose result can depend on what follows the number (the end of
// the input or a ']'), and reads some texts ("-0E0404") as NaN.
bool same_value(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.to_number<double>();
    const double y = b.to_number<double>();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.as_array();
    const auto& y = b.as_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!same_value(x[i], y[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.as_object();
    const auto& y = b.as_object();
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x) {
      const boost::json::value* other = y.if_contains(key);
      if (!other || !same_value(value, *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const bool flatten = in.ConsumeBool();
  std::string body = in.ConsumeRemainingBytesAsString();
  auto parsed = ordo::parse_json_append(body, flatten);
  if (!parsed) {
    check(parsed.error().kind == ordo::failure_kind::invalid, "a refusal is invalid (400)");
    check(parsed.error().code == "invalid_json", "a refusal's code is invalid_json");
    return 0;
  }
  auto values = ordo::split_json_values(parsed->joined);
  check(values.size() == parsed->count, "split yields count values");
  for (std::string_view v : values) {
    auto again = ordo::parse_json_append(v, false);
    check(again && again->count == 1 && again->joined == v, "a stored value is minified JSON");
  }
  const boost::json::value original = parse_deep(body);
  const boost::json::value served = parse_deep("[" + parsed->joined + "]");
  if (flatten && original.is_array()) {
    check(same_value(served, original), "a flattened array's elements round-trip");
  } else {
    check(served.as_array().size() == 1 && same_value(served.as_array()[0], original),
          "a single value round-trips");
  }
  return 0;
}
