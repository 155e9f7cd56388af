// Routing: which handler answers a request, by its path and then its method. A CORS preflight
// (OPTIONS) is answered on every path; every other request goes to the first route of the
// table (routes(), below) whose matcher takes its path:
//
//   path                              method            handler
//   /health, /ready                   GET, HEAD         health_response()
//                                     others            405, Allow: GET, HEAD
//   /metrics                          GET, HEAD         render_metrics() (http/metrics.cpp)
//                                     others            405, Allow: GET, HEAD
//   /ui/sign-in, /ui/sign-out         POST              the dashboard's cookie: set, cleared
//   /ui/session                       GET               whether the request is signed in
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
// Access: each route declares what a token needs (route_access, http/access.hpp). Unless the
// rule is `open`, the request's bearer token (Authorization, or the dashboard's cookie) is
// verified before anything about the path is looked at, so an unauthenticated client learns
// nothing (not even whether a stream or session exists). The rule is then checked where the
// route's resource is known: in the handlers below, and per route in the session API.
//
// Threads: dispatch() and every handler run on the connection's network thread; the table is
// built once, on first use, and only read afterwards.
//
// Size: a little over 600 lines, because the table and the small handlers it names (health,
// metrics, the dashboard's sign-in, the change feed) share this one Beast translation unit
// rather than paying for another (server.cpp, "Four files include Beast").
//
// g++ 12: every co_await names its non-trivial operands first, and closures built here capture
// only pointers (beast_support.hpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/access.hpp"
#include "http/dashboard.hpp"
#include "http/server_impl.hpp"
#include "http/session_api.hpp"
#include "http/stream_protocol.hpp"

namespace ordo::http {

namespace {

constexpr std::string_view k_allow_headers =
    "Content-Type, Authorization, If-None-Match, If-Match, Idempotency-Key, Last-Event-ID, "
    "Stream-Seq, Stream-TTL, Stream-Expires-At, Stream-Closed, Producer-Id, Producer-Epoch, "
    "Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset, "
    "X-Ordo-Request";
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
  const std::string& path;                     // the request's path, percent-decoded
  const std::string& target;                   // what the route's matcher found
  std::shared_ptr<const auth::principal> who;  // never null
};
using route_handler = awaitable<bool> (*)(server::impl& s, routed_request& r);

struct method_handler {
  bhttp::verb method;
  route_handler handle;
};

struct route {
  std::string_view method_text;  // for route_rules(): "*" or the methods served
  std::string_view path_text;    // for route_rules(): the paths it takes
  route_access access;
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

path_match match_dashboard_session(server::impl&, const std::string& path) {
  if (path != k_sign_in_path && path != k_sign_out_path && path != k_whoami_path) {
    return std::nullopt;
  }
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

// A session's event stream: readable with every read mode, written only by ordo. Whether the
// session exists is the handler's question, asked after the token's.
path_match match_session_events(server::impl&, const std::string& path) {
  auto events = session_events_stream(path);
  if (!events) return std::nullopt;
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

awaitable<bool> refuse(server::impl& s, routed_request& r, const failure& f) {
  string_response res = error_response(r.req, f);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_health(server::impl& s, routed_request& r) {
  string_response res = s.health_response(r.req, r.path);
  co_return co_await s.respond(r.conn, res);
}

// The Prometheus text exposition.
awaitable<bool> serve_metrics(server::impl& s, routed_request& r) {
  if (!r.who->may_read_metrics()) {
    string_response res =
        error_response(r.req, make_failure(failure_kind::forbidden, "insufficient_scope",
                                           "/metrics needs the metrics:read or admin scope"));
    co_return co_await s.respond(r.conn, res);
  }
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
  if (s.options.auth && s.options.auth->enabled()) {
    scrape.auth = s.options.auth.get();
    scrape.limits = &s.limits;
  }
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

// The dashboard's sign-in, sign-out and "who am I" (docs/SECURITY.md, "The dashboard"). The
// token travels once, in the body of the sign-in; from then on the browser holds it in an
// HttpOnly, SameSite=Strict cookie that page scripts cannot read and other sites cannot send,
// and EventSource sends along. Changing anything with the cookie also needs the page's header
// (k_csrf_header), and so does signing in and out.
// g++ 12 warns -Wmismatched-new-delete at this coroutine's end, about Asio's frame allocator: a
// false positive (its operator new and delete are a matched pair) that comes and goes with
// inlining (as in stream_handlers.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
awaitable<bool> serve_dashboard_session(server::impl& s, routed_request& r) {
  const bool auth_on = s.options.auth && s.options.auth->enabled();
  auto answer = [&](bhttp::status status) {
    string_response res = make_response(r.req, status);
    res.set(bhttp::field::cache_control, "no-store");
    return res;
  };
  std::string cookie_attributes = "; Path=/; HttpOnly; SameSite=Strict";
  if (s.secure_cookies()) cookie_attributes += "; Secure";

  if (r.path == k_whoami_path) {
    if (r.req.method() != bhttp::verb::get) {
      co_return co_await refuse(s, r, method_not_allowed("GET", "use GET on " + r.path));
    }
    boost::json::object o{{"auth", auth_on ? s.options.auth->mode_name() : "none"}};
    auto who = s.authenticate(r.req, r.conn);
    o["signed_in"] = who.ok();
    if (who) {
      o["subject"] = (*who)->subject;
      o["scopes"] = (*who)->scope_text();
    }
    string_response res = answer(bhttp::status::ok);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = boost::json::serialize(o);
    finish(res, false);
    co_return co_await s.respond(r.conn, res);
  }
  if (r.req.method() != bhttp::verb::post) {
    co_return co_await refuse(s, r, method_not_allowed("POST", "use POST on " + r.path));
  }
  if (!header(r.req, k_csrf_header)) {
    co_return co_await refuse(
        s, r,
        make_failure(failure_kind::forbidden, "csrf_header_missing",
                     "send " + std::string(k_csrf_header) + ": 1 (the dashboard's page does)"));
  }
  if (r.path == k_sign_out_path) {
    string_response res = answer(bhttp::status::no_content);
    res.set(bhttp::field::set_cookie,
            std::string(k_session_cookie) + "=" + cookie_attributes + "; Max-Age=0");
    finish(res, true);
    co_return co_await s.respond(r.conn, res);
  }
  if (!auth_on) {
    co_return co_await refuse(s, r,
                              make_failure(failure_kind::invalid, "auth_disabled",
                                           "this server runs without authentication (--auth "
                                           "none): there is nothing to sign in to"));
  }
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(r.req.body(), ec);
  const boost::json::value* token = nullptr;
  if (!ec && body.is_object()) token = body.as_object().if_contains("token");
  if (!token || !token->is_string() || token->as_string().empty()) {
    co_return co_await refuse(s, r,
                              make_failure(failure_kind::invalid, "invalid_body",
                                           "send {\"token\": \"...\"}: an API token or a JWT"));
  }
  std::string text(token->as_string());
  auto who = s.options.auth->authenticate(text, now_ms());
  if (!who) {
    s.options.auth->log_failure(who.error(), "the dashboard's sign-in");
    co_return co_await refuse(s, r, who.error());
  }
  // The cookie lives no longer than the token, and at most k_session_cookie_max_age.
  std::int64_t max_age = k_session_cookie_max_age.count();
  if ((*who)->expires_at_ms) {
    max_age = std::min<std::int64_t>(max_age, (*(*who)->expires_at_ms - now_ms()) / 1000);
  }
  string_response res = answer(bhttp::status::no_content);
  res.set(bhttp::field::set_cookie,
          std::string(k_session_cookie) + "=" + text + cookie_attributes +
              "; Max-Age=" + std::to_string(std::max<std::int64_t>(0, max_age)));
  finish(res, true);
  co_return co_await s.respond(r.conn, res);
}
#pragma GCC diagnostic pop

// The stream list the dashboard's stream browser reads.
awaitable<bool> serve_streams_list(server::impl& s, routed_request& r) {
  std::string method(r.req.method_string());
  std::vector<query_param> params = query_of(r.url);
  auto who = r.who;
  api_response answer = streams_list_response(
      method, params, s.engine, now_ms(),
      [&who](std::string_view path) { return who->may_stream(path, auth::access_level::read); });
  co_return co_await respond_with(s, r, answer);
}

awaitable<bool> serve_session_api(server::impl& s, routed_request& r) {
  auto api = std::make_shared<api_request>();
  api->method = std::string(r.req.method_string());
  api->path = r.path;
  api->query = query_of(r.url);
  api->header = [&req = r.req](std::string_view name) { return header(req, name); };
  api->body = std::move(r.req.body());
  api->who = r.who;
  auto op = await_engine<api_response>(
      [&s, api](auto done) { handle_session_api(s.sessions, std::move(*api), done); });
  api_response answer = co_await std::move(op);
  co_return co_await respond_with(s, r, answer);
}

// Where several nodes share the storage: the stream's record brought up to date with the
// database before the request is answered from it (stream_engine::refresh()); the failure to
// answer with when the database cannot be asked. `always`: also when this node knows a live
// record of the stream (reads, whose answer depends on its tail; a write checks the rest in its
// own transaction).
awaitable<std::optional<failure>> refresh_stream(server::impl& s, const std::string& path,
                                                 bool always) {
  if (!s.engine.storage_shared()) co_return std::nullopt;
  if (!always) {
    auto record = s.engine.find(path);
    if (record && record->state().lifecycle == stream_lifecycle::live) co_return std::nullopt;
  }
  stream_engine* engine = &s.engine;
  const std::string* p = &path;
  auto op = await_engine<status>([engine, p](auto done) { engine->refresh(*p, done); });
  status refreshed = co_await std::move(op);
  if (!refreshed) co_return std::move(refreshed).error();
  co_return std::nullopt;
}

// The feed a change-feed request reads (change_feed_for(), http/access.hpp), its project's feed
// created first if this is the first read of it; or the failure to answer.
awaitable<result<std::string>> change_feed_path(server::impl& s, routed_request& r,
                                                const std::optional<std::string>& project) {
  auto path = change_feed_for(*r.who, project);
  if (path) {
    auto fresh = refresh_stream(s, *path, true);
    if (auto failed = co_await std::move(fresh)) co_return std::move(*failed);
  }
  if (!path || *path == r.target || s.engine.find(*path)) co_return path;
  const std::string* name = &*project;
  auto op = await_engine<status>(
      [&s, name](auto done) { s.sessions.ensure_project_feed(*name, std::move(done)); });
  status created = co_await std::move(op);
  if (!created) co_return std::move(created).error();
  co_return path;
}

awaitable<bool> serve_change_feed(server::impl& s, routed_request& r) {
  std::vector<query_param> params = query_of(r.url);
  auto filter = change_filter_from_query(params);
  if (!filter) {
    string_response res = error_response(r.req, filter.error());
    co_return co_await s.respond(r.conn, res);
  }
  filter->reader = r.who;  // only the changes of what the token may read
  auto op = change_feed_path(s, r, filter->project);
  auto path = co_await std::move(op);
  if (!path) {
    string_response res = error_response(r.req, path.error());
    co_return co_await s.respond(r.conn, res);
  }
  co_return co_await s.handle_get(r.req, r.conn, *path, r.url, &*filter);
}

awaitable<bool> serve_change_feed_head(server::impl& s, routed_request& r) {
  std::optional<std::string> project;
  if (auto filter = change_filter_from_query(query_of(r.url))) project = filter->project;
  auto op = change_feed_path(s, r, project);
  auto path = co_await std::move(op);
  string_response res =
      path ? s.handle_head(r.req, *path) : error_response(r.req, std::move(path).error());
  co_return co_await s.respond(r.conn, res);
}

// Whether the token may read session `id`'s events; the failure to answer if not (a missing
// session and an unreadable one answer alike).
awaitable<std::optional<failure>> session_events_refusal(server::impl& s, routed_request& r) {
  std::string id = r.path.substr(std::string_view("/v1/sessions/").size());
  id.resize(id.size() - std::string_view("/events").size());
  failure missing =
      make_failure(failure_kind::not_found, "session_not_found", "no session '" + id + "'");
  auto fresh = refresh_stream(s, r.target, true);
  if (auto failed = co_await std::move(fresh)) co_return failed;
  if (r.who->is_admin()) {
    if (!s.engine.find(r.target)) co_return missing;
    co_return std::nullopt;
  }
  auto op = await_engine<result<std::optional<std::string>>>(
      [&s, id](auto done) { s.sessions.session_project(id, std::move(done)); });
  result<std::optional<std::string>> project = co_await std::move(op);
  if (!project) co_return project.error();
  if (!*project || !s.engine.find(r.target)) co_return missing;
  co_return check_session_access(*r.who, id, **project, session_access::session_read);
}

awaitable<bool> serve_session_events(server::impl& s, routed_request& r) {
  std::optional<failure> refused = co_await session_events_refusal(s, r);
  if (refused) {
    string_response res = error_response(r.req, *refused);
    co_return co_await s.respond(r.conn, res);
  }
  if (r.req.method() == bhttp::verb::head) {
    string_response res = s.handle_head(r.req, r.target);
    co_return co_await s.respond(r.conn, res);
  }
  co_return co_await s.handle_get(r.req, r.conn, r.target, r.url);
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

// The answer when the token may not use this stream method, before anything about the stream
// is looked at.
std::optional<failure> stream_refusal(routed_request& r) {
  return check_stream_access(*r.who, r.target, stream_level_of(r.req.method_string()));
}

awaitable<bool> serve_put(server::impl& s, routed_request& r) {
  if (auto refused = stream_refusal(r)) co_return co_await refuse(s, r, *refused);
  string_response res = co_await s.handle_put(r.req, r.target, *r.who);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_post(server::impl& s, routed_request& r) {
  if (auto refused = stream_refusal(r)) co_return co_await refuse(s, r, *refused);
  auto fresh = refresh_stream(s, r.target, false);
  if (auto failed = co_await std::move(fresh)) co_return co_await refuse(s, r, *failed);
  string_response res = co_await s.handle_post(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_delete(server::impl& s, routed_request& r) {
  if (auto refused = stream_refusal(r)) co_return co_await refuse(s, r, *refused);
  string_response res = co_await s.handle_delete(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_head(server::impl& s, routed_request& r) {
  if (auto refused = stream_refusal(r)) co_return co_await refuse(s, r, *refused);
  auto fresh = refresh_stream(s, r.target, true);
  if (auto failed = co_await std::move(fresh)) co_return co_await refuse(s, r, *failed);
  string_response res = s.handle_head(r.req, r.target);
  co_return co_await s.respond(r.conn, res);
}

awaitable<bool> serve_get(server::impl& s, routed_request& r) {
  if (auto refused = stream_refusal(r)) co_return co_await refuse(s, r, *refused);
  auto fresh = refresh_stream(s, r.target, true);
  if (auto failed = co_await std::move(fresh)) co_return co_await refuse(s, r, *failed);
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
      {"GET, HEAD",
       "/health, /ready",
       route_access::open,
       match_probe,
       {{verb::get, serve_health}, {verb::head, serve_health}},
       refuse_unless_read},
      {"GET, HEAD",
       "/metrics",
       route_access::metrics,
       match_metrics,
       {{verb::get, serve_metrics}, {verb::head, serve_metrics}},
       refuse_unless_read},
      {"*",
       "/ui/sign-in, /ui/sign-out, /ui/session",
       route_access::open,
       match_dashboard_session,
       {},
       serve_dashboard_session},
      {"*", "/, /ui/...", route_access::open, match_dashboard, {}, serve_dashboard},
      {"*", "/v1/streams", route_access::listing, match_streams_list, {}, serve_streams_list},
      {"GET, HEAD",
       "/v1/sessions/{session}/events",
       route_access::session_read,
       match_session_events,
       {{verb::get, serve_session_events}, {verb::head, serve_session_events}},
       refuse_event_stream_write},
      {"GET, HEAD",
       "/v1/changes",
       route_access::listing,
       match_change_feed,
       {{verb::get, serve_change_feed}, {verb::head, serve_change_feed_head}},
       refuse_change_feed_write},
      {"*",
       "/v1/projects..., /v1/sessions..., /v1/changes/...",
       route_access::session_api,
       match_session_api,
       {},
       serve_session_api},
      {"PUT, POST, DELETE, HEAD, GET",
       "/v1/stream/{path...}",
       route_access::stream_by_method,
       match_stream,
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

std::vector<route_rule> router_route_rules() {
  std::vector<route_rule> out;
  for (const route& r : routes())
    out.push_back(
        {std::string(r.method_text), std::string(r.path_text), std::string(describe(r.access))});
  return out;
}

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
    std::shared_ptr<const auth::principal> who = unrestricted();
    if (candidate.access != route_access::open) {
      auto verified = authenticate(req, conn);
      if (!verified) {
        res = error_response(req, verified.error());
        co_return co_await respond(conn, res);
      }
      who = std::move(*verified);
    }
    // The per-token caps hold for as long as the request is served (a live read included).
    token_limits::in_flight held;
    if (who != unrestricted() && limits.enabled()) {
      auto admitted = limits.admit(who->subject, std::chrono::steady_clock::now());
      if (!admitted) {
        res = error_response(req, admitted.error());
        co_return co_await respond(conn, res);
      }
      held = std::move(*admitted);
    }
    if (!*match) {
      res = error_response(req, match->error());
      co_return co_await respond(conn, res);
    }
    routed_request routed{req, conn, *url, path, **match, std::move(who)};
    route_handler handle = candidate.otherwise;
    for (const method_handler& m : candidate.methods) {
      if (m.method == req.method()) handle = m.handle;
    }
    bool keep_alive = co_await handle(*this, routed);
    if (conn.sse) conn.sse->held = std::move(held);  // an SSE response goes on after this frame
    co_return keep_alive;
  }
  res = error_response(req, make_failure(failure_kind::not_found, "route_not_found",
                                         "no resource at '" + path + "'; streams live under " +
                                             std::string(k_stream_route_prefix)));
  co_return co_await respond(conn, res);
}

result<std::shared_ptr<const auth::principal>> server::impl::authenticate(const request& req,
                                                                          connection& conn) {
  if (!options.auth || !options.auth->enabled()) return unrestricted();
  std::optional<std::string> token = bearer_token(header(req, "Authorization"));
  if (!token) {
    // The dashboard's cookie: enough to read, and to write only with the header its own page
    // sends (a cross-site request cannot), so the cookie alone never changes anything.
    token = cookie_value(header(req, "Cookie"), k_session_cookie);
    bool reads = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
    if (token && !reads && !header(req, k_csrf_header)) {
      return make_failure(failure_kind::forbidden, "csrf_header_missing",
                          "a request authenticated by the dashboard's cookie must send " +
                              std::string(k_csrf_header) + ": 1 to change anything");
    }
  }
  auto who = options.auth->authenticate(token.value_or(""), now_ms());
  if (!who && who.error().code != "missing_token") {
    beast::error_code ec;
    auto peer = beast::get_lowest_layer(conn.stream).socket().remote_endpoint(ec);
    options.auth->log_failure(who.error(), ec ? std::string("?") : peer.address().to_string());
  }
  return who;
}

string_response server::impl::health_response(const request& req, std::string_view path) {
  bool ready = path == "/health" || engine.writable();
  auto res = make_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable);
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  if (path == "/health") {
    res.body() = R"({"status":"ok"})";
  } else {
    // How requests are authenticated, and a warning when nothing is (--allow-unauthenticated).
    std::string auth = options.auth ? options.auth->mode_name() : "none";
    std::string security =
        std::string(R"(,"tls":)") + (options.tls ? "true" : "false") + R"(,"auth":")" + auth + "\"";
    if (auth == "none" && options.allow_unauthenticated) {
      security += R"x(,"warning":"serving without authentication (--allow-unauthenticated)")x";
    }
    res.body() = ready ? R"({"status":"ready","streams":)" + std::to_string(engine.stream_count()) +
                             security + "}"
                       : R"({"status":"unavailable","reason":")" + engine.write_refusal() + "\"" +
                             security + "}";
  }
  finish(res, req.method() == bhttp::verb::head);
  return res;
}

}  // namespace ordo::http
