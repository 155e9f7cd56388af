// Read plans and catch-up reads. A stream's positions (after, tail] are read along its plan: a
// fork reads the positions it inherited through its source's segments (inherited_segments(),
// built when its record is made), then its own messages. read_in_memory() serves what the tail
// cache holds; read() follows the plan on a reader thread.
//
// Thread safety: inherited_segments() runs on the writer thread (or in open()); read() and
// read_in_memory() on any thread, read()'s task on a reader thread with its own read-only
// connection, and its callback there (or on the caller's thread when the read needs no reader).
// Invariants: (1) a plan's segments are disjoint and ascending and end at the stream's own base;
//             (2) a read answers a dense run of positions starting at after + 1, or an error:
//                 a gap is "pruned" (410) when retention removed it, otherwise internal;
//             (3) a read queued before the database file was replaced answers 410, never data
//                 of the new file under the old file's positions.
#include "streams/stream_engine.hpp"

#include <algorithm>

#include "streams/stream_engine_internal.hpp"

namespace ordo {

// The read plan for positions <= base_seq of a fork of `row.fork_source_id`, from the source's
// own plan (registered records at startup, or rows within the writer's transaction).
std::vector<read_segment> stream_engine::inherited_segments(const storage::stream_row& row,
                                                            stream_position base_seq,
                                                            const record_map* building,
                                                            storage::stream_store* store) const {
  if (!store) store = store_;
  std::vector<read_segment> out;
  if (!row.fork_source_id || base_seq.is_start()) return out;
  stream_id source_id = *row.fork_source_id;
  std::vector<read_segment> source_plan;
  stream_position source_base;
  std::shared_ptr<stream_record> source;
  if (building) {
    auto it = building->find(source_id);
    if (it != building->end()) source = it->second;
  } else {
    source = find_by_id(source_id);
  }
  if (source) {
    source_plan = source->config().inherited;
    source_base = source->config().base_seq;
  } else if (store) {
    auto source_row = store->find_by_id(source_id);
    if (source_row && *source_row) {
      source_base = (*source_row)->base_seq;
      source_plan = inherited_segments(**source_row, source_base, nullptr, store);
    }
  }
  for (const read_segment& s : source_plan) {
    if (s.after >= base_seq) break;
    out.push_back({s.stream, s.after, std::min(s.upto, base_seq)});
  }
  if (base_seq > source_base) out.push_back({source_id, source_base, base_seq});
  return out;
}

// ---- reads -----------------------------------------------------------------------------------

read_result engine_internal::follow_plan(const std::vector<read_segment>& plan,
                                         stream_position after, std::size_t max_bytes,
                                         const segment_reader& read,
                                         const pruned_check& pruned_at) {
  read_chunk chunk;
  chunk.after = after;
  std::size_t bytes = 0;
  stream_position expected = after.next();
  auto pruned = [](stream_position from) {
    return read_result{std::nullopt,
                       make_failure(failure_kind::gone, "offset_pruned",
                                    "the events from position " + std::to_string(from.value()) +
                                        " were removed by retention while this read was waiting")};
  };
  for (const read_segment& s : plan) {
    if (bytes >= max_bytes) break;
    auto rows = read(s, max_bytes - bytes);
    if (!rows) return read_result{std::nullopt, std::move(rows).error()};
    for (auto& row : *rows) {
      if (row.seq != expected) {
        // Retention removed these positions while the read was queued, or they are missing.
        if (pruned_at(expected)) return pruned(expected);
        return read_result{std::nullopt, make_failure(failure_kind::internal, "stream_data_missing",
                                                      "stream data is missing at position " +
                                                          std::to_string(expected.value()))};
      }
      expected = expected.next();
      bytes += row.data.size();
      chunk.messages.push_back(std::make_shared<const std::string>(std::move(row.data)));
    }
    if (expected <= s.upto && bytes < max_bytes) break;  // purged underneath the read
  }
  if (chunk.messages.empty() && pruned_at(after.next())) return pruned(after.next());
  return read_result{std::move(chunk), {}};
}

std::optional<read_chunk> stream_engine::read_in_memory(const stream_record& stream,
                                                        stream_position after) const {
  stream_position upto = stream.state().tail;
  if (after >= upto) return read_chunk{after, {}, nullptr};
  if (after < stream.config().base_seq) return std::nullopt;  // inherited from a fork source
  return stream.read_cached(after, upto, options_.read_chunk_bytes);
}

void stream_engine::read(std::shared_ptr<stream_record> stream, stream_position after,
                         read_callback done) {
  const stream_config& c = stream->config();
  if (auto chunk = read_in_memory(*stream, after)) {
    done(read_result{std::move(chunk), {}});
    return;
  }
  // The tail may have moved on since read_in_memory() looked: the plan reads up to it as it is
  // now, which is never less.
  stream_position upto = stream->state().tail;
  // The plan: inherited segments, then the stream's own messages, clipped to (after, upto].
  std::vector<read_segment> plan;
  for (const read_segment& s : c.inherited) {
    if (s.upto <= after) continue;
    plan.push_back({s.stream, std::max(s.after, after), std::min(s.upto, upto)});
  }
  if (upto > c.base_seq) plan.push_back({c.id, std::max(c.base_seq, after), upto});
  if (on_postgres()) {
    read_postgres(std::move(stream), std::move(plan), after, std::move(done));
    return;
  }
  std::size_t max_bytes = options_.read_chunk_bytes;
  auto shared_done = std::make_shared<read_callback>(std::move(done));
  std::weak_ptr<stream_record> weak = stream;
  std::uint64_t generation = c.generation;
  bool queued = readers_->submit(
      [plan = std::move(plan), after, max_bytes, shared_done, weak, generation,
       own_id = c.id](sqlite::read_context& context) {
        if (context.generation != generation) {
          // The stream's ids and positions belong to a database file since replaced.
          (*shared_done)(read_result{
              std::nullopt,
              make_failure(failure_kind::gone, "database_replaced",
                           "the database file was replaced while this read waited; re-read the "
                           "stream from offset -1")});
          return;
        }
        sqlite::message_reader& reader = context.messages;
        (*shared_done)(engine_internal::follow_plan(
            plan, after, max_bytes,
            [&](const read_segment& s, std::size_t max) {
              return reader.read(s.stream, s.after, s.upto, max);
            },
            [&](stream_position position) {
              // Published, or committed and not yet published (a prune is published after its
              // flush, but readers see it once committed).
              auto record = weak.lock();
              if (record && record->state().pruned_upto >= position) return true;
              auto committed = reader.pruned_upto(own_id);
              return committed && *committed >= position;
            }));
      },
      [shared_done](const failure& f) {
        (*shared_done)(read_result{std::nullopt, f});
      });
  if (!queued) (*shared_done)(engine_internal::read_queue_full());
}

}  // namespace ordo
