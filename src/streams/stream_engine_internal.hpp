// What the files defining stream_engine's members share, and nothing outside src/streams may
// include: the writer's job types, `removal`, and small helpers. stream_engine's members are
// defined across one file per responsibility:
//   stream_engine.cpp        open / stop, submission and the other public entry points
//   group_commit_writer.cpp  the writer thread: batches, commit, flush, publication, wake-ups
//   database_custody.cpp     the database file under the server: identity, adopt, detach, attach
//   stream_registry.cpp      the published stream records, by id and by path
//   read_plan.cpp            a fork's inherited segments and the catch-up read that follows them
//   stream_operations.cpp    create / append / delete jobs and the publication of their effects
//   janitor.cpp              moves of the append log, maintenance, the cache budget, purges
//   write_context.cpp        what a custom job may do inside its savepoint
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/stream_tables.hpp"
#include "streams/content_type.hpp"
#include "streams/stream_engine.hpp"
#include "streams/stream_record.hpp"

namespace ordo {

namespace engine_internal {

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A new stream family's incarnation: random and never 0.
inline std::uint64_t random_incarnation() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t v = 0;
  while (v == 0)
    v = rng();
  return v;
}

inline std::string media_type_of(std::string_view content_type) {
  return normalized_media_type(content_type).value_or(std::string(content_type));
}

}  // namespace engine_internal

// A stream leaving the registry (deleted, expired, or purged by a cascade).
struct removal {
  stream_id id;
  stream_lifecycle lifecycle = stream_lifecycle::removed;
};

struct stream_engine::create_job {
  create_request req;
  create_callback done;
  create_result res;
  // Effects, published after commit.
  std::optional<storage::stream_row> created;
  std::vector<read_segment> inherited;
  std::vector<std::pair<stream_position, message_ptr>> messages;  // (position, data)
  std::vector<removal> removals;
};

struct stream_engine::append_job {
  append_request req;
  append_callback done;
  append_result res;
  stream_id stream;
  stream_position after;
  message_ptr message;
  bool closes = false;
  bool wrote = false;
};

struct stream_engine::delete_job {
  std::string path;
  delete_callback done;
  delete_result res;
  std::vector<removal> removals;
};

struct stream_engine::custom_job {
  write_job job;
  std::vector<stream_effect> effects;
  std::optional<failure> refused;  // what run() failed with
};

namespace engine_internal {
// Reads positions (after, ...] along `plan`, at most max_bytes (at least one message): a dense
// run of messages from after + 1, or an error. A gap is offset_pruned (410) when `pruned_at`
// says retention removed that position, otherwise stream_data_missing (read_plan.cpp). Both
// storages' readers use it, each with its own way to read a segment.
using segment_reader = std::function<result<std::vector<storage::message_row>>(
    const read_segment& segment, std::size_t max_bytes)>;
using pruned_check = std::function<bool(stream_position position)>;
read_result follow_plan(const std::vector<read_segment>& plan, stream_position after,
                        std::size_t max_bytes, const segment_reader& read,
                        const pruned_check& pruned_at);
// What a catch-up read answers when the reader pool's queue is full.
inline read_result read_queue_full() {
  return read_result{std::nullopt,
                     make_failure(failure_kind::unavailable, "read_queue_full",
                                  "too many catch-up reads are waiting; retry shortly")};
}
}  // namespace engine_internal

// Removes a stream inside the writer's transaction: soft-deletes it while forks read through
// it, otherwise hands its data to the janitor and cascades to soft-deleted sources that no
// longer have forks (stream_operations.cpp).
namespace engine_internal {
result<std::vector<removal>> remove_stream_tx(storage::stream_store& t,
                                              const storage::stream_row& row);
}  // namespace engine_internal

}  // namespace ordo
