#include "storage/postgres/doctor.hpp"

#include "storage/postgres/migrations.hpp"

namespace ordo::postgres {
namespace {

// Calls `each` with every row `sql` answers.
template <class F>
status for_each_row(connection& db, std::string_view sql, F each) {
  auto r = db.query(sql);
  if (!r) return std::move(r).error();
  for (int i = 0; i < r->size(); ++i)
    each(*r, i);
  return ok_v;
}

std::string text(const rows& r, int row, int column) {
  return r.is_null(row, column) ? std::string("(null)") : std::string(r.text(row, column));
}

// Streams whose own positions are not dense from their low mark: (path, low, count, min, max).
constexpr std::string_view k_broken_streams = R"sql(
SELECT COALESCE(s.path, '(purging)'), GREATEST(s.base_seq, s.pruned_upto) AS low,
       COUNT(m.seq), MIN(m.seq), MAX(m.seq)
FROM streams s JOIN messages m ON m.stream_id = s.id
WHERE s.state IN (0, 1)
GROUP BY s.id
HAVING MIN(m.seq) <> GREATEST(s.base_seq, s.pruned_upto) + 1
    OR MAX(m.seq) <> GREATEST(s.base_seq, s.pruned_upto) + COUNT(m.seq)
ORDER BY s.id
)sql";

// Streams whose counter is not their last position: (path, tail_seq, last stored position).
// A stream with nothing stored must have its counter at its low mark or, pruned to the end,
// at the mark retention recorded.
constexpr std::string_view k_broken_counters = R"sql(
SELECT COALESCE(s.path, '(purging)'), s.tail_seq,
       COALESCE(MAX(m.seq), GREATEST(s.base_seq, s.pruned_upto))
FROM streams s LEFT JOIN messages m ON m.stream_id = s.id
WHERE s.state IN (0, 1)
GROUP BY s.id
HAVING s.tail_seq <> COALESCE(MAX(m.seq), GREATEST(s.base_seq, s.pruned_upto))
ORDER BY s.id
)sql";

std::string broken_sequences(std::string_view table, std::string_view counter) {
  return "SELECT s.id, COUNT(x.seq), MIN(x.seq), MAX(x.seq), s." + std::string(counter) +
         " FROM sessions s JOIN " + std::string(table) +
         " x ON x.session_id = s.id GROUP BY s.seq HAVING MIN(x.seq) <> 1 OR MAX(x.seq) <> "
         "COUNT(x.seq) OR s." +
         std::string(counter) + " <= MAX(x.seq) ORDER BY s.id";
}

status check_streams(connection& db, std::vector<finding>& out) {
  auto s = for_each_row(db, k_broken_streams, [&](const rows& r, int i) {
    out.push_back({"stream_offsets", text(r, i, 0),
                   "the stream's " + text(r, i, 2) + " stored appends hold positions " +
                       text(r, i, 3) + ".." + text(r, i, 4) + "; after position " + text(r, i, 1) +
                       " they must be dense"});
  });
  if (!s) return s;
  s = for_each_row(db, k_broken_counters, [&](const rows& r, int i) {
    const bool behind = r.int64(i, 1) < r.int64(i, 2);
    out.push_back({"stream_counter", text(r, i, 0),
                   "the stream's counter is at " + text(r, i, 1) + " and its last position is " +
                       text(r, i, 2) +
                       (behind ? ": the next append would reuse a position"
                               : ": the next append would leave a gap")});
  });
  if (!s) return s;
  s = for_each_row(db,
                   "SELECT stream_id, COUNT(*) FROM messages WHERE stream_id NOT IN "
                   "(SELECT id FROM streams) GROUP BY stream_id ORDER BY stream_id",
                   [&](const rows& r, int i) {
                     out.push_back({"orphan_messages", "stream id " + text(r, i, 0),
                                    text(r, i, 1) + " stored appends belong to no stream"});
                   });
  if (!s) return s;
  s = for_each_row(db,
                   "SELECT stream_id, producer_id FROM producers WHERE stream_id NOT IN "
                   "(SELECT id FROM streams) ORDER BY stream_id, producer_id",
                   [&](const rows& r, int i) {
                     out.push_back({"producers", "stream id " + text(r, i, 0),
                                    "producer '" + text(r, i, 1) + "' has state for no stream"});
                   });
  if (!s) return s;
  return for_each_row(db,
                      "SELECT path FROM streams WHERE NOT closed AND closed_by_producer IS NOT "
                      "NULL AND state IN (0, 1) ORDER BY id",
                      [&](const rows& r, int i) {
                        out.push_back({"producers", text(r, i, 0),
                                       "a closing producer is recorded but the stream is open"});
                      });
}

status check_sessions(connection& db, std::vector<finding>& out) {
  struct numbered_table {
    const char* table;
    const char* counter;
    const char* check;
    const char* noun;
  };
  for (const numbered_table& t :
       {numbered_table{"rows", "next_row_seq", "session_rows", "rows"},
        numbered_table{"commands", "next_command_seq", "session_commands", "commands"}}) {
    auto s = for_each_row(db, broken_sequences(t.table, t.counter), [&](const rows& r, int i) {
      out.push_back({t.check, text(r, i, 0),
                     text(r, i, 1) + " " + t.noun + " hold sequences " + text(r, i, 2) + ".." +
                         text(r, i, 3) + " and the next is " + text(r, i, 4) +
                         "; they must be 1.." + text(r, i, 1) + " and the next beyond"});
    });
    if (!s) return s;
  }
  auto s = for_each_row(db,
                        "SELECT session_id, COUNT(*) FROM rows WHERE row_id ~ '^seq-[0-9]' AND "
                        "row_id <> 'seq-' || seq GROUP BY session_id ORDER BY session_id",
                        [&](const rows& r, int i) {
                          out.push_back({"session_row_ids", text(r, i, 0),
                                         text(r, i, 1) + " rows have a generated id (seq-N) "
                                                         "that is not their sequence"});
                        });
  if (!s) return s;
  struct counter_check {
    const char* check;
    const char* noun;
    const char* query;
  };
  for (const counter_check& c :
       {counter_check{"executions", "generation",
                      "SELECT s.id, MAX(e.generation), s.next_generation FROM sessions s JOIN "
                      "executions e ON e.session_id = s.id GROUP BY s.seq "
                      "HAVING s.next_generation <= MAX(e.generation) ORDER BY s.seq"},
        counter_check{"project_sessions", "session number",
                      "SELECT p.id, MAX(s.number), p.next_session_number FROM projects p JOIN "
                      "sessions s ON s.project_id = p.id GROUP BY p.id "
                      "HAVING p.next_session_number <= MAX(s.number) ORDER BY p.id"}}) {
    const std::string noun = c.noun;
    s = for_each_row(db, c.query, [&](const rows& r, int i) {
      out.push_back({c.check, text(r, i, 0),
                     "the next " + noun + " " + text(r, i, 2) + " is not beyond " + noun + " " +
                         text(r, i, 1)});
    });
    if (!s) return s;
  }
  return ok_v;
}

}  // namespace

result<std::vector<finding>> diagnose(connection& db) {
  std::vector<finding> out;
  // One snapshot for every check: a server writing meanwhile cannot make them disagree.
  if (auto s = db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s) return s.error();
  auto finish = [&](status s) -> result<std::vector<finding>> {
    (void)db.exec("ROLLBACK");
    if (!s) return s.error();
    return out;
  };
  auto version = current_schema_version(db);
  if (!version) return finish(std::move(version).error());
  if (*version == 0) {
    out.push_back({"schema", "database", "ordo has not migrated this database: run ordo migrate"});
    return finish(ok_v);
  }
  if (auto schema = verify_schema(db); !schema) {
    if (schema.error().code == k_storage_unavailable) return finish(schema.error());
    out.push_back({"schema", "database", schema.error().message});
    return finish(ok_v);
  }
  if (auto s = check_streams(db, out); !s) return finish(s);
  return finish(check_sessions(db, out));
}

}  // namespace ordo::postgres
