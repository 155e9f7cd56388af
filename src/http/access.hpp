// Access control at the HTTP layer: the rule each route declares, the credential a request
// carries, and the checks that turn a principal's scopes (auth/scope.hpp) into answers.
//
// The answers, so that nothing leaks (docs/SECURITY.md, "Scopes"):
//   - no credential, or one that does not verify: 401 with WWW-Authenticate, whatever the route
//     (except the open ones: /health, /ready, the dashboard's files and its sign-in);
//   - a resource the token may not read: the very answer a missing one gets (404, same code and
//     message), decided before anything about the resource is looked at;
//   - a resource it may read but not change: 403 insufficient_scope;
//   - lists and snapshots: what the token may not read is left out before paging, so counts,
//     cursors and ETags reflect only what it sees;
//   - the change feed: a token that reads every project reads the server's feed; any other
//     reads one project's own feed (change_feed_for()), whose offsets count that project's
//     changes only.
//
// Without authentication (--auth none) every request acts as `unrestricted()`: admin.
//
// Thread safety: free functions over immutable principals.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scope.hpp"
#include "base/result.hpp"
#include "sessions/session_service.hpp"

namespace ordo::http {

// What a route of the router's table (router.cpp) requires. `unset` exists so that a route
// added without a rule is caught by the test that walks the table (access_test.cpp).
enum class route_access {
  unset,
  open,              // anyone: probes, the dashboard's files, its sign-in
  metrics,           // metrics:read or admin
  listing,           // any valid token; the answer holds only what it may read
  session_read,      // read on the session's project, or the session's agent
  stream_by_method,  // GET/HEAD read, POST/PUT write, DELETE admin, on the stream's path
  session_api,       // the session API's own table says, per route (session_access)
};

// What a route of the session API's table (session_api.cpp) requires.
enum class session_access {
  unset,
  listing,         // a list or snapshot, filtered to what the token may read
  project_create,  // sessions:write on the new project's id
  project_read,    // sessions:read on {project}
  project_write,   // sessions:write on {project}
  session_read,    // sessions:read on the session's project, or agent:{session}
  session_agent,   // sessions:write on the session's project, or agent:{session}
  session_write,   // sessions:write on the session's project (its agent may not)
};

// One route and its rule, for the table tests and `ordo routes`.
struct route_rule {
  std::string method;  // "GET", ..., or "*" for every method
  std::string path;    // a template: {session}, {path...}
  std::string rule;    // what it requires, in words; empty: no rule (a defect)
};

std::string_view describe(route_access a);
// The router's table (router.cpp); the session API's is session_route_rules().
std::vector<route_rule> router_route_rules();
std::string_view describe(session_access a);

// The principal of a request when authentication is off: admin, never expiring.
const std::shared_ptr<const auth::principal>& unrestricted();

// The token of `Authorization: Bearer TOKEN` (the scheme case-insensitive); nullopt when the
// header is absent or names another scheme.
std::optional<std::string> bearer_token(const std::optional<std::string>& authorization);
// The value of cookie `name` in a Cookie header.
std::optional<std::string> cookie_value(const std::optional<std::string>& cookie,
                                        std::string_view name);

// The dashboard's cookie, and the header its page sends with every request that changes
// something: a cross-site form or script cannot set it, so the cookie alone never writes.
inline constexpr std::string_view k_session_cookie = "ordo_token";
inline constexpr std::string_view k_csrf_header = "X-Ordo-Request";
// The dashboard's sign-in (POST {"token"}), sign-out (POST) and who-am-I (GET).
inline constexpr std::string_view k_sign_in_path = "/ui/sign-in";
inline constexpr std::string_view k_sign_out_path = "/ui/sign-out";
inline constexpr std::string_view k_whoami_path = "/ui/session";
// The longest a sign-in lasts, whatever the token's own expiry.
inline constexpr std::chrono::hours k_session_cookie_max_age{12};

// 404 stream_not_found: what a missing stream, and one the token may not read, answer.
failure stream_not_found();
// Nothing when `who` may act on the stream at `level`; otherwise the failure to answer.
std::optional<failure> check_stream_access(const auth::principal& who, std::string_view path,
                                           auth::access_level level);
// The level a stream method needs.
auth::access_level stream_level_of(std::string_view method);

// Nothing when `who` may act on session `session_id` of project `project` as `access` asks
// (session_read, session_agent or session_write); otherwise the failure: the session's own
// 404 when it may not read it, 403 when it may read but not do this.
std::optional<failure> check_session_access(const auth::principal& who, std::string_view session_id,
                                            std::string_view project, session_access access);
// The same for a project's own routes (project_read, project_write).
std::optional<failure> check_project_access(const auth::principal& who, std::string_view project,
                                            session_access access);

// The feed GET /v1/changes and /v1/changes/snapshot serve `who`, with `project` the request's
// ?project=: the server's feed (sessions::session_service::k_changes_stream_path) when `who`
// reads every project; otherwise the feed of `project`, which it must be able to read: 403
// project_required without one, 404 project_not_found (a missing project's answer) for one it
// may not read.
result<std::string> change_feed_for(const auth::principal& who,
                                    const std::optional<std::string>& project);

// What `who` may see in lists and snapshots; empty (everything) for admin.
sessions::visibility visibility_of(std::shared_ptr<const auth::principal> who);

}  // namespace ordo::http
