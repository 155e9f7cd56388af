// UTF-8 validity for names clients choose (stream paths, row ids) and for text ordo echoes
// back (error messages quote what was sent): JSON output must stay valid for every client that
// shares it, whatever bytes one client sent.
#pragma once

#include <string>
#include <string_view>

namespace ordo {

// Whether `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequence.
bool is_valid_utf8(std::string_view text);

// `text` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

}  // namespace ordo
