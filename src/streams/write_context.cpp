// write_context: what a custom write job (stream_engine::submit, used by sessions and the change
// feed) may do to streams inside its savepoint.
//
// Thread safety: the writer thread only, while the job runs.
// Invariants: (1) every change goes through the writer's transaction and commits or rolls back
//                 with the job;
//             (2) every stream change is also recorded as a stream_effect, which the writer
//                 publishes only after the commit is durable (and discards if the job fails);
//             (3) a message's position is the stream's tail + 1 as the writer's transaction
//                 sees it, assigned here and nowhere else for custom jobs.
#include "streams/stream_engine.hpp"

#include <algorithm>
#include <cstdint>

#include "streams/stream_engine_internal.hpp"

namespace ordo {

using engine_internal::random_incarnation;

result<stream_id> write_context::create_stream(const std::string& path,
                                               const std::string& content_type) {
  storage::stream_row row;
  row.path = path;
  row.content_type = content_type;
  row.incarnation = random_incarnation();
  row.created_at_ms = now_ms_;
  row.last_access_ms = now_ms_;
  auto id = tables_.insert_stream(row);
  if (!id) return std::move(id).error();
  row.id = *id;
  effects_.push_back({stream_effect::kind::create, row.id, std::move(row), {}, nullptr});
  return *id;
}

result<stream_position> write_context::append(stream_id stream, std::string data) {
  auto row = tables_.find_by_id(stream);
  if (!row) return std::move(row).error();
  auto tail = *row ? tables_.lock_tail(**row) : result<stream_position>(stream_position{});
  if (!tail) return std::move(tail).error();
  if (!*row || (*row)->state != storage::stream_row_state::live) {
    return make_failure(failure_kind::not_found, "stream_not_found",
                        "stream " + std::to_string(stream.value()) + " does not exist");
  }
  if ((*row)->closed) {
    return make_failure(failure_kind::conflict, "stream_closed", "the stream is closed");
  }
  stream_position seq = tail->next();
  if (auto s = tables_.insert_message(stream, seq, data); !s) return std::move(s).error();
  effects_.push_back({stream_effect::kind::append, stream, std::nullopt, *tail,
                      std::make_shared<const std::string>(std::move(data))});
  return seq;
}

status write_context::close(stream_id stream) {
  if (auto s = tables_.set_closed(stream, std::nullopt); !s) return s;
  effects_.push_back({stream_effect::kind::close, stream, std::nullopt, {}, nullptr});
  return ok_v;
}

result<std::optional<stream_id>> write_context::find_stream(std::string_view path) {
  auto row = tables_.find_by_path(path);
  if (!row) return std::move(row).error();
  if (!*row || (*row)->state != storage::stream_row_state::live) {
    return std::optional<stream_id>();
  }
  return std::optional<stream_id>((*row)->id);
}

result<stream_offset> write_context::next_offset(stream_id stream) {
  auto row = tables_.find_by_id(stream);
  if (!row) return std::move(row).error();
  if (!*row) {
    return make_failure(failure_kind::not_found, "stream_not_found",
                        "stream " + std::to_string(stream.value()) + " does not exist");
  }
  auto tail = tables_.tail(**row);
  if (!tail) return std::move(tail).error();
  return stream_offset{offset_prefix((*row)->incarnation), tail->next()};
}

status write_context::prune(stream_id stream, stream_position upto) {
  if (auto s = tables_.prune_upto(stream, upto); !s) return s;
  effects_.push_back({stream_effect::kind::prune, stream, std::nullopt, upto, nullptr});
  return ok_v;
}

result<std::vector<storage::message_row>> write_context::oldest_messages(stream_id stream,
                                                                         std::size_t limit) {
  auto row = tables_.find_by_id(stream);
  if (!row) return std::move(row).error();
  if (!*row) return std::vector<storage::message_row>();
  stream_position after = std::max((*row)->pruned_upto, (*row)->base_seq);
  return tables_.read_messages(stream, after, after + limit, SIZE_MAX);
}

status write_context::checkpoint(std::string_view point) {
  return engine_.inject(point, "");
}

std::uint64_t write_context::offset_prefix(std::uint64_t incarnation) const {
  return offset_prefix_for(database_epoch_, incarnation);
}

}  // namespace ordo
