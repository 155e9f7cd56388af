// `ordo doctor`: checks a database the way SQLite checks its file and the way ordo's own
// invariants demand, and with --repair renumbers broken sequences in one transaction.
//
// Checks (finding.check):
//   integrity        PRAGMA integrity_check                                   not repairable
//   foreign_keys     PRAGMA foreign_key_check                                 not repairable
//   schema           the schema probe (see migrations.hpp)                    not repairable
//   stream_offsets   each stream's own positions are dense and increasing from
//                    max(base_seq, pruned_upto) + 1 (the change feed: contiguous
//                    apart from pruning)                                      renumbered
//   orphan_messages  messages of a stream that does not exist                 deleted
//   producers        producer state of a stream that does not exist; a
//                    closing producer recorded on a stream that is not closed removed / cleared
//   session_rows     a session's row sequences are 1..n; next_row_seq beyond  renumbered
//   session_row_ids  a generated row id (seq-N) names its row's sequence      renamed
//   session_commands the same for commands and next_command_seq               renumbered
//   executions       next_generation beyond every generation                  raised
//   project_sessions next_session_number beyond every session number          raised
//
// Renumbering stream positions changes offsets, so a repair that renumbers any stream also
// gives the database a new epoch: every offset handed out before answers 410 and clients
// re-read instead of resuming at a position that now holds another message.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite {

struct finding {
  std::string check;    // one of the names above
  std::string subject;  // what it is about: a stream path, a session id, a table
  std::string message;  // what is wrong, in words
  bool repairable = false;
};

struct doctor_report {
  std::vector<finding> findings;     // empty: healthy
  std::vector<std::string> repairs;  // what --repair changed, in words
  bool epoch_renewed = false;
};

// Runs every check. Reads only; `db` may be an inspect connection.
result<std::vector<finding>> diagnose(connection& db);

// Repairs every repairable finding in one exclusive transaction, then diagnoses again. The
// caller must hold the database alone (no server running): see open_for_repair.
result<doctor_report> repair(connection& db);

// Opens the database for repair, refusing (database_in_use) while another connection — a
// running ordo, a sqlite3 shell — has it open: leaving WAL mode needs the file alone.
result<connection> open_for_repair(const std::string& path);

}  // namespace ordo::sqlite
