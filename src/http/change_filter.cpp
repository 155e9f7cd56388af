#include "http/change_filter.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace ordo::http {

const std::vector<std::string_view>& change_types() {
  static const std::vector<std::string_view> types{
      "project.created",      "project.archived", "session.created",   "session.updated",
      "session.transitioned", "session.ended",    "execution.started", "execution.finished",
      "command.accepted",     "command.updated",  "row.appended",      "row.updated",
      "pr.created",           "pr.updated",       "check.created",     "check.updated",
      "comment.created",      "comment.updated",  "comment.resolved",  "comment.removed",
  };
  return types;
}

bool change_filter::matches(std::string_view message) const {
  if (!active()) return true;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(message, ec);
  if (ec || !v.is_object()) return false;
  const auto& o = v.as_object();
  auto text = [&](std::string_view key) -> std::optional<std::string_view> {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return std::nullopt;
    return std::string_view(it->value().as_string());
  };
  if (restricted()) {
    auto p = text("project");
    auto s = text("session");
    bool readable =
        (p && reader->may_project(*p, auth::access_level::read)) || (s && reader->is_agent_of(*s));
    if (!readable) return false;
  }
  if (project && text("project") != std::optional<std::string_view>(*project)) return false;
  if (session && text("session") != std::optional<std::string_view>(*session)) return false;
  if (!types.empty()) {
    auto type = text("type");
    if (!type || std::find(types.begin(), types.end(), *type) == types.end()) return false;
  }
  return true;
}

std::string change_filter::fingerprint() const {
  // Each value is marked present or absent and prefixed with its length, so no two filters
  // share a fingerprint (an empty project is not an absent one; a value holding ";s=" cannot
  // pose as the next field). The types come from a fixed list of names without commas.
  auto field = [](char name, const std::optional<std::string>& v) {
    if (!v) return std::string(1, name) + "-;";
    return std::string(1, name) + std::to_string(v->size()) + ":" + *v + ";";
  };
  std::string out = field('p', project) + field('s', session) + "t=";
  for (const auto& t : types)
    out += t + ",";
  if (restricted()) {
    std::string scopes = reader->scope_text();
    out += ";r" + std::to_string(scopes.size()) + ":" + scopes;
  }
  return out;
}

result<change_filter> change_filter_from_query(const std::vector<query_param>& params) {
  change_filter f;
  for (const auto& p : params) {
    if (p.key == "project") {
      f.project = p.value;
    } else if (p.key == "session") {
      f.session = p.value;
    } else if (p.key == "types") {
      std::size_t start = 0;
      while (start <= p.value.size()) {
        std::size_t end = p.value.find(',', start);
        if (end == std::string::npos) end = p.value.size();
        std::string type = p.value.substr(start, end - start);
        const auto& known = change_types();
        if (std::find(known.begin(), known.end(), type) == known.end()) {
          std::string list;
          for (auto k : known)
            list += (list.empty() ? "" : ", ") + std::string(k);
          return make_failure(failure_kind::invalid, "invalid_types",
                              "unknown change type '" + type +
                                  "'; types is a comma-separated "
                                  "list of: " +
                                  list);
        }
        f.types.push_back(std::move(type));
        start = end + 1;
      }
    }
  }
  return f;
}

}  // namespace ordo::http
