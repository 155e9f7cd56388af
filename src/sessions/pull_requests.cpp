// Pull requests: what an SCM poller observed of a session's PRs (facts, checks per commit,
// the comment set) recorded in one transaction; a merge can end the session; the CI brake
// reads the checks for a check failing on every latest commit.
#include "sessions/session_service.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/rfc3339.hpp"
#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

namespace {

using sqlite::check_status;
using sqlite::ci_state;
using sqlite::mergeability;
using sqlite::pr_state;
using sqlite::review_decision;

constexpr std::size_t k_max_url_bytes = 2048;
constexpr std::size_t k_max_comment_bytes = 65536;

// An enumerated field of `object`; absent, `fallback` if there is one.
template <named_enum E>
result<E> enum_field(const body_reader& r, std::string_view object, std::string_view field,
                     std::optional<E> fallback) {
  auto v = r.text(field, false, 64);
  if (!v) return std::move(v).error();
  if (!*v || !**v) {
    if (fallback) return *fallback;
    return invalid("missing_field",
                   "field '" + std::string(object) + "." + std::string(field) + "' is required");
  }
  const std::string& text = ***v;
  std::optional<E> value = parse_enum<E>(text);
  if (!value) {
    return invalid("invalid_enum", "field '" + std::string(object) + "." + std::string(field) +
                                       "' is '" + text + "'; allowed: " + joined_names<E>());
  }
  return *value;
}

result<std::optional<std::int64_t>> time_field(const body_reader& r, std::string_view object,
                                               std::string_view field) {
  auto v = r.text(field, true, 64);
  if (!v) return std::move(v).error();
  if (!*v || !**v) return std::optional<std::int64_t>();
  auto ms = parse_rfc3339_ms(***v);
  if (!ms) {
    return invalid("invalid_field", "field '" + std::string(object) + "." + std::string(field) +
                                        "' must be an RFC 3339 timestamp");
  }
  return std::optional<std::int64_t>(*ms);
}

result<std::optional<std::int64_t>> integer_field(const body_reader& r, std::string_view object,
                                                  std::string_view field) {
  const json::value* v = r.raw(field);
  if (!v || v->is_null()) return std::optional<std::int64_t>();
  // Integers up to 2^53-1 only: every JSON client (JavaScript included) reads them exactly.
  constexpr std::int64_t k_max = 9007199254740991;
  if (!v->is_int64() || v->as_int64() < 0 || v->as_int64() > k_max) {
    return invalid("invalid_field", "field '" + std::string(object) + "." + std::string(field) +
                                        "' must be an integer from 0 to 2^53-1");
  }
  return std::optional<std::int64_t>(v->as_int64());
}

struct observation {
  sqlite::pr_row pr;  // facts only (url .. head_commit)
  std::vector<sqlite::check_row> checks;
  std::optional<std::vector<sqlite::comment_row>> comments;  // nullopt: leave comments alone
};

result<observation> parse_observation(const json::value& body) {
  auto top = body_reader::of(body, {"pr", "checks", "comments"});
  if (!top) return std::move(top).error();
  const json::value* pr_value = top->raw("pr");
  if (!pr_value) return invalid("missing_field", "field 'pr' is required");
  auto pr = body_reader::of(*pr_value, {"url", "number", "title", "state", "review_decision",
                                        "mergeability", "ci_state", "head_commit"});
  if (!pr) return std::move(pr).error();
  observation o;
  auto url = pr->required_text("url", k_max_url_bytes);
  if (!url) return std::move(url).error();
  o.pr.url = *url;
  auto number = integer_field(*pr, "pr", "number");
  if (!number) return std::move(number).error();
  o.pr.number = *number;
  auto title = pr->text("title", true, k_max_text_field_bytes);
  if (!title) return std::move(title).error();
  if (*title) o.pr.title = **title;
  auto head = pr->text("head_commit", true, 128);
  if (!head) return std::move(head).error();
  if (*head) o.pr.head_commit = **head;
  auto state = enum_field<pr_state>(*pr, "pr", "state", std::nullopt);
  if (!state) return std::move(state).error();
  o.pr.state = *state;
  auto review = enum_field<review_decision>(*pr, "pr", "review_decision", review_decision::none);
  if (!review) return std::move(review).error();
  o.pr.review_decision = *review;
  auto merge = enum_field<mergeability>(*pr, "pr", "mergeability", mergeability::unknown);
  if (!merge) return std::move(merge).error();
  o.pr.mergeability = *merge;
  auto ci = enum_field<ci_state>(*pr, "pr", "ci_state", ci_state::none);
  if (!ci) return std::move(ci).error();
  o.pr.ci_state = *ci;

  if (const json::value* checks = top->raw("checks")) {
    if (!checks->is_array()) return invalid("invalid_field", "field 'checks' must be an array");
    std::vector<std::pair<std::string, std::string>> seen;
    for (const json::value& c : checks->as_array()) {
      auto r =
          body_reader::of(c, {"name", "commit", "status", "url", "started_at", "completed_at"});
      if (!r) return std::move(r).error();
      sqlite::check_row row;
      row.pr_url = o.pr.url;
      auto name = r->required_text("name", 256);
      if (!name) return std::move(name).error();
      auto commit = r->required_text("commit", 128);
      if (!commit) return std::move(commit).error();
      auto status = enum_field<check_status>(*r, "checks[]", "status", std::nullopt);
      if (!status) return std::move(status).error();
      auto link = r->text("url", true, k_max_url_bytes);
      if (!link) return std::move(link).error();
      auto started = time_field(*r, "checks[]", "started_at");
      if (!started) return std::move(started).error();
      auto completed = time_field(*r, "checks[]", "completed_at");
      if (!completed) return std::move(completed).error();
      std::pair<std::string, std::string> key{*name, *commit};
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return invalid("duplicate_check", "check '" + *name + "' on commit '" + *commit +
                                              "' appears twice in one observation");
      }
      seen.push_back(key);
      row.name = *name;
      row.commit_sha = *commit;
      row.status = *status;
      if (*link) row.url = **link;
      row.started_at_ms = *started;
      row.completed_at_ms = *completed;
      o.checks.push_back(std::move(row));
    }
  }

  if (const json::value* comments = top->raw("comments")) {
    if (!comments->is_array()) return invalid("invalid_field", "field 'comments' must be an array");
    std::vector<sqlite::comment_row> rows;
    for (const json::value& c : comments->as_array()) {
      auto r = body_reader::of(c, {"id", "author", "body", "path", "line", "resolved"});
      if (!r) return std::move(r).error();
      sqlite::comment_row row;
      row.pr_url = o.pr.url;
      auto id = r->required_text("id", k_max_id_bytes);
      if (!id) return std::move(id).error();
      auto author = r->text("author", true, 256);
      if (!author) return std::move(author).error();
      auto text = r->text("body", false, k_max_comment_bytes);
      if (!text) return std::move(text).error();
      if (!*text) return invalid("missing_field", "field 'comments[].body' is required");
      auto path = r->text("path", true, k_max_text_field_bytes);
      if (!path) return std::move(path).error();
      auto line = integer_field(*r, "comments[]", "line");
      if (!line) return std::move(line).error();
      const json::value* resolved = r->raw("resolved");
      if (resolved && !resolved->is_bool() && !resolved->is_null()) {
        return invalid("invalid_field", "field 'comments[].resolved' must be true or false");
      }
      for (const auto& other : rows) {
        if (other.comment_id == *id) {
          return invalid("duplicate_comment",
                         "comment '" + *id + "' appears twice in one observation");
        }
      }
      row.comment_id = *id;
      if (*author) row.author = **author;
      row.body = ***text;
      if (*path) row.path = **path;
      row.line = *line;
      row.resolved = resolved && resolved->is_bool() && resolved->as_bool();
      rows.push_back(std::move(row));
    }
    o.comments = std::move(rows);
  }
  return o;
}

bool check_failed(check_status status) {
  return status == check_status::failure || status == check_status::timed_out;
}

}  // namespace

void session_service::observe_pr(std::string id, std::optional<std::int64_t> if_match,
                                 json::value body, reply_callback done) {
  std::size_t bytes = json::serialize(body).size();
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body), end_on_merge = options_.end_on_merge](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto o = parse_observation(body);
        if (!o) return std::move(o).error();
        // For the reply: whether the PR was tracked before, and whether anything changed.
        std::string url = o->pr.url;
        bool tracked = false;
        bool unchanged = false;
        return mutate_session(
            ctx, t, id, if_match, when_ended::mutation_decides,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              // An ended session takes no change, but a poller re-sending what it saw (say the
              // observation that merged the PR, whose answer was lost) is answered as a replay.
              const bool was_ended = s.state == session_state::ended;

              // The PR's facts, upserted by URL.
              auto existing = t.pr(o->pr.url);
              if (!existing) return std::move(existing).error();
              tracked = existing->has_value();
              sqlite::pr_row pr;
              bool merged_now = false;
              if (*existing) {
                pr = **existing;
                if (pr.session_id != id) {
                  if (was_ended) return session_ended(s);
                  return make_failure(failure_kind::conflict, "pr_belongs_to_another_session",
                                      "PR " + pr.url + " is tracked by session " + pr.session_id);
                }
                json::object changes;
                auto update = [&](auto& field, const auto& value, const char* name, json::value v) {
                  if (field != value) {
                    field = value;
                    changes[name] = std::move(v);
                  }
                };
                const sqlite::pr_row& n = o->pr;
                update(pr.number, n.number, "number", n.number ? json::value(*n.number) : nullptr);
                update(pr.title, n.title, "title", optional_text(n.title));
                merged_now = pr.state != pr_state::merged && n.state == pr_state::merged;
                update(pr.state, n.state, "state", json::value(to_string(n.state)));
                update(pr.review_decision, n.review_decision, "review_decision",
                       json::value(to_string(n.review_decision)));
                update(pr.mergeability, n.mergeability, "mergeability",
                       json::value(to_string(n.mergeability)));
                update(pr.ci_state, n.ci_state, "ci_state", json::value(to_string(n.ci_state)));
                update(pr.head_commit, n.head_commit, "head_commit", optional_text(n.head_commit));
                if (!changes.empty()) {
                  pr.revision += 1;
                  pr.updated_at_ms = ctx.now_ms();
                  json::object d;
                  d["pr"] = pr_json(pr);
                  d["changes"] = std::move(changes);
                  events.push_back({"pr.updated", std::move(d)});
                }
              } else {
                pr = o->pr;
                pr.session_id = id;
                pr.created_at_ms = pr.updated_at_ms = ctx.now_ms();
                merged_now = pr.state == pr_state::merged;
                if (auto st = t.insert_pr(pr); !st) return std::move(st).error();
                json::object d;
                d["pr"] = pr_json(pr);
                events.push_back({"pr.created", std::move(d)});
              }

              // Checks: history, one row per check per commit; a change on the same commit
              // updates its row.
              for (auto& c : o->checks) {
                auto known = t.check(pr.url, c.name, c.commit_sha);
                if (!known) return std::move(known).error();
                if (!*known) {
                  c.seq = pr.next_check_seq++;
                  c.created_at_ms = c.updated_at_ms = ctx.now_ms();
                  if (auto st = t.insert_check(c); !st) return std::move(st).error();
                  json::object d;
                  d["check"] = check_json(c);
                  events.push_back({"check.created", std::move(d)});
                  continue;
                }
                sqlite::check_row k = **known;
                if (k.status == c.status && k.url == c.url && k.started_at_ms == c.started_at_ms &&
                    k.completed_at_ms == c.completed_at_ms) {
                  continue;  // seen before, unchanged
                }
                check_status previous = k.status;
                k.status = c.status;
                k.url = c.url;
                k.started_at_ms = c.started_at_ms;
                k.completed_at_ms = c.completed_at_ms;
                k.updated_at_ms = ctx.now_ms();
                if (auto st = t.update_check(k); !st) return std::move(st).error();
                json::object d;
                d["check"] = check_json(k);
                d["previous_status"] = to_string(previous);
                events.push_back({"check.updated", std::move(d)});
              }
              if (auto st = ctx.checkpoint("pr.observation.checks_written"); !st) {
                return std::move(st).error();
              }

              // Comments: reconciled as a set.
              if (o->comments) {
                auto current = t.comments_of_pr(pr.url);
                if (!current) return std::move(current).error();
                for (auto& c : *o->comments) {
                  auto it = std::find_if(current->begin(), current->end(), [&](const auto& x) {
                    return x.comment_id == c.comment_id;
                  });
                  if (it == current->end()) {
                    c.created_at_ms = c.updated_at_ms = ctx.now_ms();
                    if (auto st = t.insert_comment(c); !st) return std::move(st).error();
                    json::object d;
                    d["comment"] = comment_json(c);
                    events.push_back({"comment.created", std::move(d)});
                    continue;
                  }
                  bool content_changed = it->author != c.author || it->body != c.body ||
                                         it->path != c.path || it->line != c.line;
                  bool resolved_now = !it->resolved && c.resolved;
                  if (!content_changed && it->resolved == c.resolved) continue;
                  c.created_at_ms = it->created_at_ms;
                  c.updated_at_ms = ctx.now_ms();
                  if (auto st = t.update_comment(c); !st) return std::move(st).error();
                  json::object d;
                  d["comment"] = comment_json(c);
                  events.push_back(
                      {!content_changed && resolved_now ? "comment.resolved" : "comment.updated",
                       std::move(d)});
                }
                for (const auto& old : *current) {
                  bool still =
                      std::any_of(o->comments->begin(), o->comments->end(),
                                  [&](const auto& x) { return x.comment_id == old.comment_id; });
                  if (still) continue;
                  if (auto st = t.delete_comment(pr.url, old.comment_id); !st) {
                    return std::move(st).error();
                  }
                  json::object d;
                  d["comment"] = comment_json(old);
                  events.push_back({"comment.removed", std::move(d)});
                }
              }
              // The PR row carries the check counter even when its facts did not change.
              if (*existing || !o->checks.empty()) {
                if (auto st = t.update_pr(pr); !st) return std::move(st).error();
              }

              if (was_ended) {
                if (!events.empty()) return session_ended(s);  // rolls back everything above
                auto stored = t.pr(pr.url);
                if (!stored) return std::move(stored).error();
                auto view = pr_view(t, **stored);
                if (!view) return std::move(view).error();
                return answer_now(reply{reply_kind::ok, std::move(*view), s.revision, true});
              }
              if (merged_now && end_on_merge) {
                if (auto st = apply_end(ctx, t, s, end_reason::pr_merged, "pr_merged", events);
                    !st) {
                  return std::move(st).error();
                }
              }
              unchanged = events.empty();
              return commit_events();
            },
            [&](const sqlite::session_row& s) -> result<reply> {
              auto fresh = t.pr(url);
              if (!fresh) return std::move(fresh).error();
              auto view = pr_view(t, **fresh);
              if (!view) return std::move(view).error();
              return reply{tracked ? reply_kind::ok : reply_kind::created, std::move(*view),
                           s.revision, unchanged};
            });
      },
      std::move(done), bytes);
}

void session_service::list_prs(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](storage::read_snapshot&, session_tables& t) -> result<reply> {
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        auto prs = t.prs_of_session(id);
        if (!prs) return std::move(prs).error();
        json::array a;
        for (const auto& p : *prs) {
          auto view = pr_view(t, p);
          if (!view) return std::move(view).error();
          a.push_back(std::move(*view));
        }
        json::object o;
        o["prs"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

void session_service::ci_brake(std::string id, std::optional<int> commits, reply_callback done) {
  int n = commits.value_or(options_.ci_brake_commits);
  run_read(
      engine_,
      [id = std::move(id), n](storage::read_snapshot&, session_tables& t) -> result<reply> {
        if (n < 1 || n > 100)
          return invalid("invalid_commits", "commits must be between 1 and 100");
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        auto prs = t.prs_of_session(id);
        if (!prs) return std::move(prs).error();
        json::object o;
        o["commits"] = n;
        o["brake"] = false;
        o["pr"] = nullptr;
        o["check"] = nullptr;
        o["evidence"] = json::array();
        for (const auto& p : *prs) {
          auto checks = t.checks_of_pr(p.url);
          if (!checks) return std::move(checks).error();
          // Distinct commits, most recent first (by when a check on them was first seen).
          std::vector<std::pair<std::int64_t, std::string>> first_seen;
          for (const auto& c : *checks) {
            auto it = std::find_if(first_seen.begin(), first_seen.end(),
                                   [&](const auto& e) { return e.second == c.commit_sha; });
            if (it == first_seen.end()) first_seen.emplace_back(c.seq, c.commit_sha);
          }
          std::sort(first_seen.begin(), first_seen.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
          if (static_cast<int>(first_seen.size()) < n) continue;
          first_seen.resize(static_cast<std::size_t>(n));
          // A check that failed on every one of those commits.
          std::vector<std::string> names;
          for (const auto& c : *checks) {
            if (std::find(names.begin(), names.end(), c.name) == names.end())
              names.push_back(c.name);
          }
          for (const auto& name : names) {
            json::array evidence;
            bool all_failed = true;
            for (const auto& seen : first_seen) {
              const auto& commit = seen.second;  // clang 14 captures no structured binding
              auto it = std::find_if(checks->begin(), checks->end(), [&](const auto& c) {
                return c.name == name && c.commit_sha == commit;
              });
              if (it == checks->end() || !check_failed(it->status)) {
                all_failed = false;
                break;
              }
              evidence.push_back(check_json(*it));
            }
            if (all_failed) {
              o["brake"] = true;
              o["pr"] = p.url;
              o["check"] = name;
              o["evidence"] = std::move(evidence);
              return reply{reply_kind::ok, std::move(o), s->revision, false};
            }
          }
        }
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
