// The JSON views of stored rows, the request-body reader and canonical JSON (api_json.hpp).
#include "sessions/api_json.hpp"

#include <algorithm>
#include <utility>

#include "base/rfc3339.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

namespace {

// The value with the members of every object sorted by key, at every depth.
json::value sorted(const json::value& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, json::value>> members;
    for (const auto& [k, x] : v.as_object())
      members.emplace_back(std::string(k), sorted(x));
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    json::object o;
    for (auto& [k, x] : members)
      o[k] = std::move(x);
    return o;
  }
  if (v.is_array()) {
    json::array a;
    for (const auto& x : v.as_array())
      a.push_back(sorted(x));
    return a;
  }
  return v;
}

}  // namespace

json::value optional_text(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

template <named_enum E>
json::value optional_name(const std::optional<E>& v) {
  return v ? json::value(to_string(*v)) : json::value(nullptr);
}

json::value optional_time(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(format_rfc3339_ms(*ms)) : json::value(nullptr);
}

std::string canonical_json(const json::value& v) {
  return json::serialize(sorted(v));
}

json::value parse_stored(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value(text) : v;
}

// ---- JSON views of rows ----------------------------------------------------------------------

json::object project_json(const sqlite::project_row& p) {
  json::object o;
  o["id"] = p.id;
  o["name"] = p.name;
  o["repo_path"] = optional_text(p.repo_path);
  o["origin_url"] = optional_text(p.origin_url);
  o["description"] = optional_text(p.description);
  o["archived"] = p.archived_at_ms.has_value();
  o["archived_at"] = optional_time(p.archived_at_ms);
  o["created_at"] = format_rfc3339_ms(p.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(p.updated_at_ms);
  o["revision"] = p.revision;
  return o;
}

json::object session_json(const sqlite::session_row& s) {
  json::object o;
  o["id"] = s.id;
  o["project"] = s.project_id;
  o["number"] = s.number.value();
  o["state"] = to_string(s.state);
  // An ended session asks nothing of anyone, whatever its rows say.
  bool ended = s.state == session_state::ended;
  o["client_state"] =
      to_string(ended ? client_state::idle
                      : derive_client_state(s.awaiting_approval, s.active_generation.has_value()));
  o["end_reason"] = optional_name(s.end_reason);
  o["revision"] = s.revision;
  o["agent_kind"] = optional_text(s.agent_kind);
  o["model"] = optional_text(s.model);
  o["title"] = optional_text(s.title);
  o["branch"] = optional_text(s.branch);
  o["workspace_path"] = optional_text(s.workspace_path);
  o["tags"] = parse_stored(s.tags);
  if (s.active_generation) {
    json::object e;
    e["generation"] = *s.active_generation;
    e["started_at"] = optional_time(s.active_started_at_ms);
    o["active_execution"] = std::move(e);
  } else {
    o["active_execution"] = nullptr;
  }
  o["last_heartbeat_at"] = optional_time(s.last_heartbeat_ms);
  o["created_at"] = format_rfc3339_ms(s.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(s.updated_at_ms);
  o["ended_at"] = optional_time(s.ended_at_ms);
  o["events_url"] = "/v1/sessions/" + s.id + "/events";
  return o;
}

std::string session_id(std::string_view project_id, sqlite::session_number number) {
  return std::string(project_id) + "-" + std::to_string(number.value());
}

std::string command_id(std::string_view session_id, std::int64_t seq) {
  return std::string(session_id) + std::string(k_command_id_infix) + std::to_string(seq);
}

json::object command_json(const sqlite::command_row& c) {
  json::object o;
  o["id"] = command_id(c.session_id, c.seq);
  o["session"] = c.session_id;
  o["sequence"] = c.seq;
  o["status"] = to_string(c.status);
  o["request_id"] = c.request_id;
  o["body"] = parse_stored(c.body);
  o["result"] = c.result ? parse_stored(*c.result) : json::value(nullptr);
  o["created_at"] = format_rfc3339_ms(c.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

json::object row_json(const sqlite::transcript_row& r) {
  json::object o;
  o["row_id"] = r.row_id;
  o["session"] = r.session_id;
  o["sequence"] = r.seq;
  o["kind"] = to_string(r.kind);
  o["status"] = to_string(r.status);
  o["body"] = parse_stored(r.body);
  o["revision"] = r.revision;
  o["created_at"] = format_rfc3339_ms(r.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(r.updated_at_ms);
  return o;
}

json::object execution_json(const sqlite::execution_row& e) {
  json::object o;
  o["generation"] = e.generation;
  o["started_at"] = format_rfc3339_ms(e.started_at_ms);
  o["finished_at"] = optional_time(e.finished_at_ms);
  o["finish_reason"] = optional_name(e.finish_reason);
  return o;
}

json::object pr_json(const sqlite::pr_row& p) {
  json::object o;
  o["url"] = p.url;
  o["session"] = p.session_id;
  o["number"] = p.number ? json::value(*p.number) : json::value(nullptr);
  o["title"] = optional_text(p.title);
  o["state"] = to_string(p.state);
  o["review_decision"] = to_string(p.review_decision);
  o["mergeability"] = to_string(p.mergeability);
  o["ci_state"] = to_string(p.ci_state);
  o["head_commit"] = optional_text(p.head_commit);
  o["revision"] = p.revision;
  o["created_at"] = format_rfc3339_ms(p.created_at_ms);
  o["updated_at"] = format_rfc3339_ms(p.updated_at_ms);
  return o;
}

json::object check_json(const sqlite::check_row& c) {
  json::object o;
  o["pr"] = c.pr_url;
  o["name"] = c.name;
  o["commit"] = c.commit_sha;
  o["status"] = to_string(c.status);
  o["url"] = optional_text(c.url);
  o["started_at"] = optional_time(c.started_at_ms);
  o["completed_at"] = optional_time(c.completed_at_ms);
  o["first_seen"] = c.seq;
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

json::object comment_json(const sqlite::comment_row& c) {
  json::object o;
  o["pr"] = c.pr_url;
  o["id"] = c.comment_id;
  o["author"] = optional_text(c.author);
  o["body"] = c.body;
  o["path"] = optional_text(c.path);
  o["line"] = c.line ? json::value(*c.line) : json::value(nullptr);
  o["resolved"] = c.resolved;
  o["updated_at"] = format_rfc3339_ms(c.updated_at_ms);
  return o;
}

result<json::object> pr_view(session_tables& t, const sqlite::pr_row& p) {
  auto checks = t.checks_of_pr(p.url);
  if (!checks) return std::move(checks).error();
  auto comments = t.comments_of_pr(p.url);
  if (!comments) return std::move(comments).error();
  json::object o = pr_json(p);
  json::array ca, ma;
  for (const auto& c : *checks)
    ca.push_back(check_json(c));
  for (const auto& c : *comments)
    ma.push_back(comment_json(c));
  o["checks"] = std::move(ca);
  o["comments"] = std::move(ma);
  return o;
}

// ---- request bodies --------------------------------------------------------------------------

result<body_reader> body_reader::of(const json::value& body, std::vector<std::string_view> known) {
  if (!body.is_object()) return invalid("invalid_body", "the request body must be a JSON object");
  for (const auto& [key, value] : body.as_object()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known)
        list += (list.empty() ? "" : ", ") + std::string(k);
      return invalid("unknown_field",
                     "unknown field '" + std::string(key) + "'; this request accepts: " + list);
    }
  }
  return body_reader(body.as_object());
}

result<std::optional<std::optional<std::string>>> body_reader::text(std::string_view key,
                                                                    bool nullable,
                                                                    std::size_t max_bytes) const {
  auto it = o_.find(key);
  if (it == o_.end()) return std::optional<std::optional<std::string>>();
  if (it->value().is_null() && nullable) {
    return std::optional<std::optional<std::string>>(std::optional<std::string>());
  }
  if (!it->value().is_string()) {
    return invalid("invalid_field", "field '" + std::string(key) + "' must be a string" +
                                        (nullable ? " or null" : ""));
  }
  const auto& s = it->value().as_string();
  if (s.size() > max_bytes) {
    return invalid("invalid_field", "field '" + std::string(key) + "' is longer than " +
                                        std::to_string(max_bytes) + " bytes");
  }
  return std::optional<std::optional<std::string>>(std::string(s));
}

result<std::string> body_reader::required_text(std::string_view key, std::size_t max_bytes) const {
  auto v = text(key, false, max_bytes);
  if (!v) return std::move(v).error();
  if (!*v || !**v || (**v)->empty()) {
    return invalid("missing_field", "field '" + std::string(key) + "' is required");
  }
  return ***v;
}

}  // namespace ordo::sessions
