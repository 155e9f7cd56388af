// Server-side filters of the change feed (/v1/changes?project=&session=&types=). A filtered
// read scans the feed like an unfiltered one and drops the events that do not match; offsets
// stay those of the feed read (the server's, or a project's own for a token that reads only
// some projects: change_feed_for(), http/access.hpp), so a filtered reader resumes exactly
// where its last answer ended.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scope.hpp"
#include "base/result.hpp"
#include "http/stream_protocol.hpp"

namespace ordo::http {

struct change_filter {
  std::optional<std::string> project;
  std::optional<std::string> session;
  std::vector<std::string> types;  // empty: every type
  // The token reading the feed: only the changes of projects (or, for an agent, the session)
  // it may read pass. Null or admin: no restriction.
  std::shared_ptr<const auth::principal> reader;

  bool restricted() const { return reader && !reader->is_admin(); }
  bool active() const { return project || session || !types.empty() || restricted(); }
  // Whether one change event (a JSON object) passes the filter.
  bool matches(std::string_view message) const;
  // A stable text naming the filter and the reader's scopes, for ETags.
  std::string fingerprint() const;
};

// Every change type the feed carries.
const std::vector<std::string_view>& change_types();

result<change_filter> change_filter_from_query(const std::vector<query_param>& params);

}  // namespace ordo::http
