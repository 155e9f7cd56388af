// `ordo doctor --storage postgres://...`: checks a PostgreSQL database against ordo's invariants,
// over a read-only connection. The checks are SQLite's (storage/sqlite/doctor.hpp) where they
// apply, and the findings have the same shape:
//
//   schema           the schema probe (migrations.hpp); a newer or older version
//   stream_offsets   each stream's own positions are dense and increasing from
//                    max(base_seq, pruned_upto) + 1
//   stream_counter   each stream's counter (tail_seq) is its last stored position: a counter
//                    behind it would hand a position out twice, one ahead of it leaves a gap
//   orphan_messages  messages of a stream that does not exist
//   producers        producer state of a stream that does not exist; a closing producer
//                    recorded on a stream that is not closed
//   session_rows     a session's row sequences are 1..n; next_row_seq beyond
//   session_row_ids  a generated row id (seq-N) names its row's sequence
//   session_commands the same for commands and next_command_seq
//   executions       next_generation beyond every generation
//   project_sessions next_session_number beyond every session number
//
// SQLite's integrity and foreign-key checks have no counterpart: PostgreSQL enforces foreign
// keys itself, and checks its own pages (amcheck is PostgreSQL's tool for that).
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "storage/postgres/connection.hpp"

namespace ordo::postgres {

struct finding {
  std::string check;    // one of the names above
  std::string subject;  // what it is about: a stream path, a session id, a table
  std::string message;  // what is wrong, in words
};

// Runs every check. Reads only: `db` may be (and for `ordo doctor` is) read-only. A database
// whose schema is not this ordo's gets the schema finding alone (the other checks would read
// tables that may not be there).
result<std::vector<finding>> diagnose(connection& db);

}  // namespace ordo::postgres
