// Base64 with the standard RFC 4648 section 4 alphabet (A-Z a-z 0-9 + /) and '=' padding.
// Used where bytes must travel as text, e.g. binary stream payloads over SSE.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ordo {

// Appends the encoding of `bytes` to `out` (4 characters per started 3 bytes, padded with '=').
void base64_encode_append(std::string& out, std::string_view bytes);

std::string base64_encode(std::string_view bytes);

// Decodes padded base64. '\r' and '\n' anywhere are skipped (line-wrapped input); any other
// character outside the alphabet, a length that is not a multiple of 4, misplaced or missing
// padding, or non-zero bits in the last character before the padding make it nullopt.
std::optional<std::string> base64_decode(std::string_view text);

// Base64url (RFC 4648 section 5: '-' and '_' for '+' and '/') without padding, as JSON Web
// Tokens and keys use it. Decoding is strict: padding, line breaks or any character outside
// that alphabet, an impossible length, or non-zero trailing bits make it nullopt.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace ordo
