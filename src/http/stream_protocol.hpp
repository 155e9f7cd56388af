// The Durable Streams protocol's request grammar, without Beast: stream paths, the protocol's
// headers and query parameters, turned into stream_engine requests or a 4xx failure naming
// what to fix. The server's Beast files (router.cpp, stream_handlers.cpp) extract raw values
// and call these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "http/error_response.hpp"
#include "streams/offset.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::http {

inline constexpr std::string_view k_stream_route_prefix = "/v1/stream/";
inline constexpr std::size_t k_max_stream_path_bytes = 1024;

// Raw values of the protocol's request headers (nullopt when absent).
struct protocol_headers {
  std::optional<std::string> content_type;
  std::optional<std::string> stream_ttl;
  std::optional<std::string> stream_expires_at;
  std::optional<std::string> stream_closed;
  std::optional<std::string> stream_seq;
  std::optional<std::string> producer_id;
  std::optional<std::string> producer_epoch;
  std::optional<std::string> producer_seq;
  std::optional<std::string> forked_from;
  std::optional<std::string> fork_offset;
  std::optional<std::string> fork_sub_offset;
};

// Validates a decoded stream path (the part after /v1/stream/). A path whose first segment
// starts with `reserved_prefix` (the engine's managed_stream_prefix) is refused: clients neither
// create nor name such streams.
status validate_stream_path(std::string_view path, std::string_view reserved_prefix);

// "true" in any case means closed; anything else is as if the header were absent (section 4.1).
bool stream_closed_flag(const std::optional<std::string>& value);

result<create_request> parse_create(const protocol_headers& headers, std::string body,
                                    const stream_engine& engine);

result<append_request> parse_append(const protocol_headers& headers, std::string body,
                                    const stream_config& stream);

enum class live_mode { none, long_poll, sse };

struct query_param {
  std::string key;
  std::string value;
  bool has_value = false;
};

struct read_query {
  std::optional<offset_request> offset;  // nullopt: parameter absent
  live_mode live = live_mode::none;
  std::optional<std::string> cursor;
};

result<read_query> parse_read_query(const std::vector<query_param>& params);

// Whether an If-None-Match header value matches an entity tag.
bool if_none_match_matches(std::string_view header_value, std::string_view etag);

}  // namespace ordo::http
