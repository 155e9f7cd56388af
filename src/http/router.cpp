// Routing: which handler answers a request, by its path and then its method. A CORS preflight
// (OPTIONS) is answered on every path; every other request goes to the first route of the
// table (routes(), below) whose matcher takes its path:
//
//   path                              method            handler
//   /health, /ready                   GET, HEAD         health_response()
//                                     others            405, Allow: GET, HEAD
//   /metrics                          GET, HEAD         render_metrics() (http/metrics.cpp)
//                                     others            405, Allow: GET, HEAD
//   /, /ui/...                        all               dashboard_response() (its own 405)
//   /v1/streams                       all               streams_list_response() (its own 405)
//   /v1/sessions/{id}/events          GET, HEAD         the session's event stream, read like
//                                                       any stream (404 if no such session)
//                                     others            403 managed_stream
//   /v1/changes                       GET, HEAD         the change feed, with its filters
//                                     others            403 managed_stream
//   /v1/projects..., /v1/sessions..., all               handle_session_api(), whose own route
//   /v1/changes/...                                     table answers 404 and 405
//   /v1/stream/{path}                 PUT POST DELETE   stream_handlers.cpp (a bad path: 400
//                                     HEAD GET          whatever the method)
//                                     others            405, Allow: the stream methods
//   anything else                                       404 route_not_found
//
// Order matters where paths overlap: the events route comes before the session API, whose
// prefix /v1/sessions/ covers it.
//
// Threads: dispatch() and every handler run on the connection's network thread; the table is
// built once, on first use, and only read afterwards.
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

// What a route's matcher says of a path: not this route's (nullopt); this route's, with what its
// handlers serve (the stream's path, for a stream route); or this route's but refused whatever
// the method (a bad stream path, an unknown session).
using path_match = std::optional<result<std::string>>;
using path_matcher = path_match (*)(server::impl& s, const std::string& path);

// A request as a route's handler gets it.
struct routed_request {
  request& req;
  connection& conn;
  boost::urls::url_view url;
  const std::string& path;    // the request's path, percent-decoded
  const std::string& target;  // what the route's matcher found
};
using route_handler = awaitable<bool> (*)(server::impl& s, routed_request& r);

struct method_handler {
  bhttp::verb method;
  route_handler handle;
};

struct route {
  path_matcher match;
  std::vector<method_handler> methods;
  // Every method not in `methods`: a 405 with Allow, a 403, or the route's own dispatch.
  route_handler otherwise;
};

std::vector<query_param> query_of(const boost::urls::url_view& url) {
  std::vector<query_param> params;
  for (auto p : url.params())
    params.push_back({p.key, p.value, p.has_value});
  return params;
}

// ---- matchers -----------------------------------------------------------------------------------

path_match match_probe(server::impl&, const std::string& path) {
  if (path != "/health" && path != "/ready") return std::nullopt;
  return path;
}

path_match match_metrics(server::impl&, const std::string& path) {
  if (path != "/metrics") return std::nullopt;
  return path;
}

path_match match_dashboard(server::impl&, const std::string& path) {
  if (!is_dashboard_path(path)) return std::nullopt;
  return path;
}

path_match match_streams_list(server::impl&, const std::string& path) {
  if (path != k_streams_list_path) return std::nullopt;
  return path;
}

// A session's event stream: readable with every read mode, written only by ordo.
path_match match_session_events(server::impl& s, const std::string& path) {
  auto events = session_events_stream(path);
  if (!events) return std::nullopt;
  if (!s.engine.find(*events)) {
    return make_failure(failure_kind::not_found, "session_not_found",
                        "no session '" + path.substr(13, path.size() - 20) + "'");
  }
  return std::move(*events);
}

// The change feed: readable with every read mode and filters, written only by ordo.
path_match match_change_feed(server::impl&, const std::string& path) {
  if (path != "/v1/changes") return std::nullopt;
  return std::string(sessions::session_service::k_changes_stream_path);
}

path_match match_session_api(server::impl&, const std::string& path) {
  if (!is_session_api_path(path)) return std::nullopt;
  return path;
}

path_match match_stream(server::impl& s, const std::string& path) {
  if (path.rfind(k_stream_route_prefix, 0) != 0) return std::nullopt;
  std::string stream_path = path.substr(k_stream_route_prefix.size());
  auto valid = validate_stream_path(stream_path, s.engine.options().managed_stream_prefix);
  if (!valid) return valid.error();
  return stream_path;
}

// ---- handlers -----------------------------------------------------------------------------------

awaitable<bool> serve_health(server::impl& s, routed_request& r) {
  string_response res = s.health_response(r.req, r.path);
  co_return co_await s.respond(r.conn, res);
}

// The Prometheus text exposition.
awaitable<bool> serve_metrics(server::impl& s, routed_request& r) {
  auto op = await_engine<result<sessions::session_counts>>(
      [&s](auto done) { s.sessions.counts(std::move(done)); });
  result<sessions::session_counts> counts = co_await std::move(op);
  if (!counts) spdlog::warn("/metrics: counting sessions failed: {}", counts.error().message);
  metrics_scrape scrape{s.engine, s.metrics};
  scrape.open_connections = s.served_connections.load();
  scrape.catch_up_active = s.admission.active();
  scrape.catch_up_waiting = s.admission.waiting();
  if (counts) scrape.sessions = std::move(*counts);
  scrape.background = &s.sessions.background();
  auto res = make_response(r.req, bhttp::status::ok);
  res.set(bhttp::field::content_type, k_metrics_content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = render_metrics(scrape);
  finish(res, r.req.method() == bhttp::verb::head);
  co_return co_await s.respond(r.conn, res);
}

// 405 on /health, /ready and /metrics.
awaitable<bool> refuse_unless_read(server::impl& s, routed_request& r) {
  string_response res =
      error_response(r.req, method_not_allowed("GET, HEAD", "use GET on " + r.path));
  co_return co_await s.respond(r.conn, res);
}

// Writes an answer of dashboard.cpp or session_api.cpp.
awaitable<bool> respond_with(server::impl& s, routed_request& r, api_response& answer) {
  string_response res = make_response(r.req, static_cast<bhttp::status>(answer.status));
  for (auto& [name, value] : answer.headers)
    res.set(name, value);
  res.body() = std::move(answer.body);
  finish(res, r.req.method() == bhttp::verb::head);
  co_return co_await s.respond(r.conn, res);
}

// The dashboard's page and files.
awaitable<bool> serve_dashboard(server::impl& s, routed_request& r) {
  std::string method(r.req.method_string());
  api_response answer = dashboard_response(method, r.path, header(r.req, "If-None-Match"));
  co_return co_await respond_with(s, r, answer);
}

// The stream list the dashboard's stream browser reads.
awaitable<bool> serve_streams_list(server::impl& s, routed_request& r) {
  std::string method(r.req.method_string());
  std::vector<query_param> params = query_of(r.url);
  api_response answer = streams_list_response(method, params, s.engine, now_ms());
  co_return co_await respond_with(s, r, answer);
}

awaitable<bool> serve_session_api(server::impl& s, routed_request& r) {
  auto api = std::make_shared<api_request>();
  api->method = std::string(r.req.method_string());
  api->path = r.path;
  api->query = query_of(r.url);
  api->header = [&req = r.req](std::string_view name) { return header(req, name); };
  api->body = std::move(r.req.body());
  auto op = await_engine<api_response>(
      [&s, api](auto done) { handle_session_api(s.sessions, std::move(*api), done); });
  api_response answer = co_await std::move(op);
  co_return co_await respond_with(s, r, answer);
}

awaitable<bool> serve_change_feed(server::impl& s, routed_request& r) {
  std::vector<query_param> params = query_of(r.url);
  auto filter = change_filter_from_query(params);
  if (!filter) {
    string_response res = error_response(r.req, filter.error());
    co_return co_await s.respond(r.conn, res);
  }
  co_return co_await s.handle_get(r.req, r.conn, r.target, r.url, &*filter);
}

awaitable<bool> refuse_event_stream_write(server::impl& s, routed_request& r) {
  string_response res = error_response(
      r.req, make_failure(failure_kind::forbidden, "managed_stream",
                          "a session's event stream is written by ordo as the session changes; "
                          "read it with GET"));
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> refuse_change_feed_write(server::impl& s, routed_request& r) {
  string_response res =
      error_response(r.req, make_failure(failure_kind::forbidden, "managed_stream",
                                         "the change feed is written by ordo; read it with GET"));
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_put(server::impl& s, routed_request& r) {
  string_response res = co_await s.handle_put(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_post(server::impl& s, routed_request& r) {
  string_response res = co_await s.handle_post(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_delete(server::impl& s, routed_request& r) {
  string_response res = co_await s.handle_delete(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_head(server::impl& s, routed_request& r) {
  string_response res = s.handle_head(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_get(server::impl& s, routed_request& r) {
  co_return co_await s.handle_get(r.req, r.conn, r.target, r.url);
}

awaitable<bool> refuse_stream_method(server::impl& s, routed_request& r) {
  string_response res = error_response(
      r.req,
      method_not_allowed(k_stream_methods, "streams accept " + std::string(k_stream_methods)));
  co_return co_await s.respond(r.conn, res);
}

// ---- the table ----------------------------------------------------------------------------------

const std::vector<route>& routes() {
  using bhttp::verb;
  static const std::vector<route> table{
      {match_probe, {{verb::get, serve_health}, {verb::head, serve_health}}, refuse_unless_read},
      {match_metrics,
       {{verb::get, serve_metrics}, {verb::head, serve_metrics}},
       refuse_unless_read},
      {match_dashboard, {}, serve_dashboard},
      {match_streams_list, {}, serve_streams_list},
      {match_session_events,
       {{verb::get, serve_get}, {verb::head, serve_head}},
       refuse_event_stream_write},
      {match_change_feed,
       {{verb::get, serve_change_feed}, {verb::head, serve_head}},
       refuse_change_feed_write},
      {match_session_api, {}, serve_session_api},
      {match_stream,
       {{verb::put, serve_put},
        {verb::post, serve_post},
        {verb::delete_, serve_delete},
        {verb::head, serve_head},
        {verb::get, serve_get}},
       refuse_stream_method},
  };
  return table;
}

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
  for (const route& candidate : routes()) {
    path_match match = candidate.match(*this, path);
    if (!match) continue;
    if (!*match) {
      res = error_response(req, match->error());
      co_return co_await respond(conn, res);
    }
    routed_request routed{req, conn, *url, path, **match};
    route_handler handle = candidate.otherwise;
    for (const method_handler& m : candidate.methods) {
      if (m.method == req.method()) handle = m.handle;
    }
    co_return co_await handle(*this, routed);
  }
  res = error_response(req, make_failure(failure_kind::not_found, "route_not_found",
                                         "no resource at '" + path + "'; streams live under " +
                                             std::string(k_stream_route_prefix)));
  co_return co_await respond(conn, res);
}

string_response server::impl::health_response(const request& req, std::string_view path) {
  bool ready = path == "/health" || engine.writable();
  auto res = make_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable);
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  if (path == "/health") {
    res.body() = R"({"status":"ok"})";
  } else {
    res.body() = ready ? R"({"status":"ready","streams":)" + std::to_string(engine.stream_count()) +
                             R"(,"tls":)" + (options.tls ? "true" : "false") + "}"
                       : R"({"status":"unavailable","reason":")" + engine.write_refusal() + "\"}";
  }
  finish(res, req.method() == bhttp::verb::head);
  return res;
}

}  // namespace ordo::http
