// The paths of the streams ordo manages, as the streams table stores them: the change feed, each
// project's change feed and each session's events. They are part of a database's contents (doctor
// and inspect look for them, and a database written by one ordo is read by the next), so they are
// constants of the storage format, not options.
//
// They live under the stream engine's managed_stream_prefix ("__"), which clients can neither
// create nor write: the session service refuses to start when they would not
// (session_service's constructor).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ordo::sqlite {

// Every managed stream's path starts with this.
inline constexpr std::string_view k_managed_namespace = "__ordo/";

// The change feed: one event per committed change of any entity.
inline constexpr std::string_view k_change_feed_path = "__ordo/changes";

// One project's own change feed: the changes of that project's entities only, numbered by
// positions of its own. A token that reads some projects and not others reads these, so that
// nothing about another project shows in its offsets (docs/SECURITY.md, "Scopes").
inline std::string project_changes_path(std::string_view project_id) {
  return std::string(k_managed_namespace) + "projects/" + std::string(project_id) + "/changes";
}

// The project whose own feed is at `path`; nullopt for any other path.
inline std::optional<std::string_view> change_feed_project(std::string_view path) {
  constexpr std::string_view projects = "__ordo/projects/";
  constexpr std::string_view changes = "/changes";
  if (!path.starts_with(projects) || !path.ends_with(changes) ||
      path.size() <= projects.size() + changes.size()) {
    return std::nullopt;
  }
  return path.substr(projects.size(), path.size() - projects.size() - changes.size());
}

// Whether `path` is the change feed or a project's.
inline bool is_change_feed_path(std::string_view path) {
  return path == k_change_feed_path || change_feed_project(path).has_value();
}

// A session's events.
inline std::string session_events_path(std::string_view session_id) {
  return std::string(k_managed_namespace) + "sessions/" + std::string(session_id) + "/events";
}

}  // namespace ordo::sqlite
