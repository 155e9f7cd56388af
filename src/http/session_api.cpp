#include "http/session_api.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <map>

#include "base/strict_integer.hpp"
#include "base/utf8.hpp"
#include "http/error_response.hpp"

namespace ordo::http {

namespace json = boost::json;
using sessions::reply;
using sessions::reply_kind;
using sessions::session_service;

namespace {

using params = std::map<std::string, std::string>;
using handler = std::function<void(session_service&, const params&, api_request&, api_callback)>;

struct route {
  route_spec spec;
  handler handle;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;  // skip the leading '/'
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::optional<params> match(std::string_view pattern, std::string_view path) {
  auto p = split_path(pattern);
  auto a = split_path(path);
  if (p.size() != a.size()) return std::nullopt;
  params out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i].size() > 2 && p[i].front() == '{' && p[i].back() == '}') {
      if (a[i].empty()) return std::nullopt;
      out.emplace(std::string(p[i].substr(1, p[i].size() - 2)), std::string(a[i]));
    } else if (p[i] != a[i]) {
      return std::nullopt;
    }
  }
  return out;
}

api_response json_response(unsigned status, const json::value& body) {
  api_response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = json::serialize(body);
  return r;
}

api_response failure_response(const failure& f) {
  error_answer a = error_answer_for(f);
  return api_response{a.status, std::move(a.headers), std::move(a.body)};
}

// Adapts a service reply to an HTTP answer.
sessions::reply_callback answer(api_callback done) {
  return [done = std::move(done)](result<reply> r) {
    if (!r) {
      done(failure_response(r.error()));
      return;
    }
    unsigned status = r->kind == reply_kind::created    ? 201
                      : r->kind == reply_kind::accepted ? 202
                                                        : 200;
    api_response out = json_response(status, r->body);
    if (r->revision) out.headers.emplace_back("ETag", "\"" + std::to_string(*r->revision) + "\"");
    if (r->replayed) out.headers.emplace_back("Idempotent-Replayed", "true");
    done(std::move(out));
  };
}

void fail(api_callback& done, failure f) {
  done(failure_response(f));
}

failure invalid(std::string code, std::string message) {
  return make_failure(failure_kind::invalid, std::move(code), std::move(message));
}

// An Idempotency-Key is stored with its command or row and echoed in JSON: 1-128 bytes of
// UTF-8 without control characters.
bool valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > sessions::k_max_id_bytes || !is_valid_utf8(key)) return false;
  return std::none_of(key.begin(), key.end(),
                      [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

failure invalid_idempotency_key() {
  return invalid("invalid_idempotency_key",
                 "Idempotency-Key must be 1-128 bytes of UTF-8 without control characters");
}

// The request body as JSON; an empty body is `null` (for endpoints whose body is optional).
result<json::value> body_json(const api_request& req) {
  if (req.body.empty()) return json::value(nullptr);
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 256;
  json::value v = json::parse(req.body, ec, {}, opts);
  if (ec) {
    return invalid("invalid_json", "the request body is not valid JSON: " + ec.message());
  }
  return v;
}

// If-Match: a revision number, bare or as an entity tag ("7", W/"7").
result<std::optional<std::int64_t>> if_match(const api_request& req) {
  auto value = req.header("If-Match");
  if (!value) return std::optional<std::int64_t>();
  std::string_view v = *value;
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  auto n = parse_strict_uint(v, k_max_safe_integer);
  if (!n) {
    return invalid(
        "invalid_if_match",
        "If-Match must be a session revision, e.g. If-Match: \"7\"; got '" + *value + "'");
  }
  return std::optional<std::int64_t>(static_cast<std::int64_t>(*n));
}

std::optional<std::string> query(const api_request& req, std::string_view key) {
  for (const auto& p : req.query) {
    if (p.key == key) return p.value;
  }
  return std::nullopt;
}

result<std::optional<std::int64_t>> query_int(const api_request& req, std::string_view key) {
  auto v = query(req, key);
  if (!v) return std::optional<std::int64_t>();
  auto n = parse_strict_uint(*v, k_max_safe_integer);
  if (!n) {
    return invalid("invalid_" + std::string(key),
                   "'" + std::string(key) + "' must be a non-negative whole number");
  }
  return std::optional<std::int64_t>(static_cast<std::int64_t>(*n));
}

result<std::optional<int>> query_limit(const api_request& req, std::string_view key) {
  auto n = query_int(req, key);
  if (!n) return std::move(n).error();
  if (!*n) return std::optional<int>();
  if (**n > 1'000'000) {
    return invalid("invalid_" + std::string(key), "'" + std::string(key) + "' is too large");
  }
  return std::optional<int>(static_cast<int>(**n));
}

// Runs `then` with the parsed JSON body and If-Match, or answers 400.
template <class Then>
void with_body_and_match(api_request& req, api_callback& done, Then then) {
  auto body = body_json(req);
  if (!body) return fail(done, body.error());
  auto match = if_match(req);
  if (!match) return fail(done, match.error());
  then(std::move(*body), *match);
}

const std::vector<route>& routes() {
  static const std::vector<route> table{
      // ---- projects
      {{"POST", "/v1/projects", session_access::project_create},
       [](session_service& s, const params&, api_request& req, api_callback done) {
         auto body = body_json(req);
         if (!body) return fail(done, body.error());
         sessions::visibility may_create;
         if (!req.who->is_admin()) {
           may_create = [who = req.who](std::string_view project, std::string_view) {
             return who->may_project(project, auth::access_level::write);
           };
         }
         s.create_project(std::move(*body), std::move(may_create), answer(std::move(done)));
       }},
      {{"GET", "/v1/projects", session_access::listing},
       [](session_service& s, const params&, api_request& req, api_callback done) {
         auto archived = query(req, "archived");
         if (archived && *archived != "true" && *archived != "false") {
           return fail(done, invalid("invalid_archived", "archived must be true or false"));
         }
         s.list_projects(archived == "true", visibility_of(req.who), answer(std::move(done)));
       }},
      {{"GET", "/v1/projects/{project}", session_access::project_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.get_project(p.at("project"), answer(std::move(done)));
       }},
      {{"DELETE", "/v1/projects/{project}", session_access::project_write},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.archive_project(p.at("project"), answer(std::move(done)));
       }},
      {{"POST", "/v1/projects/{project}/sessions", session_access::project_write},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto body = body_json(req);
         if (!body) return fail(done, body.error());
         s.create_session(p.at("project"), std::move(*body), answer(std::move(done)));
       }},
      {{"GET", "/v1/projects/{project}/sessions", session_access::project_read},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto limit = query_limit(req, "limit");
         if (!limit) return fail(done, limit.error());
         s.list_sessions({p.at("project"), query(req, "state"), query(req, "client_state"),
                          query(req, "cursor"), *limit, true},
                         answer(std::move(done)));
       }},
      // ---- the change feed (GET /v1/changes itself is served as a stream by router.cpp)
      // A token that reads only some projects gets one project's entities and the offset of
      // that project's own feed (change_feed_for(), http/access.hpp).
      {{"GET", "/v1/changes/snapshot", session_access::listing},
       [](session_service& s, const params&, api_request& req, api_callback done) {
         auto project = query(req, "project");
         auto feed = change_feed_for(*req.who, project);
         if (!feed) return fail(done, feed.error());
         if (*feed == session_service::k_changes_stream_path) {
           return s.changes_snapshot(visibility_of(req.who), std::nullopt, answer(std::move(done)));
         }
         s.ensure_project_feed(*project, [&s, project, visible = visibility_of(req.who),
                                          done = std::move(done)](status created) mutable {
           if (!created) return fail(done, created.error());
           s.changes_snapshot(std::move(visible), project, answer(std::move(done)));
         });
       }},
      // ---- sessions
      {{"GET", "/v1/sessions", session_access::listing},
       [](session_service& s, const params&, api_request& req, api_callback done) {
         auto limit = query_limit(req, "limit");
         if (!limit) return fail(done, limit.error());
         s.list_sessions({query(req, "project"), query(req, "state"), query(req, "client_state"),
                          query(req, "cursor"), *limit, false, visibility_of(req.who)},
                         answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}", session_access::session_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.get_session(p.at("session"), answer(std::move(done)));
       }},
      {{"PATCH", "/v1/sessions/{session}", session_access::session_write},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.update_session(p.at("session"), m, std::move(body), answer(std::move(done)));
         });
       }},
      {{"POST", "/v1/sessions/{session}/transition", session_access::session_write},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.transition(p.at("session"), m, std::move(body), answer(std::move(done)));
         });
       }},
      {{"POST", "/v1/sessions/{session}/end", session_access::session_write},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.end(p.at("session"), m, std::move(body), answer(std::move(done)));
         });
       }},
      {{"POST", "/v1/sessions/{session}/heartbeat", session_access::session_agent},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.heartbeat(p.at("session"), answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/snapshot", session_access::session_read},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto rows = query_limit(req, "rows");
         if (!rows) return fail(done, rows.error());
         s.snapshot(p.at("session"), *rows, answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/events", session_access::session_read},
       nullptr},  // served as a stream by router.cpp
      // ---- pull requests
      {{"PUT", "/v1/sessions/{session}/prs", session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.observe_pr(p.at("session"), m, std::move(body), answer(std::move(done)));
         });
       }},
      {{"GET", "/v1/sessions/{session}/prs", session_access::session_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.list_prs(p.at("session"), answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/ci-brake", session_access::session_read},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto commits = query_limit(req, "commits");
         if (!commits) return fail(done, commits.error());
         s.ci_brake(p.at("session"), *commits, answer(std::move(done)));
       }},
      // ---- executions
      {{"POST", "/v1/sessions/{session}/executions", session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto m = if_match(req);
         if (!m) return fail(done, m.error());
         s.start_execution(p.at("session"), *m, answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/executions", session_access::session_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.list_executions(p.at("session"), answer(std::move(done)));
       }},
      {{"POST", "/v1/sessions/{session}/executions/{generation}/finish",
        session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto g = parse_strict_uint(p.at("generation"), k_max_safe_integer);
         if (!g) return fail(done, invalid("invalid_generation", "generation must be a number"));
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.finish_execution(p.at("session"), static_cast<std::int64_t>(*g), false, m,
                              std::move(body), answer(std::move(done)));
         });
       }},
      {{"POST", "/v1/sessions/{session}/executions/{generation}/abort",
        session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto g = parse_strict_uint(p.at("generation"), k_max_safe_integer);
         if (!g) return fail(done, invalid("invalid_generation", "generation must be a number"));
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.finish_execution(p.at("session"), static_cast<std::int64_t>(*g), true, m,
                              std::move(body), answer(std::move(done)));
         });
       }},
      // ---- commands
      {{"POST", "/v1/sessions/{session}/commands", session_access::session_write},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto key = req.header("Idempotency-Key");
         if (!key) {
           return fail(done, invalid("missing_idempotency_key",
                                     "send an Idempotency-Key header (1-128 characters) naming "
                                     "this command, so a retry is never executed twice"));
         }
         if (!valid_idempotency_key(*key)) return fail(done, invalid_idempotency_key());
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.send_command(p.at("session"), m, *key, std::move(body), answer(std::move(done)));
         });
       }},
      {{"GET", "/v1/sessions/{session}/commands", session_access::session_read},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto after = query_int(req, "after");
         if (!after) return fail(done, after.error());
         auto limit = query_limit(req, "limit");
         if (!limit) return fail(done, limit.error());
         s.list_commands(p.at("session"), query(req, "status"), *after, *limit,
                         answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/commands/{command}", session_access::session_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.get_command(p.at("session"), p.at("command"), answer(std::move(done)));
       }},
      {{"POST", "/v1/sessions/{session}/commands/{command}", session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.update_command(p.at("session"), p.at("command"), m, std::move(body),
                            answer(std::move(done)));
         });
       }},
      // ---- rows
      {{"POST", "/v1/sessions/{session}/rows", session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto key = req.header("Idempotency-Key");
         if (key && !valid_idempotency_key(*key)) return fail(done, invalid_idempotency_key());
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.append_row(p.at("session"), m, key, std::move(body), answer(std::move(done)));
         });
       }},
      {{"GET", "/v1/sessions/{session}/rows", session_access::session_read},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         auto after = query_int(req, "after");
         if (!after) return fail(done, after.error());
         auto before = query_int(req, "before");
         if (!before) return fail(done, before.error());
         auto limit = query_limit(req, "limit");
         if (!limit) return fail(done, limit.error());
         s.list_rows(p.at("session"), {*after, *before, *limit}, answer(std::move(done)));
       }},
      {{"GET", "/v1/sessions/{session}/rows/{row}", session_access::session_read},
       [](session_service& s, const params& p, api_request&, api_callback done) {
         s.get_row(p.at("session"), p.at("row"), answer(std::move(done)));
       }},
      {{"PUT", "/v1/sessions/{session}/rows/{row}", session_access::session_agent},
       [](session_service& s, const params& p, api_request& req, api_callback done) {
         with_body_and_match(req, done, [&](json::value body, std::optional<std::int64_t> m) {
           s.upsert_row(p.at("session"), p.at("row"), m, std::move(body), answer(std::move(done)));
         });
       }},
  };
  return table;
}

}  // namespace

const std::vector<route_spec>& session_routes() {
  static const std::vector<route_spec> specs = [] {
    std::vector<route_spec> out;
    for (const auto& r : routes())
      out.push_back(r.spec);
    return out;
  }();
  return specs;
}

bool is_session_api_path(std::string_view path) {
  return path == "/v1/projects" || path.rfind("/v1/projects/", 0) == 0 || path == "/v1/sessions" ||
         path.rfind("/v1/sessions/", 0) == 0 || path.rfind("/v1/changes/", 0) == 0;
}

std::optional<std::string> session_events_stream(std::string_view path) {
  auto p = match("/v1/sessions/{session}/events", path);
  if (!p) return std::nullopt;
  return session_service::events_stream_path(p->at("session"));
}

namespace {

// Runs the route's handler once the request's token may use it (http/access.hpp); otherwise
// answers what the check says, exactly as a missing resource would be answered where the token
// may not read it.
void authorize_and_handle(session_service& service, const route& r, params p, api_request request,
                          api_callback done) {
  const auth::principal& who = *request.who;
  switch (r.spec.access) {
    case session_access::unset:
      // A route without a rule is refused, never served open (access_test.cpp finds it).
      return fail(done, make_failure(failure_kind::internal, "route_without_rule",
                                     "this route declares no access rule"));
    case session_access::listing:
    case session_access::project_create:
      return r.handle(service, p, request, std::move(done));
    case session_access::project_read:
    case session_access::project_write:
      if (auto refused = check_project_access(who, p.at("project"), r.spec.access)) {
        return fail(done, *refused);
      }
      return r.handle(service, p, request, std::move(done));
    case session_access::session_read:
    case session_access::session_agent:
    case session_access::session_write:
      break;
  }
  if (who.is_admin()) return r.handle(service, p, request, std::move(done));
  // The session's project decides; a missing session answers like an unreadable one.
  std::string id = p.at("session");
  auto state = std::make_shared<std::tuple<params, api_request, api_callback>>(
      std::move(p), std::move(request), std::move(done));
  service.session_project(
      id, [&service, &r, state, id](result<std::optional<std::string>> project) {
        auto& [p, request, done] = *state;
        if (!project) return fail(done, project.error());
        if (!*project) {
          return fail(done, make_failure(failure_kind::not_found, "session_not_found",
                                         "no session '" + id + "'"));
        }
        if (auto refused = check_session_access(*request.who, id, **project, r.spec.access)) {
          return fail(done, *refused);
        }
        r.handle(service, p, request, std::move(done));
      });
}

}  // namespace

std::vector<route_rule> session_route_rules() {
  std::vector<route_rule> out;
  for (const auto& r : routes())
    out.push_back({std::string(r.spec.method), std::string(r.spec.path),
                   std::string(describe(r.spec.access))});
  return out;
}

void handle_session_api(session_service& service, api_request request, api_callback done) {
  std::string allowed;
  for (const auto& r : routes()) {
    auto p = match(r.spec.path, request.path);
    if (!p) continue;
    if (r.spec.method != request.method) {
      allowed += (allowed.empty() ? "" : ", ") + std::string(r.spec.method);
      continue;
    }
    // A route with no handler here (the events stream, which router.cpp serves before this
    // table) is answered as no resource, not by calling an empty function, which would throw.
    if (!r.handle) break;
    authorize_and_handle(service, r, std::move(*p), std::move(request), std::move(done));
    return;
  }
  if (!allowed.empty()) {
    done(failure_response(method_not_allowed(
        allowed, request.method + " is not supported on " + request.path + "; use " + allowed)));
    return;
  }
  done(failure_response(make_failure(failure_kind::not_found, "route_not_found",
                                     "no resource at '" + request.path + "'")));
}

}  // namespace ordo::http
