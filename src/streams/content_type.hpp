// Content-Type handling for streams: a stream's media type is compared and stored as the
// lowercase "type/subtype", so "Application/JSON; charset=utf-8" and "application/json" match.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ordo {

// Parses an HTTP Content-Type value (RFC 9110 section 8.3.1):
//   OWS type "/" subtype *( OWS ";" OWS name "=" ( token / quoted-string ) ) OWS
// and returns the lowercase "type/subtype" with the parameters dropped, or nullopt if the value
// is malformed. Each ';' must introduce a parameter (RFC 7231's stricter form).
std::optional<std::string> normalized_media_type(std::string_view header_value);

// True for "application/json": the stream is in JSON mode. Takes a normalized media type.
bool is_json_media_type(std::string_view normalized);

// True for media types whose payloads SSE sends as UTF-8 text: "application/json" and "text/*".
// Everything else is sent base64-encoded. Takes a normalized media type.
bool is_sse_text_media_type(std::string_view normalized);

}  // namespace ordo
