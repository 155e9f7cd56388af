// Strict decimal integers for protocol fields (headers, query parameters) where a lenient parser
// would let two spellings name the same value, e.g. "007" and "7".
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ordo {

// 2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER: the largest integer every JSON client can
// represent exactly.
inline constexpr std::uint64_t k_max_safe_integer = 9007199254740991;

// Accepts only ASCII decimal digits: no sign, no whitespace, no leading zeros unless the text is
// exactly "0". Returns nullopt for anything else or for a value above max_value.
std::optional<std::uint64_t> parse_strict_uint(std::string_view text, std::uint64_t max_value);

}  // namespace ordo
