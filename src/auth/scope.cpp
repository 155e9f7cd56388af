#include "auth/scope.hpp"

#include <algorithm>
#include <vector>

namespace ordo::auth {

namespace {

// Longest scope accepted, whole: a glob or session id longer than any path is a mistake.
constexpr std::size_t k_max_scope_bytes = 1024;

failure invalid_scope(std::string_view text, std::string why) {
  std::string shown(text.substr(0, 80));
  return make_failure(failure_kind::invalid, "invalid_scope",
                      "scope '" + shown + "' " + std::move(why) +
                          "; scopes are admin, streams:read|write|admin:GLOB, "
                          "sessions:read|write:PROJECT, agent:SESSION and metrics:read");
}

std::optional<access_level> level_named(std::string_view name) {
  if (name == "read") return access_level::read;
  if (name == "write") return access_level::write;
  if (name == "admin") return access_level::admin;
  return std::nullopt;
}

std::string_view level_name(access_level l) {
  switch (l) {
    case access_level::read:
      return "read";
    case access_level::write:
      return "write";
    case access_level::admin:
      return "admin";
  }
  return "read";
}

bool grants(access_level held, access_level wanted) {
  return static_cast<int>(held) >= static_cast<int>(wanted);
}

bool printable_without_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c != 0x7f; });
}

}  // namespace

bool glob_matches(std::string_view glob, std::string_view text) {
  // Dynamic programming over the glob: `can[t]` says whether the glob so far can match the
  // first t characters of the text. Two kinds of star forbid the usual one-star backtracking
  // (a "*" that may not cross "/" after a "**" that may); this stays O(glob x text), with the
  // glob an operator's short pattern.
  std::vector<char> can(text.size() + 1, 0), next(text.size() + 1, 0);
  can[0] = 1;
  std::size_t g = 0;
  while (g < glob.size()) {
    std::fill(next.begin(), next.end(), 0);
    if (glob[g] == '*') {
      bool crosses = g + 1 < glob.size() && glob[g + 1] == '*';
      g += crosses ? 2 : 1;
      // A star extends any match by a run of characters ("/" only for "**").
      for (std::size_t t = 0; t <= text.size(); ++t) {
        if (can[t]) next[t] = 1;
        if (t > 0 && next[t - 1] && (crosses || text[t - 1] != '/')) next[t] = 1;
      }
    } else {
      for (std::size_t t = 0; t < text.size(); ++t)
        next[t + 1] = can[t] && text[t] == glob[g];
      ++g;
    }
    std::swap(can, next);
  }
  return can[text.size()] != 0;
}

std::string scope::to_string() const {
  switch (what) {
    case kind::admin:
      return "admin";
    case kind::metrics:
      return "metrics:read";
    case kind::agent:
      return "agent:" + target;
    case kind::streams:
      return "streams:" + std::string(level_name(level)) + ":" + target;
    case kind::sessions:
      return "sessions:" + std::string(level_name(level)) + ":" + target;
  }
  return "";
}

result<scope> parse_scope(std::string_view text) {
  if (text.empty()) return invalid_scope(text, "is empty");
  if (text.size() > k_max_scope_bytes) return invalid_scope(text, "is too long");
  if (!printable_without_space(text)) {
    return invalid_scope(text, "holds a space or a control character");
  }
  if (text == "admin") return scope{scope::kind::admin, access_level::admin, ""};
  if (text == "metrics:read") return scope{scope::kind::metrics, access_level::read, ""};
  if (text.rfind("agent:", 0) == 0) {
    std::string_view session = text.substr(6);
    if (session.empty()) return invalid_scope(text, "names no session");
    if (session.find('*') != std::string_view::npos) {
      return invalid_scope(text, "binds an agent to a pattern; name one session");
    }
    return scope{scope::kind::agent, access_level::write, std::string(session)};
  }
  for (auto [prefix, what] : {std::pair{std::string_view("streams:"), scope::kind::streams},
                              std::pair{std::string_view("sessions:"), scope::kind::sessions}}) {
    if (text.rfind(prefix, 0) != 0) continue;
    std::string_view rest = text.substr(prefix.size());
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return invalid_scope(text, "has no level and target");
    auto level = level_named(rest.substr(0, colon));
    if (!level || (what == scope::kind::sessions && *level == access_level::admin)) {
      return invalid_scope(text, what == scope::kind::sessions
                                     ? "has a level other than read or write"
                                     : "has a level other than read, "
                                       "write or admin");
    }
    std::string_view target = rest.substr(colon + 1);
    if (target.empty()) return invalid_scope(text, "has an empty target (use ** for every one)");
    if (target.find("***") != std::string_view::npos) {
      return invalid_scope(text, "has three stars in a row");
    }
    return scope{what, *level, std::string(target)};
  }
  return invalid_scope(text, "is not known");
}

result<std::vector<scope>> parse_scopes(std::string_view text, bool strict) {
  std::vector<scope> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    auto s = parse_scope(item);
    if (s) {
      out.push_back(std::move(*s));
    } else if (strict) {
      return std::move(s).error();
    }
  }
  return out;
}

bool principal::is_admin() const {
  return std::any_of(scopes.begin(), scopes.end(),
                     [](const scope& s) { return s.what == scope::kind::admin; });
}

bool principal::may_stream(std::string_view path, access_level level) const {
  for (const scope& s : scopes) {
    if (s.what == scope::kind::admin) return true;
    if (s.what == scope::kind::streams && grants(s.level, level) && glob_matches(s.target, path)) {
      return true;
    }
  }
  return false;
}

bool principal::may_project(std::string_view project, access_level level) const {
  for (const scope& s : scopes) {
    if (s.what == scope::kind::admin) return true;
    if (s.what == scope::kind::sessions && grants(s.level, level) &&
        glob_matches(s.target, project)) {
      return true;
    }
  }
  return false;
}

bool principal::may_read_every_project() const {
  return std::any_of(scopes.begin(), scopes.end(), [](const scope& s) {
    return s.what == scope::kind::admin ||
           (s.what == scope::kind::sessions && grants(s.level, access_level::read) &&
            (s.target == "*" || s.target == "**"));
  });
}

bool principal::is_agent_of(std::string_view session) const {
  return std::any_of(scopes.begin(), scopes.end(), [&](const scope& s) {
    return s.what == scope::kind::agent && s.target == session;
  });
}

bool principal::may_read_metrics() const {
  return std::any_of(scopes.begin(), scopes.end(), [](const scope& s) {
    return s.what == scope::kind::admin || s.what == scope::kind::metrics;
  });
}

std::string principal::scope_text() const {
  std::string out;
  for (const scope& s : scopes)
    out += (out.empty() ? "" : " ") + s.to_string();
  return out;
}

}  // namespace ordo::auth
