// Harness: the JSON batch splitter of application/json appends (streams/json_batch.hpp).
// For any body it accepts: splitting the storage form gives `count` values; each value is one
// minified JSON text that the splitter accepts again unchanged (minifying is idempotent); and
// the values, read back as the server serves them ("[" + joined + "]"), equal the body's own
// values: its elements when a top-level array was flattened, else the body itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/json.hpp>
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
  // Compared as serialised text: Boost.JSON 1.81 reads some numbers (zero with a large
  // exponent, "-0E0404") as NaN, which equals nothing; ordo stores the bytes, not the value.
  const boost::json::value original = parse_deep(body);
  const boost::json::value served = parse_deep("[" + parsed->joined + "]");
  if (flatten && original.is_array()) {
    check(serialize(served) == serialize(original), "a flattened array's elements round-trip");
  } else {
    check(served.as_array().size() == 1 && serialize(served.as_array()[0]) == serialize(original),
          "a single value round-trips");
  }
  return 0;
}
