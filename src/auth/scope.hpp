// Scopes: what a bearer token may do, and the checks every route makes with them.
//
// A token carries a list of scopes (a JWT in its `scope` claim, space-separated, OAuth 2.0
// style; an API token in the tokens file). The grammar:
//
//   scope        = "admin"                                  everything
//                | "streams:" level ":" stream-glob         streams under /v1/stream/
//                | "sessions:" level ":" project-glob       projects and their sessions
//                | "agent:" session-id                      one session, as its agent
//                | "metrics:read"                           GET /metrics
//   level        = "read" | "write" | "admin"               (sessions: read | write)
//   stream-glob  = a stream path where "*" matches within one segment (no "/") and "**"
//                  matches any run of characters, "/" included: "chat/**", "logs/*/today"
//   project-glob = a project id where "*" matches any run of characters: "web-*", "*"
//
// Levels nest: admin grants write, write grants read. On streams, read is GET and HEAD, write
// is POST (append, close) and PUT (create), admin adds DELETE. On sessions, read is every GET
// of a project, its sessions and their parts; write is every other method.
//
// An agent token (agent:S) may, for session S only: read everything of it, heartbeat, start,
// finish and abort executions, append and upsert rows, acknowledge and update commands, and
// observe pull requests. It may not send commands, change the session's state, end it or
// touch any other session.
//
// Thread safety: principals are immutable once built and shared between threads freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ordo::auth {

enum class access_level { read, write, admin };

// Whether the glob matches the text, as the grammar above says for streams ("*" stops at "/",
// "**" does not). Without a "/" in the text, as for project ids, both match any run.
bool glob_matches(std::string_view glob, std::string_view text);

struct scope {
  enum class kind { admin, streams, sessions, agent, metrics };
  kind what = kind::admin;
  access_level level = access_level::read;
  std::string target;  // the glob, or the agent's session id

  // The scope as written in a token.
  std::string to_string() const;
};

// One scope, or invalid_scope naming what is wrong with it.
result<scope> parse_scope(std::string_view text);

// A space-separated list (runs of spaces allowed). With `strict`, an unknown or malformed
// scope fails the whole list; otherwise it is skipped (JWTs from a shared identity provider
// often carry scopes meant for other services).
result<std::vector<scope>> parse_scopes(std::string_view text, bool strict);

// Who a request acts for: a verified token's subject and scopes.
struct principal {
  std::string subject;  // the JWT's `sub`, or the API token's id
  std::vector<scope> scopes;
  // When the credential stops being valid (ms since the epoch); nullopt: never.
  std::optional<std::int64_t> expires_at_ms;

  bool is_admin() const;
  bool may_stream(std::string_view path, access_level level) const;
  // A project's own resources and its sessions, through a sessions: scope.
  bool may_project(std::string_view project, access_level level) const;
  // Whether it reads every project (admin, or sessions:read or sessions:write on `*` or `**`).
  bool may_read_every_project() const;
  // Whether an agent: scope binds the token to this session.
  bool is_agent_of(std::string_view session) const;
  bool may_read_metrics() const;
  // The scopes, space-separated, as a JWT would carry them.
  std::string scope_text() const;
};

}  // namespace ordo::auth
