// RFC 3339 timestamps (e.g. Stream-Expires-At), converted to and from milliseconds since the Unix
// epoch in UTC. The arithmetic is done here rather than with mktime/strptime so the result does
// not depend on the process's locale or time zone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace ordo {

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" ('t' and 'z' are accepted too) and
// returns milliseconds since 1970-01-01T00:00:00Z. Fields are range-checked (days against the
// month and leap years); a leap second (:60) is read as :59; fraction digits beyond milliseconds
// are truncated. Anything else fails with failure_kind::invalid, code "invalid_timestamp".
result<std::int64_t> parse_rfc3339_ms(std::string_view text);

// Formats as "2026-11-21T12:34:56.789Z": UTC, always three fraction digits.
std::string format_rfc3339_ms(std::int64_t unix_ms);

}  // namespace ordo
