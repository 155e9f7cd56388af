// Routing: dispatch() sends a request to its handler by path and method: the CORS preflight,
// /health and /ready, /metrics, the dashboard, a session's event stream, the change feed, the
// session API (session_api.cpp) and the streams (stream_handlers.cpp).
//
// Threads: dispatch() and every handler run on the connection's network thread.
//
// g++ 12: every co_await names its non-trivial operands first, and closures built here capture
// only pointers (beast_support.hpp).
#include <spdlog/spdlog.h>

#include <boost/url.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/dashboard.hpp"
#include "http/server_impl.hpp"
#include "http/session_api.hpp"
#include "http/stream_protocol.hpp"

namespace ordo::http {

namespace {

constexpr std::string_view k_allow_headers =
    "Content-Type, Authorization, If-None-Match, If-Match, Idempotency-Key, Last-Event-ID, "
    "Stream-Seq, Stream-TTL, Stream-Expires-At, Stream-Closed, Producer-Id, Producer-Epoch, "
    "Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset";
// Methods a browser may use on any route (CORS preflight), and the methods of a stream.
constexpr std::string_view k_cors_methods = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
constexpr std::string_view k_stream_methods = "GET, POST, PUT, DELETE, HEAD, OPTIONS";

}  // namespace

awaitable<bool> server::impl::dispatch(request& req, connection& conn) {
  string_response res;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) {
    res = error_response(req, make_failure(failure_kind::invalid, "invalid_target",
                                           "the request target is not a valid URL path and query"));
    co_return co_await respond(conn, res);
  }
  std::string path = url->path();
  conn.route = classify_route(path);

  if (req.method() == bhttp::verb::options) {
    res = make_response(req, bhttp::status::no_content);
    res.set(bhttp::field::access_control_allow_methods, k_cors_methods);
    res.set(bhttp::field::access_control_allow_headers, k_allow_headers);
    res.set(bhttp::field::access_control_max_age, "86400");
    finish(res, true);
    co_return co_await respond(conn, res);
  }
  bool head = req.method() == bhttp::verb::head;
  if (path == "/health" || path == "/ready") {
    bool get = req.method() == bhttp::verb::get || head;
    if (!get) {
      res = error_response(req, method_not_allowed("GET, HEAD", "use GET on " + path));
      co_return co_await respond(conn, res);
    }
    res = health_response(req, path);
    co_return co_await respond(conn, res);
  }
  if (path == "/metrics") {
    if (req.method() != bhttp::verb::get && !head) {
      res = error_response(req, method_not_allowed("GET, HEAD", "use GET on /metrics"));
      co_return co_await respond(conn, res);
    }
    res = co_await metrics_response(req);
    co_return co_await respond(conn, res);
  }
  if (is_dashboard_path(path) || path == k_streams_list_path) {
    // The dashboard's page and files, and the stream list its stream browser reads.
    std::vector<query_param> params;
    for (auto p : url->params())
      params.push_back({p.key, p.value, p.has_value});
    std::string method(req.method_string());
    api_response answer = path == k_streams_list_path
                              ? streams_list_response(method, params, engine, now_ms())
                              : dashboard_response(method, path, header(req, "If-None-Match"));
    res = make_response(req, static_cast<bhttp::status>(answer.status));
    for (auto& [name, value] : answer.headers)
      res.set(name, value);
    res.body() = std::move(answer.body);
    finish(res, head);
    co_return co_await respond(conn, res);
  }
  if (auto events = session_events_stream(path)) {
    // A session's event stream: readable with every read mode, written only by ordo.
    if (!engine.find(*events)) {
      res = error_response(req,
                           make_failure(failure_kind::not_found, "session_not_found",
                                        "no session '" + path.substr(13, path.size() - 20) + "'"));
      co_return co_await respond(conn, res);
    }
    if (req.method() == bhttp::verb::get) co_return co_await handle_get(req, conn, *events, *url);
    if (head) {
      res = handle_head(req, *events);
      co_return co_await respond(conn, res);
    }
    res = error_response(req, make_failure(failure_kind::forbidden, "managed_stream",
                                           "a session's event stream is written by ordo as the "
                                           "session changes; read it with GET"));
    co_return co_await respond(conn, res);
  }
  if (path == "/v1/changes") {
    // The change feed: readable with every read mode and filters, written only by ordo.
    std::string feed(sessions::session_service::k_changes_stream_path);
    if (req.method() == bhttp::verb::get) {
      std::vector<query_param> params;
      for (auto p : url->params())
        params.push_back({p.key, p.value, p.has_value});
      auto filter = change_filter_from_query(params);
      if (!filter) {
        res = error_response(req, filter.error());
        co_return co_await respond(conn, res);
      }
      co_return co_await handle_get(req, conn, feed, *url, &*filter);
    }
    if (head) {
      res = handle_head(req, feed);
      co_return co_await respond(conn, res);
    }
    res = error_response(req, make_failure(failure_kind::forbidden, "managed_stream",
                                           "the change feed is written by ordo; read it with GET"));
    co_return co_await respond(conn, res);
  }
  if (is_session_api_path(path)) co_return co_await dispatch_session_api(req, conn, path, *url);
  if (path.rfind(k_stream_route_prefix, 0) != 0) {
    res = error_response(req, make_failure(failure_kind::not_found, "route_not_found",
                                           "no resource at '" + path + "'; streams live under " +
                                               std::string(k_stream_route_prefix)));
    co_return co_await respond(conn, res);
  }
  std::string stream_path = path.substr(k_stream_route_prefix.size());
  if (auto s = validate_stream_path(stream_path); !s) {
    res = error_response(req, s.error());
    co_return co_await respond(conn, res);
  }
  switch (req.method()) {
    case bhttp::verb::put:
      res = co_await handle_put(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::post:
      res = co_await handle_post(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::delete_:
      res = co_await handle_delete(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::head:
      res = handle_head(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::get:
      co_return co_await handle_get(req, conn, stream_path, *url);
    default: {
      res = error_response(
          req,
          method_not_allowed(k_stream_methods, "streams accept " + std::string(k_stream_methods)));
      co_return co_await respond(conn, res);
    }
  }
}

string_response server::impl::health_response(const request& req, std::string_view path) {
  bool ready = path == "/health" || engine.writable();
  auto res = make_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable);
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  if (path == "/health") {
    res.body() = R"({"status":"ok"})";
  } else {
    res.body() =
        ready ? R"({"status":"ready","streams":)" + std::to_string(engine.stream_count()) + "}"
              : R"({"status":"unavailable","reason":")" + engine.write_refusal() + "\"}";
  }
  finish(res, req.method() == bhttp::verb::head);
  return res;
}

awaitable<string_response> server::impl::metrics_response(const request& req) {
  auto op = await_engine<result<sessions::session_counts>>(
      [this](auto done) { sessions.counts(std::move(done)); });
  result<sessions::session_counts> counts = co_await std::move(op);
  if (!counts) spdlog::warn("/metrics: counting sessions failed: {}", counts.error().message);
  metrics_scrape scrape{engine, metrics};
  scrape.open_connections = served_connections.load();
  scrape.catch_up_active = admission.active();
  scrape.catch_up_waiting = admission.waiting();
  if (counts) scrape.sessions = std::move(*counts);
  scrape.background = &sessions.background();
  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, k_metrics_content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = render_metrics(scrape);
  finish(res, req.method() == bhttp::verb::head);
  co_return res;
}

awaitable<bool> server::impl::dispatch_session_api(request& req, connection& conn,
                                                   const std::string& path,
                                                   const boost::urls::url_view& url) {
  auto api = std::make_shared<api_request>();
  api->method = std::string(req.method_string());
  api->path = path;
  for (auto p : url.params())
    api->query.push_back({p.key, p.value, p.has_value});
  api->header = [&req](std::string_view name) { return header(req, name); };
  api->body = std::move(req.body());
  auto op = await_engine<api_response>(
      [this, api](auto done) { handle_session_api(sessions, std::move(*api), done); });
  api_response answer = co_await std::move(op);
  string_response res = make_response(req, static_cast<bhttp::status>(answer.status));
  for (auto& [name, value] : answer.headers)
    res.set(name, value);
  res.body() = std::move(answer.body);
  finish(res, req.method() == bhttp::verb::head);
  co_return co_await respond(conn, res);
}

}  // namespace ordo::http
