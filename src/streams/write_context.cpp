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

result<std::int64_t> write_context::create_stream(const std::string& path,
                                                  const std::string& content_type) {
  sqlite::stream_row row;
  row.path = path;
  row.content_type = content_type;
  row.incarnation = random_incarnation();
  row.created_at_ms = now_ms_;
  row.last_access_ms = now_ms_;
  auto id = tables_.insert_stream(row);
  if (!id) return std::move(id).error();
  row.id = *id;
  effects_.push_back({stream_effect::kind::create, row.id, std::move(row), 0, nullptr});
  return *id;
}

result<std::uint64_t> write_context::append(std::int64_t stream_id, std::string data) {
  auto row = tables_.find_by_id(stream_id);
  if (!row) return std::move(row).error();
  if (!*row || (*row)->state != sqlite::stream_row_state::live) {
    return make_failure(failure_kind::not_found, "stream_not_found",
                        "stream " + std::to_string(stream_id) + " does not exist");
  }
  if ((*row)->closed) {
    return make_failure(failure_kind::conflict, "stream_closed", "the stream is closed");
  }
  auto tail = tables_.tail(**row);
  if (!tail) return std::move(tail).error();
  std::int64_t seq = *tail + 1;
  if (auto s = tables_.insert_message(stream_id, seq, data); !s) return std::move(s).error();
  effects_.push_back({stream_effect::kind::append, stream_id, std::nullopt,
                      static_cast<std::uint64_t>(*tail),
                      std::make_shared<const std::string>(std::move(data))});
  return static_cast<std::uint64_t>(seq);
}

status write_context::close(std::int64_t stream_id) {
  if (auto s = tables_.set_closed(stream_id, std::nullopt); !s) return s;
  effects_.push_back({stream_effect::kind::close, stream_id, std::nullopt, 0, nullptr});
  return ok_v;
}

result<std::optional<std::int64_t>> write_context::find_stream(std::string_view path) {
  auto row = tables_.find_by_path(path);
  if (!row) return std::move(row).error();
  if (!*row || (*row)->state != sqlite::stream_row_state::live) {
    return std::optional<std::int64_t>();
  }
  return std::optional<std::int64_t>((*row)->id);
}

result<stream_offset> write_context::next_offset(std::int64_t stream_id) {
  auto row = tables_.find_by_id(stream_id);
  if (!row) return std::move(row).error();
  if (!*row) {
    return make_failure(failure_kind::not_found, "stream_not_found",
                        "stream " + std::to_string(stream_id) + " does not exist");
  }
  auto tail = tables_.tail(**row);
  if (!tail) return std::move(tail).error();
  return stream_offset{offset_prefix((*row)->incarnation), static_cast<std::uint64_t>(*tail) + 1};
}

status write_context::prune(std::int64_t stream_id, std::uint64_t upto) {
  if (auto s = tables_.prune_upto(stream_id, static_cast<std::int64_t>(upto)); !s) return s;
  effects_.push_back({stream_effect::kind::prune, stream_id, std::nullopt, upto, nullptr});
  return ok_v;
}

result<std::vector<sqlite::message_row>> write_context::oldest_messages(std::int64_t stream_id,
                                                                        std::size_t limit) {
  auto row = tables_.find_by_id(stream_id);
  if (!row) return std::move(row).error();
  if (!*row) return std::vector<sqlite::message_row>();
  std::int64_t after = std::max((*row)->pruned_upto, (*row)->base_seq);
  auto rows =
      tables_.read_messages(stream_id, after, after + static_cast<std::int64_t>(limit), SIZE_MAX);
  return rows;
}

status write_context::checkpoint(std::string_view point) {
  return engine_.inject(point, "");
}

std::uint64_t write_context::offset_prefix(std::int64_t incarnation) const {
  return offset_prefix_for(database_epoch_, static_cast<std::uint64_t>(incarnation));
}

}  // namespace ordo
