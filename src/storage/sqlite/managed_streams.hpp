// The paths of the streams ordo manages, as the streams table stores them: the change feed and
// each session's events. They are part of a database's contents (doctor and inspect look for
// them, and a database written by one ordo is read by the next), so they are constants of the
// storage format, not options.
//
// They live under the stream engine's managed_stream_prefix ("__"), which clients can neither
// create nor write: the session service refuses to start when they would not
// (session_service's constructor).
#pragma once

#include <string>
#include <string_view>

namespace ordo::sqlite {

// Every managed stream's path starts with this.
inline constexpr std::string_view k_managed_namespace = "__ordo/";

// The change feed: one event per committed change of any entity.
inline constexpr std::string_view k_change_feed_path = "__ordo/changes";

// A session's events.
inline std::string session_events_path(std::string_view session_id) {
  return std::string(k_managed_namespace) + "sessions/" + std::string(session_id) + "/events";
}

}  // namespace ordo::sqlite
