#include "http/access.hpp"

#include "http/request_head.hpp"

#include <algorithm>
#include <cctype>

namespace ordo::http {

namespace {

failure insufficient_scope(std::string message) {
  return make_failure(failure_kind::forbidden, "insufficient_scope", std::move(message));
}

}  // namespace

std::string_view describe(route_access a) {
  switch (a) {
    case route_access::unset:
      return "";
    case route_access::open:
      return "none (open)";
    case route_access::metrics:
      return "metrics:read or admin";
    case route_access::listing:
      return "any valid token; shows only what it may read";
    case route_access::session_read:
      return "sessions:read on the session's project, or agent:{session}";
    case route_access::stream_by_method:
      return "streams:read (GET, HEAD), streams:write (POST, PUT), streams:admin (DELETE) on "
             "the path";
    case route_access::session_api:
      return "per route of the session API";
  }
  return "";
}

std::string_view describe(session_access a) {
  switch (a) {
    case session_access::unset:
      return "";
    case session_access::listing:
      return "any valid token; shows only what it may read";
    case session_access::project_create:
      return "sessions:write on the new project's id";
    case session_access::project_read:
      return "sessions:read on {project}";
    case session_access::project_write:
      return "sessions:write on {project}";
    case session_access::session_read:
      return "sessions:read on the session's project, or agent:{session}";
    case session_access::session_agent:
      return "sessions:write on the session's project, or agent:{session}";
    case session_access::session_write:
      return "sessions:write on the session's project";
  }
  return "";
}

const std::shared_ptr<const auth::principal>& unrestricted() {
  static const std::shared_ptr<const auth::principal> admin = [] {
    auto p = std::make_shared<auth::principal>();
    p->subject = "anonymous (--auth none)";
    p->scopes.push_back(auth::scope{auth::scope::kind::admin, auth::access_level::admin, ""});
    return p;
  }();
  return admin;
}

std::optional<std::string> bearer_token(const std::optional<std::string>& authorization) {
  if (!authorization) return std::nullopt;
  std::string_view v = trim_ows(*authorization);
  constexpr std::string_view k_scheme = "bearer";
  if (v.size() <= k_scheme.size() || !iequals_ascii(v.substr(0, k_scheme.size()), k_scheme) ||
      (v[k_scheme.size()] != ' ' && v[k_scheme.size()] != '\t')) {
    return std::nullopt;
  }
  return std::string(trim_ows(v.substr(k_scheme.size())));
}

std::optional<std::string> cookie_value(const std::optional<std::string>& cookie,
                                        std::string_view name) {
  if (!cookie) return std::nullopt;
  std::string_view rest = *cookie;
  while (!rest.empty()) {
    std::size_t semi = rest.find(';');
    std::string_view pair = trim_ows(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim_ows(pair.substr(0, eq)) == name) return std::string(trim_ows(pair.substr(eq + 1)));
  }
  return std::nullopt;
}

failure stream_not_found() {
  return make_failure(failure_kind::not_found, "stream_not_found", "no stream exists at this path");
}

auth::access_level stream_level_of(std::string_view method) {
  if (method == "GET" || method == "HEAD") return auth::access_level::read;
  if (method == "DELETE") return auth::access_level::admin;
  return auth::access_level::write;
}

std::optional<failure> check_stream_access(const auth::principal& who, std::string_view path,
                                           auth::access_level level) {
  if (!who.may_stream(path, auth::access_level::read)) return stream_not_found();
  if (!who.may_stream(path, level)) {
    return insufficient_scope(
        level == auth::access_level::admin
            ? "this token may not delete this stream (it needs streams:admin on its path)"
            : "this token may read this stream but not write it (it needs streams:write on its "
              "path)");
  }
  return std::nullopt;
}

std::optional<failure> check_session_access(const auth::principal& who, std::string_view session_id,
                                            std::string_view project, session_access access) {
  bool agent = who.is_agent_of(session_id);
  if (!agent && !who.may_project(project, auth::access_level::read)) {
    return make_failure(failure_kind::not_found, "session_not_found",
                        "no session '" + std::string(session_id) + "'");
  }
  if (access == session_access::session_read) return std::nullopt;
  if (who.may_project(project, auth::access_level::write)) return std::nullopt;
  if (access == session_access::session_agent && agent) return std::nullopt;
  return insufficient_scope(agent ? "an agent token may not do this to its session (it needs "
                                    "sessions:write on the session's project)"
                                  : "this token may read this session but not change it (it "
                                    "needs sessions:write on its project)");
}

std::optional<failure> check_project_access(const auth::principal& who, std::string_view project,
                                            session_access access) {
  if (!who.may_project(project, auth::access_level::read)) {
    return make_failure(failure_kind::not_found, "project_not_found",
                        "no project '" + std::string(project) + "'");
  }
  if (access == session_access::project_write &&
      !who.may_project(project, auth::access_level::write)) {
    return insufficient_scope(
        "this token may read this project but not change it (it needs sessions:write on it)");
  }
  return std::nullopt;
}

result<std::string> change_feed_for(const auth::principal& who,
                                    const std::optional<std::string>& project) {
  if (who.may_read_every_project()) {
    return std::string(sessions::session_service::k_changes_stream_path);
  }
  if (!project) {
    return make_failure(failure_kind::forbidden, "project_required",
                        "this token reads only some projects: name one with ?project=ID (its "
                        "feed's offsets are that project's own)");
  }
  if (!who.may_project(*project, auth::access_level::read)) {
    return make_failure(failure_kind::not_found, "project_not_found",
                        "no project '" + *project + "'");
  }
  return sqlite::project_changes_path(*project);
}

sessions::visibility visibility_of(std::shared_ptr<const auth::principal> who) {
  if (!who || who->is_admin()) return {};
  return [who = std::move(who)](std::string_view project, std::string_view session) {
    return who->may_project(project, auth::access_level::read) ||
           (!session.empty() && who->is_agent_of(session));
  };
}

}  // namespace ordo::http
