// The dashboard's HTTP side, without Beast: the embedded page and its files (GET / and
// /ui/...), and the stream list its stream browser reads (GET /v1/streams). router.cpp hands
// the method, path and the headers that matter over and writes the api_response it gets back.
//
// Caching: every asset carries its ETag and `Cache-Control: no-cache`, so a browser revalidates
// on each load and gets 304 while the binary is the same; a new build has new ETags. Names are
// not content-hashed, hence no long max-age.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/session_api.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::http {

inline constexpr std::string_view k_dashboard_asset_prefix = "/ui/";
inline constexpr std::string_view k_streams_list_path = "/v1/streams";

// Whether the dashboard answers `path`: "/" and everything under /ui/.
bool is_dashboard_path(std::string_view path);

// The answer to `method` on a dashboard path: the asset (200, or 304 when `if_none_match`
// names its ETag), 404 route_not_found for a file the binary does not hold, 405 with Allow for
// a method other than GET and HEAD.
api_response dashboard_response(std::string_view method, std::string_view path,
                                const std::optional<std::string>& if_none_match);

// GET /v1/streams: the streams clients created, ordered by path, as
// {"streams":[{"path","content_type","next_offset","closed","deleted","created_at",
// "ttl_seconds","expires_at"}]}; query `prefix` keeps the paths that start with it. Expired
// streams are left out. 405 for methods other than GET and HEAD.
// `readable` says which streams the request's token may see; the others are left out.
api_response streams_list_response(std::string_view method, const std::vector<query_param>& query,
                                   const stream_engine& engine, std::int64_t now_ms,
                                   const std::function<bool(std::string_view path)>& readable);

}  // namespace ordo::http
