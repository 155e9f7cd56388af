// Transcript rows: the ordered record of a session (messages, tool calls, approvals), each
// with a sequence from the session row's counter; appended once per Idempotency-Key, or
// upserted by row id.
#include "sessions/session_service.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/utf8.hpp"
#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

namespace {

using sqlite::row_kind;
using sqlite::row_status;

struct row_fields {
  std::optional<std::string> row_id;
  std::optional<row_kind> kind;
  std::optional<row_status> status;
  std::optional<std::string> body;            // as sent (serialized)
  std::optional<std::string> body_canonical;  // for telling a change from a repetition
};

result<row_fields> read_row_fields(const json::value& body, bool allow_row_id) {
  std::vector<std::string_view> known{"kind", "status", "body"};
  if (allow_row_id) known.push_back("row_id");
  auto r = body_reader::of(body, known);
  if (!r) return std::move(r).error();
  row_fields f;
  if (allow_row_id) {
    auto id = r->text("row_id", false, k_max_id_bytes);
    if (!id) return std::move(id).error();
    if (*id) f.row_id = **id;
  }
  auto kind = r->text("kind", false, 32);
  if (!kind) return std::move(kind).error();
  if (*kind) {
    f.kind = parse_enum<row_kind>(***kind);
    if (!f.kind) {
      return invalid("invalid_row_kind", "'kind' must be one of " + joined_names<row_kind>());
    }
  }
  auto status = r->text("status", false, 32);
  if (!status) return std::move(status).error();
  if (*status) {
    f.status = parse_enum<row_status>(***status);
    if (!f.status) {
      return invalid("invalid_row_status", "'status' must be one of " + joined_names<row_status>());
    }
  }
  if (const json::value* b = r->raw("body")) {
    f.body = json::serialize(*b);
    f.body_canonical = canonical_json(*b);
  }
  return f;
}

// Rows appended without a row_id get "seq-{sequence}"; clients may not use that form, so a
// generated id never collides with one a client chose.
std::string generated_row_id(std::int64_t seq) {
  return "seq-" + std::to_string(seq);
}

bool is_generated_row_id(std::string_view id) {
  if (id.substr(0, 4) != "seq-" || id.size() == 4) return false;
  return std::all_of(id.begin() + 4, id.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_row_id(std::string_view id) {
  if (id.empty() || id.size() > k_max_id_bytes) return false;
  for (unsigned char c : id) {
    if (c <= 0x20 || c == '/' || c == '?' || c == '#' || c == '%' || c == 0x7f) return false;
  }
  // Row ids are echoed in JSON (rows, events): a percent-decoded path may hold any byte.
  return is_valid_utf8(id);
}

}  // namespace

void session_service::append_row(std::string id, std::optional<std::int64_t> if_match,
                                 std::optional<std::string> key, json::value body,
                                 reply_callback done) {
  std::string canonical = canonical_json(body);
  std::size_t bytes = canonical.size();
  run_write(
      engine_,
      [id = std::move(id), if_match, key = std::move(key), canonical = std::move(canonical),
       body = std::move(body)](write_context& ctx, session_tables& t) -> result<reply> {
        auto f = read_row_fields(body, true);
        if (!f) return std::move(f).error();
        if (!f->kind) return invalid("missing_field", "field 'kind' is required");
        if (!f->body) return invalid("missing_field", "field 'body' is required");
        if (f->row_id && !valid_row_id(*f->row_id)) {
          return invalid("invalid_row_id",
                         "row_id must be 1-128 bytes of printable UTF-8 without "
                         "spaces, '/', '?', '#' or '%'");
        }
        if (f->row_id && is_generated_row_id(*f->row_id)) {
          return invalid("invalid_row_id",
                         "row ids of the form seq-{number} are reserved for rows appended "
                         "without a row_id");
        }
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        if (key) {
          auto existing = t.row_by_request(id, *key);
          if (!existing) return std::move(existing).error();
          if (*existing) {
            if ((*existing)->request_body != canonical) {
              return make_failure(failure_kind::conflict, "idempotency_key_reused",
                                  "Idempotency-Key '" + *key +
                                      "' was already used for a different row in this session");
            }
            return reply{reply_kind::created, row_json(**existing), s->revision, true};
          }
        }
        sqlite::transcript_row r;
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& row, std::vector<event>& events) -> mutation_result {
              r.session_id = id;
              r.seq = row.next_row_seq;
              row.next_row_seq += 1;
              r.row_id = f->row_id ? *f->row_id : generated_row_id(r.seq);
              auto clash = t.row_by_id(id, r.row_id);
              if (!clash) return std::move(clash).error();
              if (*clash) {
                return make_failure(failure_kind::conflict, "row_exists",
                                    "row '" + r.row_id + "' already exists; PUT /rows/" + r.row_id +
                                        " updates it in place");
              }
              r.kind = *f->kind;
              r.status = f->status.value_or(row_status::complete);
              r.body = *f->body;
              r.request_id = key;
              if (key) r.request_body = canonical;
              r.created_at_ms = r.updated_at_ms = ctx.now_ms();
              if (auto st = t.insert_row(r); !st) return std::move(st).error();
              json::object d;
              d["row"] = row_json(r);
              events.push_back({"row.appended", std::move(d)});
              return commit_events();
            },
            [&](const sqlite::session_row& row) -> result<reply> {
              return reply{reply_kind::created, row_json(r), row.revision, false};
            });
      },
      std::move(done), bytes);
}

void session_service::upsert_row(std::string id, std::string row_id,
                                 std::optional<std::int64_t> if_match, json::value body,
                                 reply_callback done) {
  std::size_t bytes = json::serialize(body).size();
  run_write(
      engine_,
      [id = std::move(id), row_id = std::move(row_id), if_match, body = std::move(body)](
          write_context& ctx, session_tables& t) -> result<reply> {
        if (!valid_row_id(row_id)) {
          return invalid("invalid_row_id",
                         "row_id must be 1-128 bytes of printable UTF-8 without "
                         "spaces, '/', '?', '#' or '%'");
        }
        auto f = read_row_fields(body, false);
        if (!f) return std::move(f).error();
        sqlite::transcript_row r;
        reply_kind kind = reply_kind::ok;
        return mutate_session(
            ctx, t, id, if_match, when_ended::refuse,
            [&](sqlite::session_row& s, std::vector<event>& events) -> mutation_result {
              auto existing = t.row_by_id(id, row_id);
              if (!existing) return std::move(existing).error();
              if (*existing) {
                r = **existing;
                bool changed = false;
                if (f->kind && *f->kind != r.kind) r.kind = *f->kind, changed = true;
                if (f->status && *f->status != r.status) r.status = *f->status, changed = true;
                // Member order and formatting are not a change.
                if (f->body && *f->body_canonical != canonical_json(parse_stored(r.body))) {
                  r.body = *f->body;
                  changed = true;
                }
                if (!changed) {
                  return answer_now(reply{reply_kind::ok, row_json(r), s.revision, true});
                }
                r.revision += 1;  // the sequence of the first insert is kept
                r.updated_at_ms = ctx.now_ms();
                if (auto st = t.update_row(r); !st) return std::move(st).error();
                json::object d;
                d["row"] = row_json(r);
                events.push_back({"row.updated", std::move(d)});
              } else {
                if (is_generated_row_id(row_id)) {
                  return invalid("invalid_row_id",
                                 "row ids of the form seq-{number} are reserved for rows appended "
                                 "without a row_id");
                }
                if (!f->kind) {
                  return invalid("missing_field", "field 'kind' is required for a new row");
                }
                if (!f->body) {
                  return invalid("missing_field", "field 'body' is required for a new row");
                }
                r.session_id = id;
                r.seq = s.next_row_seq;
                s.next_row_seq += 1;
                r.row_id = row_id;
                r.kind = *f->kind;
                r.status = f->status.value_or(row_status::complete);
                r.body = *f->body;
                r.created_at_ms = r.updated_at_ms = ctx.now_ms();
                if (auto st = t.insert_row(r); !st) return std::move(st).error();
                json::object d;
                d["row"] = row_json(r);
                events.push_back({"row.appended", std::move(d)});
                kind = reply_kind::created;
              }
              return commit_events();
            },
            [&](const sqlite::session_row& s) -> result<reply> {
              return reply{kind, row_json(r), s.revision, false};
            });
      },
      std::move(done), bytes);
}

void session_service::get_row(std::string id, std::string row_id, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), row_id = std::move(row_id)](storage::read_snapshot&,
                                                       session_tables& t) -> result<reply> {
        return session_item_reply(
            t, id, "row", row_id, [&] { return t.row_by_id(id, row_id); }, row_json);
      },
      std::move(done));
}

void session_service::list_rows(std::string id, row_list_query q, reply_callback done) {
  run_read(
      engine_,
      [id = std::move(id), q](storage::read_snapshot&, session_tables& t) -> result<reply> {
        int limit = q.limit.value_or(k_default_row_page);
        if (limit < 1 || limit > k_max_row_page) {
          return invalid("invalid_limit",
                         "limit must be between 1 and " + std::to_string(k_max_row_page));
        }
        auto s = existing_session(t, id);
        if (!s) return std::move(s).error();
        sqlite::row_page_query query;
        query.after = q.after;
        query.before = q.before;
        query.limit = limit;
        // `before` alone pages backwards from it; otherwise forwards from `after` (or the start).
        query.newest_first = q.before && !q.after;
        auto rows = t.rows(id, query);
        if (!rows) return std::move(rows).error();
        if (query.newest_first) std::reverse(rows->begin(), rows->end());
        json::array a;
        for (const auto& r : *rows)
          a.push_back(row_json(r));
        json::object o;
        o["rows"] = std::move(a);
        o["next_after"] = rows->empty() ? json::value(nullptr) : json::value(rows->back().seq);
        o["next_before"] = rows->empty() ? json::value(nullptr) : json::value(rows->front().seq);
        return reply{reply_kind::ok, std::move(o), s->revision, false};
      },
      std::move(done));
}

}  // namespace ordo::sessions
