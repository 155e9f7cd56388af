#include "storage/sqlite/doctor.hpp"

#include "storage/doctor_checks.hpp"

#include "storage/sqlite/managed_streams.hpp"
#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {
namespace {

namespace doctor_checks = storage::doctor_checks;

std::string text(statement& s, int i) {
  return s.column_is_null(i) ? std::string("(null)") : std::string(s.column_text(i));
}

// Streams whose own positions are not dense from their low mark: (id, path, low, count, min,
// max, below) where `below` counts positions at or under the low mark.
constexpr std::string_view k_broken_streams = R"sql(
SELECT s.id, COALESCE(s.path, '(purging)'), MAX(s.base_seq, s.pruned_upto) AS low,
       COUNT(m.seq), MIN(m.seq), MAX(m.seq),
       SUM(CASE WHEN m.seq <= MAX(s.base_seq, s.pruned_upto) THEN 1 ELSE 0 END)
FROM streams s JOIN (SELECT stream_id, seq FROM messages
                     UNION ALL SELECT stream_id, seq FROM recent_messages) m ON m.stream_id = s.id
WHERE s.state IN (0, 1)
GROUP BY s.id
HAVING MIN(m.seq) <> low + 1 OR MAX(m.seq) <> low + COUNT(m.seq)
)sql";

// Sessions with rows whose generated id (seq-N, see session_service) is not seq-{their seq}.
constexpr std::string_view k_misnamed_rows =
    "SELECT session_id, COUNT(*) FROM rows WHERE row_id GLOB 'seq-[0-9]*' AND row_id <> 'seq-' "
    "|| seq GROUP BY session_id";

// Gives a session's rows with generated ids the id of their (new) sequence, through a
// temporary name so the (session, row_id) key stays unique at each step.
status rename_generated_rows(connection& db, const std::string& session) {
  for (std::string_view sql :
       {"UPDATE rows SET row_id = 'doctor-' || seq WHERE session_id = ?1 AND row_id GLOB "
        "'seq-[0-9]*' AND row_id <> 'seq-' || seq",
        "UPDATE rows SET row_id = 'seq-' || seq WHERE session_id = ?1 AND row_id = 'doctor-' || "
        "seq"}) {
    auto st = db.prepare(sql);
    if (!st) return std::move(st).error();
    st->bind_text(1, session);
    if (auto s = st->run(); !s) return s;
  }
  return ok_v;
}

status check_sqlite(connection& db, std::vector<finding>& out) {
  auto s = for_each_row(db, "PRAGMA integrity_check", [&](statement& r) {
    if (text(r, 0) != "ok") out.push_back({"integrity", "database", text(r, 0), false});
  });
  if (!s) return s;
  return for_each_row(db, "PRAGMA foreign_key_check", [&](statement& r) {
    out.push_back({"foreign_keys", text(r, 0),
                   "row " + text(r, 1) + " refers to a missing row of " + text(r, 2), false});
  });
}

status check_streams(connection& db, std::vector<finding>& out) {
  // Reads take a stream's messages from `messages`, then from the append log: the log's part
  // must lie above the table's (ordo moves the log oldest first and never writes below it).
  auto s = for_each_row(
      db,
      "SELECT COALESCE(s.path, '(purging)'), l.low, m.high FROM streams s "
      "JOIN (SELECT stream_id, MIN(seq) AS low FROM recent_messages GROUP BY stream_id) l "
      "ON l.stream_id = s.id "
      "JOIN (SELECT stream_id, MAX(seq) AS high FROM messages GROUP BY stream_id) m "
      "ON m.stream_id = s.id WHERE l.low <= m.high",
      [&](statement& r) {
        out.push_back({"append_log_order", text(r, 0),
                       "the append log holds position " + std::to_string(r.column_int64(1)) +
                           ", not above position " + std::to_string(r.column_int64(2)) +
                           " in the stream table: reads would return them out of order",
                       true});
      });
  if (!s) return s;
  s = for_each_row(db, k_broken_streams, [&](statement& r) {
    const std::string path = text(r, 1);
    const bool feed = is_change_feed_path(path);
    out.push_back({"stream_offsets", path,
                   doctor_checks::broken_offsets_message(feed, text(r, 3), text(r, 4), text(r, 5),
                                                         text(r, 2)),
                   true});
  });
  if (!s) return s;
  s = for_each_row(
      db,
      "SELECT stream_id, COUNT(*) FROM (SELECT stream_id FROM messages UNION ALL SELECT "
      "stream_id FROM recent_messages) WHERE stream_id NOT IN (SELECT id FROM streams) "
      "GROUP BY stream_id",
      [&](statement& r) {
        out.push_back({"orphan_messages", "stream id " + text(r, 0),
                       doctor_checks::orphan_messages_message(text(r, 1)), true});
      });
  if (!s) return s;
  s = for_each_row(db,
                   "SELECT stream_id, producer_id FROM producers WHERE stream_id NOT IN (SELECT id "
                   "FROM streams)",
                   [&](statement& r) {
                     out.push_back({"producers", "stream id " + text(r, 0),
                                    doctor_checks::orphan_producer_message(text(r, 1)), true});
                   });
  if (!s) return s;
  return for_each_row(
      db,
      "SELECT path FROM streams WHERE closed = 0 AND closed_by_producer IS NOT NULL "
      "AND state IN (0, 1)",
      [&](statement& r) {
        out.push_back(
            {"producers", text(r, 0), std::string(doctor_checks::k_open_but_closing), true});
      });
}

status check_sessions(connection& db, std::vector<finding>& out) {
  for (const doctor_checks::numbered_table& t : doctor_checks::k_numbered_tables) {
    auto s = for_each_row(db, doctor_checks::broken_sequences_sql(t), [&](statement& r) {
      out.push_back({t.check, text(r, 0),
                     doctor_checks::broken_sequences_message(t, text(r, 1), text(r, 2), text(r, 3),
                                                             text(r, 4)),
                     true});
    });
    if (!s) return s;
  }
  auto s = for_each_row(db, k_misnamed_rows, [&](statement& r) {
    out.push_back(
        {"session_row_ids", text(r, 0), doctor_checks::misnamed_rows_message(text(r, 1)), true});
  });
  if (!s) return s;
  for (const doctor_checks::counter_check& c : doctor_checks::k_counter_checks) {
    s = for_each_row(db, c.query, [&](statement& r) {
      out.push_back(
          {c.check, text(r, 0), doctor_checks::counter_message(c, text(r, 1), text(r, 2)), true});
    });
    if (!s) return s;
  }
  return s;
}

// Where renumbering moves a scope's sequences first: beyond any sequence ordo hands out.
constexpr std::int64_t k_renumber_lift = 4'000'000'000'000'000;

// Renumbers `table`'s `seq` within `scope_column = scope` to base+1.. in their order. Moving
// every row out of the way first keeps the (scope, seq) key unique at each step.
status renumber(connection& db, std::string_view table, std::string_view scope_column,
                const std::string& scope, std::int64_t base) {
  const std::string t(table), c(scope_column);
  auto lift = db.prepare("UPDATE " + t + " SET seq = seq + " + std::to_string(k_renumber_lift) +
                         " WHERE " + c + " = ?1");
  if (!lift) return std::move(lift).error();
  lift->bind_text(1, scope);
  if (auto s = lift->run(); !s) return s;
  auto place = db.prepare("UPDATE " + t + " SET seq = ?2 + r.n FROM (SELECT seq AS old, " +
                          "ROW_NUMBER() OVER (ORDER BY seq) AS n FROM " + t + " WHERE " + c +
                          " = ?1) AS r WHERE " + t + "." + c + " = ?1 AND " + t + ".seq = r.old");
  if (!place) return std::move(place).error();
  place->bind_text(1, scope);
  place->bind_int64(2, base);
  return place->run();
}

status repair_all(connection& db, doctor_report& report) {
  // The append log first goes where the writer would have moved it, so positions are
  // renumbered in one table. Two copies of one position fail here, and nothing is repaired.
  if (auto st = db.exec("INSERT INTO messages (stream_id, seq, data) SELECT stream_id, seq, "
                        "data FROM recent_messages ORDER BY stream_id, seq; "
                        "DELETE FROM recent_messages");
      !st) {
    return st;
  }
  // Streams: own positions renumbered from their low mark.
  std::vector<std::tuple<std::string, std::string, std::int64_t>> streams;
  auto s = for_each_row(db, k_broken_streams, [&](statement& r) {
    streams.emplace_back(text(r, 0), text(r, 1), r.column_int64(2));
  });
  if (!s) return s;
  for (const auto& [id, path, low] : streams) {
    if (auto st = renumber(db, "messages", "stream_id", id, low); !st) return st;
    report.repairs.push_back("renumbered the stored appends of stream '" + path +
                             "' to positions " + std::to_string(low + 1) + "..");
  }
  if (!streams.empty()) {
    if (auto st = renew_database_epoch(db); !st) return st;
    report.epoch_renewed = true;
    report.repairs.push_back(
        "gave the database a new epoch: offsets handed out before answer 410 and clients "
        "re-read");
  }
  auto n = [&](std::string_view sql, std::string_view what) -> status {
    if (auto st = db.exec(sql); !st) return st;
    if (db.changes() > 0)
      report.repairs.push_back(std::string(what) + ": " + std::to_string(db.changes()));
    return ok_v;
  };
  if (auto st = n("DELETE FROM messages WHERE stream_id NOT IN (SELECT id FROM streams)",
                  "deleted stored appends of no stream");
      !st) {
    return st;
  }
  if (auto st = n("DELETE FROM producers WHERE stream_id NOT IN (SELECT id FROM streams)",
                  "deleted producer state of no stream");
      !st) {
    return st;
  }
  if (auto st = n("UPDATE streams SET closed_by_producer = NULL, closed_by_epoch = NULL, "
                  "closed_by_seq = NULL WHERE closed = 0 AND closed_by_producer IS NOT NULL",
                  "cleared closing producers of open streams");
      !st) {
    return st;
  }
  // Session rows and commands: renumbered 1..n, counters set beyond.
  for (const doctor_checks::numbered_table& t : doctor_checks::k_numbered_tables) {
    const std::string_view table = t.table, counter = t.counter, noun = t.noun;
    std::vector<std::string> sessions;
    s = for_each_row(db, doctor_checks::broken_sequences_sql(t),
                     [&](statement& r) { sessions.push_back(text(r, 0)); });
    if (!s) return s;
    for (const std::string& id : sessions) {
      if (auto st = renumber(db, table, "session_id", id, 0); !st) return st;
      auto counter_fix = db.prepare("UPDATE sessions SET " + std::string(counter) +
                                    " = (SELECT COUNT(*) + 1 FROM " + std::string(table) +
                                    " WHERE session_id = ?1) WHERE id = ?1");
      if (!counter_fix) return std::move(counter_fix).error();
      counter_fix->bind_text(1, id);
      if (auto st = counter_fix->run(); !st) return st;
      report.repairs.push_back("renumbered the " + std::string(noun) + " of session '" + id +
                               "' to 1..n");
    }
  }
  // Generated row ids follow their sequence (also after the renumbering above).
  std::vector<std::string> misnamed;
  s = for_each_row(db, k_misnamed_rows, [&](statement& r) { misnamed.push_back(text(r, 0)); });
  if (!s) return s;
  for (const std::string& id : misnamed) {
    if (auto st = rename_generated_rows(db, id); !st) return st;
    report.repairs.push_back("renamed the generated row ids of session '" + id +
                             "' to their sequences");
  }
  if (auto st = n("UPDATE sessions SET next_generation = (SELECT MAX(generation) + 1 FROM "
                  "executions e WHERE e.session_id = sessions.id) WHERE next_generation <= "
                  "(SELECT MAX(generation) FROM executions e WHERE e.session_id = sessions.id)",
                  "raised the next execution generation of sessions");
      !st) {
    return st;
  }
  return n(
      "UPDATE projects SET next_session_number = (SELECT MAX(number) + 1 FROM sessions s "
      "WHERE s.project_id = projects.id) WHERE next_session_number <= (SELECT MAX(number) "
      "FROM sessions s WHERE s.project_id = projects.id)",
      "raised the next session number of projects");
}

}  // namespace

result<std::vector<finding>> diagnose(connection& db) {
  auto pending = pending_migrations(db);  // refuses a database of a newer ordo
  if (!pending) return std::move(pending).error();
  std::vector<finding> out;
  auto read = read_transaction::begin(db);
  if (!read) return std::move(read).error();
  if (auto s = check_sqlite(db, out); !s) return std::move(s).error();
  if (!pending->empty()) {
    out.push_back({"schema", "database",
                   std::to_string(pending->size()) +
                       " migration(s) pending: run ordo migrate (or start ordo) first",
                   false});
    return out;
  }
  if (auto s = verify_schema(db); !s) {
    if (s.error().code != "schema_mismatch") return std::move(s).error();
    out.push_back({"schema", "database", s.error().message, false});
    return out;  // the invariant queries assume the schema
  }
  if (auto s = check_streams(db, out); !s) return std::move(s).error();
  if (auto s = check_sessions(db, out); !s) return std::move(s).error();
  return out;
}

result<doctor_report> repair(connection& db) {
  doctor_report report;
  auto before = diagnose(db);
  if (!before) return std::move(before).error();
  bool any = false;
  for (const finding& f : *before)
    any = any || f.repairable;
  if (any) {
    if (auto s = db.exec("BEGIN EXCLUSIVE"); !s) return std::move(s).error();
    if (auto s = repair_all(db, report); !s) {
      (void)db.exec("ROLLBACK");
      return std::move(s).error();
    }
    if (auto s = db.exec("COMMIT"); !s) {
      (void)db.exec("ROLLBACK");
      return std::move(s).error();
    }
  }
  auto after = diagnose(db);
  if (!after) return std::move(after).error();
  report.findings = std::move(*after);
  return report;
}

result<connection> open_for_repair(const std::string& path) {
  auto db = connection::open(path, open_mode::read_write_create, std::chrono::seconds(2));
  if (!db) return std::move(db).error();
  // Leaving WAL mode needs the file alone: it fails while any other connection has it open.
  auto mode = db->query_text("PRAGMA journal_mode=DELETE");
  if (!mode || !*mode || **mode != "delete") {
    return make_failure(failure_kind::unavailable, "database_in_use",
                        "another process has '" + path +
                            "' open (a running ordo, or a sqlite3 shell); stop it before "
                            "--repair");
  }
  return std::move(*db);
}

}  // namespace ordo::sqlite
