// The rows of the streams tables as both storage engines read and write them (SQLite:
// storage/sqlite/stream_tables.hpp; PostgreSQL: storage/postgres/stream_tables.hpp). The
// meaning of every field is documented with the schema (storage/sqlite/migrations.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/stream_position.hpp"

namespace ordo::storage {

enum class stream_row_state : int { live = 0, soft_deleted = 1, purging = 2 };

struct stream_row {
  stream_id id;
  std::string path;
  stream_row_state state = stream_row_state::live;
  std::string content_type;
  std::uint64_t incarnation = 0;  // random, never 0; stored as its two's-complement 64-bit integer
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::int64_t> expires_at_ms;
  std::int64_t last_access_ms = 0;
  bool closed = false;
  std::optional<std::string> closed_by_producer;
  std::optional<std::int64_t> closed_by_epoch;
  std::optional<std::int64_t> closed_by_seq;
  std::optional<std::string> last_stream_seq;
  std::optional<stream_id> fork_source_id;
  stream_position base_seq;  // a fork's own messages have positions > base_seq
  // Where in the message at the fork offset the fork starts (a protocol value, not a position).
  std::uint64_t fork_sub_offset = 0;
  stream_position pruned_upto;  // positions up to here were removed by retention
};

struct producer_row {
  std::int64_t epoch = 0;
  std::int64_t last_seq = 0;
};

struct message_row {
  stream_position seq;
  std::string data;
};

struct closed_by {
  std::string producer_id;
  std::int64_t epoch = 0;
  std::int64_t seq = 0;
};

// A stream that is live or soft-deleted, with its tail, for the registry at startup.
struct loaded_stream {
  stream_row row;
  stream_position tail;
};

}  // namespace ordo::storage
