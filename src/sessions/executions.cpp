// Executions: the agent's runs within a session, one active at a time, each with a
// generation from the session row's counter; starting, finishing (or aborting), listing.
#include "sessions/session_service.hpp"

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

using sqlite::finish_reason;

void session_service::start_execution(std::string id, std::optional<std::int64_t> if_match,
                                      reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), if_match](write_context& ctx, session_tables& t) -> result<reply> {
        std::optional<sqlite::execution_row> started;
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              if (s.state == session_state::closing) {
                return make_failure(failure_kind::conflict, "session_closing",
                                    "session '" + id + "' is closing; no new executions start");
              }
              if (s.active_generation) {
                failure f = make_failure(failure_kind::conflict, "execution_active",
                                         "execution " + std::to_string(*s.active_generation) +
                                             " is still active; finish or abort it first");
                f.with("active_generation", std::to_string(*s.active_generation));
                return f;
              }
              started = sqlite::execution_row{id, s.next_generation, ctx.now_ms(), std::nullopt,
                                              std::nullopt};
              s.next_generation += 1;
              if (auto st = t.insert_execution(*started); !st) return std::move(st).error();
              json::object d;
              d["generation"] = started->generation;
              events.push_back({"execution.started", std::move(d)});
              return commit_events();
            },
            [&](const sqlite::session_row& s) -> result<reply> {
              return reply{reply_kind::created, execution_json(*started), s.revision, false};
            });
      },
      std::move(done));
}

void session_service::finish_execution(std::string id, std::int64_t generation, bool abort,
                                       std::optional<std::int64_t> if_match, json::value body,
                                       reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), generation, abort, if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        finish_reason reason = abort ? finish_reason::aborted : finish_reason::completed;
        std::vector<std::string_view> fields;
        if (!abort) fields.push_back("outcome");
        auto r = body_reader::of(body.is_null() ? json::value(json::object()) : body, fields);
        if (!r) return std::move(r).error();
        if (!abort) {
          auto outcome = r->text("outcome", false, 32);
          if (!outcome) return std::move(outcome).error();
          if (*outcome && **outcome) {
            // What the agent says of its own run: the other reasons are a client's or the
            // server's to give.
            auto given = parse_enum<finish_reason>(***outcome);
            if (given != finish_reason::completed && given != finish_reason::failed) {
              return invalid("invalid_outcome", "'outcome' must be completed or failed");
            }
            reason = *given;
          }
        }
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              auto e = t.execution(id, generation);
              if (!e) return std::move(e).error();
              if (!*e || (*e)->finished_at_ms) {
                failure f = make_failure(
                    failure_kind::conflict, "stale_generation",
                    "execution " + std::to_string(generation) +
                        (*e ? " has already finished" : " does not exist") +
                        (s.active_generation
                             ? "; the active execution is " + std::to_string(*s.active_generation)
                             : "; no execution is active"));
                f.with("active_generation", s.active_generation
                                                ? std::to_string(*s.active_generation)
                                                : std::string("null"));
                return f;
              }
              if (auto st = t.finish_execution(id, generation, ctx.now_ms(), reason); !st) {
                return std::move(st).error();
              }
              json::object d;
              d["generation"] = generation;
              d["reason"] = to_string(reason);
              events.push_back({"execution.finished", std::move(d)});
              return commit_events();
            },
            [&](const sqlite::session_row& s) -> result<reply> {
              auto finished = t.execution(id, generation);
              if (!finished) return std::move(finished).error();
              return reply{reply_kind::ok, execution_json(**finished), s.revision, false};
            });
      },
      std::move(done));
}

void session_service::list_executions(std::string id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id)](storage::read_snapshot&, session_tables& t) -> result<reply> {
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        auto executions = t.executions(id);
        if (!executions) return std::move(executions).error();
        json::array a;
        for (const auto& e : *executions)
          a.push_back(execution_json(e));
        json::object o;
        o["executions"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
