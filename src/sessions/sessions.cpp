// Sessions: creating, listing and reading them, their typed fields, the lifecycle moves
// (transition, end), the heartbeat, and the snapshot a client starts from.
#include "sessions/session_service.hpp"

#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"
#include "streams/offset.hpp"

namespace ordo::sessions {

namespace {

result<std::string> tags_from(const json::value& v) {
  if (!v.is_array()) return invalid("invalid_field", "field 'tags' must be an array of strings");
  const auto& a = v.as_array();
  if (a.size() > k_max_tags) {
    return invalid("invalid_field", "at most " + std::to_string(k_max_tags) + " tags");
  }
  for (const auto& t : a) {
    if (!t.is_string() || t.as_string().empty() || t.as_string().size() > k_max_tag_bytes) {
      return invalid("invalid_field", "each tag must be a non-empty string of at most " +
                                          std::to_string(k_max_tag_bytes) + " bytes");
    }
  }
  return json::serialize(a);
}

// Applies the typed, optional session fields present in `r` to `s`; records what changed.
status apply_session_fields(const body_reader& r, sqlite::session_row& s, json::object& changes) {
  for (auto [field, target] : {std::pair{"agent_kind", &s.agent_kind}, std::pair{"model", &s.model},
                               std::pair{"title", &s.title}, std::pair{"branch", &s.branch},
                               std::pair{"workspace_path", &s.workspace_path}}) {
    auto v = r.text(field, true, k_max_text_field_bytes);
    if (!v) return std::move(v).error();
    if (*v && **v != *target) {
      *target = **v;
      changes[field] = optional_text(*target);
    }
  }
  if (const json::value* tags = r.raw("tags")) {
    auto t = tags_from(*tags);
    if (!t) return std::move(t).error();
    if (*t != s.tags) {
      s.tags = *t;
      changes["tags"] = parse_stored(s.tags);
    }
  }
  return ok_v;
}

const std::vector<std::string_view> k_session_fields{"agent_kind", "model",          "title",
                                                     "branch",     "workspace_path", "tags"};

}  // namespace

void session_service::create_session(std::string project_id, json::value body,
                                     reply_callback done) {
  run_write(
      engine_,
      [project_id = std::move(project_id), body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto r =
            body_reader::of(body.is_null() ? json::value(json::object()) : body, k_session_fields);
        if (!r) return std::move(r).error();
        auto p = t.project(project_id);
        if (!p) return std::move(p).error();
        if (!*p) return not_found("project", project_id);
        if ((*p)->archived_at_ms) {
          return make_failure(failure_kind::conflict, "project_archived",
                              "project '" + project_id + "' is archived; new sessions are refused");
        }
        sqlite::session_row s;
        s.number = (*p)->next_session_number;
        (*p)->next_session_number = s.number.next();
        if (auto st = t.update_project(**p); !st) return std::move(st).error();
        s.id = session_id(project_id, s.number);
        s.project_id = project_id;
        s.state = session_state::created;
        s.revision = 0;  // commit_session_change makes the first revision 1
        s.created_at_ms = s.updated_at_ms = ctx.now_ms();
        json::object changes;
        if (auto st = apply_session_fields(*r, s, changes); !st) return std::move(st).error();
        auto stream = ctx.create_stream(session_service::events_stream_path(s.id),
                                        std::string(k_events_content_type));
        if (!stream) return std::move(stream).error();
        s.events_stream_id = *stream;
        if (auto st = t.insert_session(s); !st) return std::move(st).error();
        auto inserted = t.session(s.id);
        if (!inserted) return std::move(inserted).error();
        sqlite::session_row& row = **inserted;
        row.revision = 0;
        std::vector<event> events;
        json::object d;
        d["session"] = session_json(row);
        d["session"].as_object()["revision"] = 1;  // the revision this event commits
        events.push_back({"session.created", std::move(d)});
        if (auto st = commit_session_change(ctx, t, row, events); !st) {
          return std::move(st).error();
        }
        return session_reply(t, s.id, reply_kind::created);
      },
      std::move(done));
}

void session_service::list_sessions(session_list_query q, reply_callback done) {
  run_read(
      engine_,
      [q = std::move(q)](storage::read_snapshot&, session_tables& t) -> result<reply> {
        if (q.require_project) {
          auto p = t.project(*q.project_id);
          if (!p) return std::move(p).error();
          if (!*p) return not_found("project", *q.project_id);
        }
        sqlite::session_filter f;
        f.project_id = q.project_id;
        if (q.state) {
          f.state = parse_enum<session_state>(*q.state);
          if (!f.state) {
            return invalid("invalid_state", "state '" + *q.state + "' is not one of " +
                                                joined_names<session_state>());
          }
        }
        if (q.client_state) {
          f.client_state = parse_enum<client_state>(*q.client_state);
          if (!f.client_state) {
            return invalid("invalid_client_state", "client_state '" + *q.client_state +
                                                       "' is not one of " +
                                                       joined_names<client_state>());
          }
        }
        if (q.cursor) {
          try {
            std::size_t used = 0;
            f.before_seq = std::stoll(*q.cursor, &used);
            if (used != q.cursor->size() || *f.before_seq < 1) throw std::invalid_argument("");
          } catch (const std::exception&) {
            return invalid("invalid_cursor",
                           "cursor must be a next_cursor value returned by this list");
          }
        }
        f.limit = q.limit.value_or(k_default_session_page);
        if (f.limit < 1 || f.limit > k_max_session_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_session_page));
        }
        // Pages of the table until `limit` visible sessions are found or the table ends: what
        // the caller may not see leaves no short page and no gap behind.
        json::array a;
        std::optional<std::int64_t> last_seq;
        bool more = false;
        const auto limit = static_cast<std::size_t>(f.limit);
        for (;;) {
          auto rows = t.sessions(f);
          if (!rows) return std::move(rows).error();
          for (const auto& s : *rows) {
            if (a.size() == limit) {
              more = true;
              break;
            }
            if (!q.visible || q.visible(s.project_id, s.id)) a.push_back(session_json(s));
            last_seq = s.seq;
          }
          if (more || rows->size() < limit) break;  // a page is full, or the table ended
          if (a.size() == limit) {
            more = true;  // full, and the table may go on: the next call asks
            break;
          }
          f.before_seq = rows->back().seq;
        }
        json::object o;
        o["sessions"] = std::move(a);
        o["next_cursor"] =
            more && last_seq ? json::value(std::to_string(*last_seq)) : json::value(nullptr);
        return reply{reply_kind::ok, std::move(o), std::nullopt, false};
      },
      std::move(done));
}

void session_service::session_project(
    std::string id, std::function<void(result<std::optional<std::string>>)> done) {
  run_read(
      engine_,
      [id = std::move(id)](storage::read_snapshot&, session_tables& t) -> result<reply> {
        auto s = t.session(id);
        if (!s) return std::move(s).error();
        json::value project = *s ? json::value((*s)->project_id) : json::value(nullptr);
        return reply{reply_kind::ok, std::move(project), std::nullopt, false};
      },
      [done = std::move(done)](result<reply> r) {
        if (!r) return done(std::move(r).error());
        if (r->body.is_null()) return done(std::optional<std::string>());
        done(std::optional<std::string>(std::string(r->body.as_string())));
      });
}

void session_service::get_session(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](storage::read_snapshot&, session_tables& t) {
        return session_reply(t, id, reply_kind::ok);
      },
      std::move(done));
}

void session_service::update_session(std::string id, std::optional<std::int64_t> if_match,
                                     json::value body, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, k_session_fields);
        if (!r) return std::move(r).error();
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              json::object changes;
              if (auto st = apply_session_fields(*r, s, changes); !st) {
                return std::move(st).error();
              }
              if (!changes.empty()) {
                json::object d;
                d["changes"] = std::move(changes);
                events.push_back({"session.updated", std::move(d)});
              }
              return commit_events();
            },
            session_answer(t, reply_kind::ok));
      },
      std::move(done));
}

void session_service::transition(std::string id, std::optional<std::int64_t> if_match,
                                 json::value body, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"to"});
        if (!r) return std::move(r).error();
        auto to_text = r->required_text("to", 32);
        if (!to_text) return std::move(to_text).error();
        auto to = parse_enum<session_state>(*to_text);
        if (!to) {
          return invalid("invalid_state",
                         "'to' must be one of starting, active, suspended, detached, closing");
        }
        if (*to == session_state::ended) {
          return invalid("use_end", "to end a session, POST /v1/sessions/{id}/end with a reason");
        }
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              if (auto st = apply_transition(ctx, t, s, *to, "api", events); !st) {
                return std::move(st).error();
              }
              return commit_events();
            },
            session_answer(t, reply_kind::ok));
      },
      std::move(done));
}

void session_service::end(std::string id, std::optional<std::int64_t> if_match, json::value body,
                          reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match, body = std::move(body)](write_context& ctx,
                                                             session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"reason"});
        if (!r) return std::move(r).error();
        auto reason_text = r->required_text("reason", 32);
        if (!reason_text) return std::move(reason_text).error();
        auto reason = parse_enum<end_reason>(*reason_text);
        if (!reason) {
          return invalid("invalid_end_reason",
                         "'reason' must be one of " + joined_names<end_reason>());
        }
        // Ending an ended session with the same reason is a retry: answer what is stored,
        // before If-Match (the retry carries the revision the first attempt changed).
        auto current = t.session(id);
        if (!current) return std::move(current).error();
        if (*current && (*current)->state == session_state::ended) {
          if ((*current)->end_reason != *reason) return session_ended(**current);
          auto reply_value = session_reply(t, id, reply_kind::ok);
          if (reply_value) reply_value->replayed = true;
          return reply_value;
        }
        // An ended session was answered above.
        return mutate_session(
            ctx, t, id, if_match, when_ended::mutation_decides,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              if (auto st = apply_end(ctx, t, s, *reason, "api", events); !st) {
                return std::move(st).error();
              }
              return commit_events();
            },
            session_answer(t, reply_kind::ok));
      },
      std::move(done));
}

void session_service::heartbeat(std::string id, reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id)](write_context& ctx, session_tables& t) -> result<reply> {
        return mutate_session(
            ctx, t, id, std::nullopt, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              // A heartbeat is a liveness signal, not a change: it bumps no revision and emits
              // no event, unless it brings a detached session back.
              s.last_heartbeat_ms = ctx.now_ms();
              if (s.state == session_state::detached) {
                if (auto st =
                        apply_transition(ctx, t, s, session_state::active, "heartbeat", events);
                    !st) {
                  return std::move(st).error();
                }
              }
              // Without events the commit stores nothing: store the heartbeat alone.
              if (events.empty()) {
                if (auto st = t.update_session(s); !st) return std::move(st).error();
              }
              return commit_events();
            },
            session_answer(t, reply_kind::ok));
      },
      std::move(done));
}

void session_service::snapshot(std::string id, std::optional<int> row_limit, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), row_limit](storage::read_snapshot& ctx,
                                      session_tables& t) -> result<reply> {
        std::uint64_t epoch = ctx.database_epoch;
        int limit = row_limit.value_or(k_default_snapshot_rows);
        if (limit < 0 || limit > k_max_row_page) {
          return invalid("invalid_rows",
                         "rows must be between 0 and " + std::to_string(k_max_row_page));
        }
        // The state, the rows, the commands and the event offset agree: the task runs in one
        // snapshot (read_with()).
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        sqlite::row_page_query q;
        q.limit = limit + 1;
        q.newest_first = true;
        auto rows = t.rows(id, q);
        if (!rows) return std::move(rows).error();
        bool more = static_cast<int>(rows->size()) > limit;
        if (more) rows->pop_back();
        auto pending = t.pending_commands(id);
        if (!pending) return std::move(pending).error();
        auto tail = t.stream_tail(s->events_stream_id);
        if (!tail) return std::move(tail).error();
        auto incarnation = t.stream_incarnation(s->events_stream_id);
        if (!incarnation) return std::move(incarnation).error();

        json::array row_array;
        for (auto it = rows->rbegin(); it != rows->rend(); ++it)
          row_array.push_back(row_json(*it));
        json::array command_array;
        for (const auto& c : *pending)
          command_array.push_back(command_json(c));
        json::object o;
        o["session"] = session_json(*s);
        o["rows"] = std::move(row_array);
        // Page backwards from here (before=) for older rows; null when there are none.
        o["rows_before"] = !more           ? json::value(nullptr)
                           : rows->empty() ? json::value(s->next_row_seq)
                                           : json::value(rows->back().seq);
        o["pending_commands"] = std::move(command_array);
        o["events_offset"] = format_offset(
            {offset_prefix_for(epoch, static_cast<std::uint64_t>(*incarnation)), *tail});
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
