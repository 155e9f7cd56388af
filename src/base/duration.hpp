// Durations as written in configuration and on the command line: "30s", "500ms", "2m", "1h", "30".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace ordo {

// Parses a non-negative decimal integer followed by an optional unit: "ms", "s", "m", "h" or "d".
// A bare number is seconds. Signs, spaces, fractions, unknown units and values that do not fit
// in std::chrono::milliseconds fail with failure_kind::invalid, code "invalid_duration".
result<std::chrono::milliseconds> parse_duration(std::string_view text);

// Formats in the largest unit that represents the value exactly: "1h", "2m", "30s", "500ms";
// zero is "0s". parse_duration(format_duration(d)) == d for every non-negative d.
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace ordo
