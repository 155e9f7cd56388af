// Commands: what a client asks the agent to do, accepted once per Idempotency-Key with a
// sequence from the session row's counter; the agent's acknowledgements move them on.
#include "sessions/session_service.hpp"

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

namespace {

result<std::int64_t> parse_command_seq(std::string_view session_id, std::string_view command) {
  std::string prefix = std::string(session_id) + std::string(k_command_id_infix);
  if (command.substr(0, prefix.size()) != prefix) return not_found("command", command);
  std::string_view digits = command.substr(prefix.size());
  if (digits.empty() || digits.size() > 18) return not_found("command", command);
  std::int64_t seq = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return not_found("command", command);
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

}  // namespace

void session_service::send_command(std::string id, std::optional<std::int64_t> if_match,
                                   std::string key, json::value body, reply_callback done) {
  std::string canonical = canonical_json(body);
  std::size_t bytes = canonical.size();
  run_write(
      engine_,
      [id = std::move(id), if_match, key = std::move(key), canonical = std::move(canonical),
       body = std::move(body)](write_context& ctx, session_tables& t) -> result<reply> {
        if (!body.is_object()) {
          return invalid("invalid_body", "a command must be a JSON object");
        }
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        // A retry with the same key is answered from what was stored, before any other check.
        auto existing = t.command_by_request(id, key);
        if (!existing) return std::move(existing).error();
        if (*existing) {
          if ((*existing)->body != canonical) {
            return make_failure(failure_kind::conflict, "idempotency_key_reused",
                                "Idempotency-Key '" + key +
                                    "' was already used for a different command in this "
                                    "session; use a new key for a new command");
          }
          return reply{reply_kind::accepted, command_json(**existing), s->revision, true};
        }
        std::optional<sqlite::command_row> accepted;
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& row, std::vector<event>& events) -> mutation_result {
              accepted = sqlite::command_row{id,
                                             row.next_command_seq,
                                             key,
                                             canonical,
                                             command_status::accepted,
                                             std::nullopt,
                                             ctx.now_ms(),
                                             ctx.now_ms()};
              row.next_command_seq += 1;
              if (auto st = t.insert_command(*accepted); !st) return std::move(st).error();
              json::object d;
              d["command"] = command_json(*accepted);
              events.push_back({"command.accepted", std::move(d)});
              return commit_events();
            },
            [&](const sqlite::session_row& row) -> result<reply> {
              return reply{reply_kind::accepted, command_json(*accepted), row.revision, false};
            });
      },
      std::move(done), bytes);
}

void session_service::update_command(std::string id, std::string command,
                                     std::optional<std::int64_t> if_match, json::value body,
                                     reply_callback done) {
  run_write(
      engine_,
      [id = std::move(id), command = std::move(command), if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        auto r = body_reader::of(body, {"status", "result"});
        if (!r) return std::move(r).error();
        auto status_text = r->required_text("status", 32);
        if (!status_text) return std::move(status_text).error();
        std::optional<command_status> parsed = parse_enum<command_status>(*status_text);
        if (!parsed || !is_acknowledgement(*parsed)) {
          return invalid("invalid_command_status",
                         "'status' must be delivered, done or failed (the agent's "
                         "acknowledgements)");
        }
        const command_status to = *parsed;
        std::optional<std::string> result_json;
        if (const json::value* v = r->raw("result")) result_json = json::serialize(*v);
        auto seq = parse_command_seq(id, command);
        if (!seq) return std::move(seq).error();
        std::optional<sqlite::command_row> updated;
        return mutate_session(
            ctx, t, id, if_match, when_ended::mutation_decides,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              auto c = t.command(id, *seq);
              if (!c) return std::move(c).error();
              if (!*c) return not_found("command", command);
              const command_status from = (*c)->status;
              // A repeated acknowledgement is a retry, even after the session ended.
              if (from == to) {
                return answer_now(reply{reply_kind::ok, command_json(**c), s.revision, true});
              }
              if (s.state == session_state::ended) return session_ended(s);
              // The command lifecycle (lifecycle.hpp): final statuses never run again.
              if (!transition_allowed(from, to)) {
                const std::string from_text(to_string(from));
                const std::string to_text(to_string(to));
                failure f = make_failure(
                    failure_kind::conflict, "illegal_command_transition",
                    "command " + command + " is " + from_text + " and cannot become " + to_text);
                f.with("from", "\"" + from_text + "\"");
                f.with("to", "\"" + to_text + "\"");
                return f;
              }
              if (auto st = t.update_command_status(id, *seq, to, result_json, ctx.now_ms()); !st) {
                return std::move(st).error();
              }
              auto stored = t.command(id, *seq);
              if (!stored) return std::move(stored).error();
              updated = **stored;
              json::object d;
              d["command"] = command_json(*updated);
              events.push_back({"command.updated", std::move(d)});
              return commit_events();
            },
            [&](const sqlite::session_row& s) -> result<reply> {
              return reply{reply_kind::ok, command_json(*updated), s.revision, false};
            });
      },
      std::move(done));
}

void session_service::get_command(std::string id, std::string command, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), command = std::move(command)](storage::read_snapshot&,
                                                         session_tables& t) -> result<reply> {
        return session_item_reply(
            t, id, "command", command,
            [&]() -> result<std::optional<sqlite::command_row>> {
              auto seq = parse_command_seq(id, command);
              if (!seq) return std::move(seq).error();
              return t.command(id, *seq);
            },
            command_json);
      },
      std::move(done));
}

void session_service::list_commands(std::string id, std::optional<std::string> status_filter,
                                    std::optional<std::int64_t> after, std::optional<int> limit,
                                    reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), status_filter, after, limit](storage::read_snapshot&,
                                                        session_tables& t) -> result<reply> {
        if (status_filter && *status_filter != "pending") {
          return invalid("invalid_status_filter", "status may only be 'pending'");
        }
        int n = limit.value_or(k_default_row_page);
        if (n < 1 || n > k_max_row_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_row_page));
        }
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        auto rows = t.commands(id, after.value_or(0), n, status_filter.has_value());
        if (!rows) return std::move(rows).error();
        json::array a;
        for (const auto& c : *rows)
          a.push_back(command_json(c));
        json::object o;
        o["commands"] = std::move(a);
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
