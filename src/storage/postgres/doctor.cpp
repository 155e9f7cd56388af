#include "storage/postgres/doctor.hpp"

#include "storage/doctor_checks.hpp"
#include "storage/postgres/migrations.hpp"
#include "storage/sqlite/managed_streams.hpp"

namespace ordo::postgres {
namespace {

namespace doctor_checks = storage::doctor_checks;
using sqlite::is_change_feed_path;

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
                                    doctor_checks::orphan_messages_message(text(r, i, 1))});
                   });
  if (!s) return s;
  s = for_each_row(db,
                   "SELECT stream_id, producer_id FROM producers WHERE stream_id NOT IN "
                   "(SELECT id FROM streams) ORDER BY stream_id, producer_id",
                   [&](const rows& r, int i) {
                     out.push_back({"producers", "stream id " + text(r, i, 0),
                                    doctor_checks::orphan_producer_message(text(r, i, 1))});
                   });
  if (!s) return s;
  return for_each_row(
      db,
      "SELECT path FROM streams WHERE NOT closed AND closed_by_producer IS NOT "
      "NULL AND state IN (0, 1) ORDER BY id",
      [&](const rows& r, int i) {
        out.push_back({"producers", text(r, i, 0), std::string(doctor_checks::k_open_but_closing)});
      });
}

status check_sessions(connection& db, std::vector<finding>& out) {
  for (const doctor_checks::numbered_table& t : doctor_checks::k_numbered_tables) {
    auto s = for_each_row(db, doctor_checks::broken_sequences_sql(t), [&](const rows& r, int i) {
      out.push_back({t.check, text(r, i, 0),
                     doctor_checks::broken_sequences_message(t, text(r, i, 1), text(r, i, 2),
                                                             text(r, i, 3), text(r, i, 4))});
    });
    if (!s) return s;
  }
  // SQLite's GLOB is PostgreSQL's regular expression here.
  auto s = for_each_row(db,
                        "SELECT session_id, COUNT(*) FROM rows WHERE row_id ~ '^seq-[0-9]' AND "
                        "row_id <> 'seq-' || seq GROUP BY session_id ORDER BY session_id",
                        [&](const rows& r, int i) {
                          out.push_back({"session_row_ids", text(r, i, 0),
                                         doctor_checks::misnamed_rows_message(text(r, i, 1))});
                        });
  if (!s) return s;
  for (const doctor_checks::counter_check& c : doctor_checks::k_counter_checks) {
    s = for_each_row(db, c.query, [&](const rows& r, int i) {
      out.push_back({c.check, text(r, i, 0),
                     doctor_checks::counter_message(c, text(r, i, 1), text(r, i, 2))});
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
