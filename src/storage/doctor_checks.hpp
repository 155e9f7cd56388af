// What both engines' doctors (storage/sqlite/doctor.cpp, storage/postgres/doctor.cpp) check the
// same way: the queries of the session checks, which run unchanged on SQLite and PostgreSQL, and
// the words of every finding both report. Each doctor runs the queries on its own connection.
#pragma once

#include <string>
#include <string_view>

namespace ordo::storage::doctor_checks {

// Tables whose `seq` numbers a session's items 1..n, with the session's counter for the next.
struct numbered_table {
  const char* table;
  const char* counter;  // the sessions column that hands out the next seq
  const char* check;    // the finding's check name
  const char* noun;
};
inline constexpr numbered_table k_numbered_tables[] = {
    {"rows", "next_row_seq", "session_rows", "rows"},
    {"commands", "next_command_seq", "session_commands", "commands"},
};

// Sessions whose items in `t` are not 1..n, or whose counter would hand out a taken seq:
// (session id, count, min, max, counter).
inline std::string broken_sequences_sql(const numbered_table& t) {
  const std::string table(t.table), counter(t.counter);
  return "SELECT s.id, COUNT(x.seq), MIN(x.seq), MAX(x.seq), s." + counter +
         " FROM sessions s JOIN " + table +
         " x ON x.session_id = s.id GROUP BY s.seq HAVING MIN(x.seq) <> 1 OR MAX(x.seq) <> "
         "COUNT(x.seq) OR s." +
         counter + " <= MAX(x.seq) ORDER BY s.seq";
}

inline std::string broken_sequences_message(const numbered_table& t, const std::string& count,
                                            const std::string& min, const std::string& max,
                                            const std::string& next) {
  return count + " " + t.noun + " hold sequences " + min + ".." + max + " and the next is " + next +
         "; they must be 1.." + count + " and the next beyond";
}

// Counters that must stay beyond what they numbered. Each query gives {id, the largest number
// handed out, the counter}.
struct counter_check {
  const char* check;
  const char* noun;
  const char* query;
};
inline constexpr counter_check k_counter_checks[] = {
    {"executions", "generation",
     "SELECT s.id, MAX(e.generation), s.next_generation FROM sessions s JOIN executions e ON "
     "e.session_id = s.id GROUP BY s.seq HAVING s.next_generation <= MAX(e.generation) "
     "ORDER BY s.seq"},
    {"project_sessions", "session number",
     "SELECT p.id, MAX(s.number), p.next_session_number FROM projects p JOIN sessions s ON "
     "s.project_id = p.id GROUP BY p.id HAVING p.next_session_number <= MAX(s.number) "
     "ORDER BY p.id"},
};

inline std::string counter_message(const counter_check& c, const std::string& largest,
                                   const std::string& next) {
  const std::string noun(c.noun);
  return "the next " + noun + " " + next + " is not beyond " + noun + " " + largest;
}

inline std::string misnamed_rows_message(const std::string& count) {
  return count + " rows have a generated id (seq-N) that is not their sequence";
}

inline std::string broken_offsets_message(bool change_feed, const std::string& count,
                                          const std::string& min, const std::string& max,
                                          const std::string& low) {
  return std::string(change_feed ? "the change feed's" : "the stream's") + " " + count +
         " stored appends hold positions " + min + ".." + max + "; after position " + low +
         (change_feed ? " (pruned or forked)" : "") + " they must be dense";
}

inline std::string orphan_messages_message(const std::string& count) {
  return count + " stored appends belong to no stream";
}

inline std::string orphan_producer_message(const std::string& producer) {
  return "producer '" + producer + "' has state for no stream";
}

inline constexpr std::string_view k_open_but_closing =
    "a closing producer is recorded but the stream is open";

}  // namespace ordo::storage::doctor_checks
