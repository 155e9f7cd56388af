#include "http/dashboard.hpp"

#include <boost/json.hpp>

#include "base/rfc3339.hpp"
#include "http/dashboard_assets.hpp"
#include "http/error_response.hpp"
#include "streams/offset.hpp"

namespace ordo::http {

namespace json = boost::json;

namespace {

constexpr std::string_view k_read_methods = "GET, HEAD";
// The page may load and connect to nothing but ordo (no CDN, no other origin), run no inline
// script and be framed by no one.
constexpr std::string_view k_content_security_policy =
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'";

api_response failure_answer(const failure& f) {
  http::error_answer a = error_answer_for(f);
  return api_response{a.status, std::move(a.headers), std::move(a.body)};
}

api_response method_not_allowed(std::string_view path) {
  return failure_answer(
      http::method_not_allowed(k_read_methods, "use GET or HEAD on " + std::string(path)));
}

bool is_read_method(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

}  // namespace

bool is_dashboard_path(std::string_view path) {
  return path == "/" || path.rfind(k_dashboard_asset_prefix, 0) == 0;
}

api_response dashboard_response(std::string_view method, std::string_view path,
                                const std::optional<std::string>& if_none_match) {
  const embedded_asset* found = nullptr;
  for (const auto& asset : dashboard_assets()) {
    if (asset.url_path == path) found = &asset;
  }
  if (!found) {
    return failure_answer(make_failure(failure_kind::not_found, "route_not_found",
                                       "the dashboard has no file at '" + std::string(path) + "'"));
  }
  if (!is_read_method(method)) return method_not_allowed(path);
  api_response r;
  r.headers.emplace_back("ETag", std::string(found->etag));
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Content-Security-Policy", std::string(k_content_security_policy));
  if (if_none_match && if_none_match_matches(*if_none_match, found->etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.emplace_back("Content-Type", std::string(found->content_type));
  r.body = std::string(found->body);
  return r;
}

api_response streams_list_response(std::string_view method, const std::vector<query_param>& query,
                                   const stream_engine& engine, std::int64_t now_ms,
                                   const std::function<bool(std::string_view path)>& readable) {
  if (!is_read_method(method)) return method_not_allowed(k_streams_list_path);
  std::string prefix;
  for (const auto& p : query) {
    if (p.key == "prefix") prefix = p.value;
  }
  json::array streams;
  for (const auto& record : engine.client_streams()) {
    const stream_config& c = record->config();
    if (c.path.rfind(prefix, 0) != 0) continue;
    if (!readable(c.path)) continue;
    published_state st = record->state();
    if (st.lifecycle == stream_lifecycle::removed || st.lifecycle == stream_lifecycle::replaced)
      continue;
    if (record->expired_at(now_ms)) continue;
    json::object o;
    o["path"] = c.path;
    o["content_type"] = c.content_type;
    o["next_offset"] = format_offset({c.offset_prefix, st.tail});
    o["closed"] = st.closed;
    o["deleted"] = st.lifecycle == stream_lifecycle::soft_deleted;
    o["created_at"] = format_rfc3339_ms(c.created_at_ms);
    o["ttl_seconds"] = c.ttl_seconds ? json::value(*c.ttl_seconds) : json::value(nullptr);
    o["expires_at"] =
        c.expires_at_ms ? json::value(format_rfc3339_ms(*c.expires_at_ms)) : json::value(nullptr);
    streams.push_back(std::move(o));
  }
  api_response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = json::serialize(json::object{{"streams", std::move(streams)}});
  return r;
}

}  // namespace ordo::http
