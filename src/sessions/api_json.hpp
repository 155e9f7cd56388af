// The JSON the session API speaks: the views of stored rows that replies, events and the change
// feed carry; the reader of request bodies; and the canonical text idempotent retries compare.
// Internal to sessions/.
//
// Thread safety: plain functions of their arguments, callable on any thread; pr_view() reads
// through the session_tables it is given, so it runs where those statements belong (the writer
// thread or one reader thread).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/session_tables.hpp"

namespace ordo::sessions {

namespace json = boost::json;
using sqlite::session_tables;

// A command's id is "{session}-c{sequence}".
inline constexpr std::string_view k_command_id_infix = "-c";

json::value optional_text(const std::optional<std::string>& v);
json::value optional_time(const std::optional<std::int64_t>& ms);

// The canonical text of a JSON value: members of every object sorted by key, no whitespace.
// Idempotent retries compare requests in this form, so member order and formatting don't matter.
std::string canonical_json(const json::value& v);
// A stored JSON text as a value (the text itself, as a string, if it does not parse).
json::value parse_stored(const std::string& text);

// ---- JSON views of rows

json::object project_json(const sqlite::project_row& p);
json::object session_json(const sqlite::session_row& s);
// A session's id is "{project}-{number}".
std::string session_id(std::string_view project_id, sqlite::session_number number);
std::string command_id(std::string_view session_id, std::int64_t seq);
json::object command_json(const sqlite::command_row& c);
json::object row_json(const sqlite::transcript_row& r);
json::object execution_json(const sqlite::execution_row& e);
json::object pr_json(const sqlite::pr_row& p);
json::object check_json(const sqlite::check_row& c);
json::object comment_json(const sqlite::comment_row& c);
// A PR with its checks and comments.
result<json::object> pr_view(session_tables& t, const sqlite::pr_row& p);

// ---- request bodies

// Reads typed fields of a JSON object body, refusing unknown fields and wrong types with a
// message naming the field and what it must be.
class body_reader {
 public:
  static result<body_reader> of(const json::value& body, std::vector<std::string_view> known);

  bool has(std::string_view key) const { return o_.contains(key); }

  // Absent: nullopt. Present: a string (or null when nullable, giving an empty optional inside).
  result<std::optional<std::optional<std::string>>> text(std::string_view key, bool nullable,
                                                         std::size_t max_bytes) const;

  result<std::string> required_text(std::string_view key, std::size_t max_bytes) const;

  const json::value* raw(std::string_view key) const {
    auto it = o_.find(key);
    return it == o_.end() ? nullptr : &it->value();
  }

 private:
  explicit body_reader(json::object o) : o_(std::move(o)) {}
  json::object o_;  // a copy: callers may pass temporaries
};

}  // namespace ordo::sessions
