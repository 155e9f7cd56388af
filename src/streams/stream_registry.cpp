// The registry: the published stream records, by id and by path, which readers and the HTTP
// layer consult without touching the database. build_registry() loads it from the rows
// load_streams() found; make_record() turns a stream row into its record (configuration, offset
// prefix, read plan); the writer adds and removes records as jobs publish (stream_operations.cpp).
//
// Thread safety: by_id_ and by_path_ are guarded by registry_mu_; lookups may run on any
// thread, changes run on the writer thread (or in open()).
// Invariants: (1) by_id_ and by_path_ hold the same records: a live or soft-deleted stream is in
//                 both, a removed one in neither;
//             (2) a record enters the registry only after the transaction that created its
//                 stream is durable;
//             (3) a fork's source is registered before the fork (ids ascend), so its read plan
//                 can be built from the source's record;
//             (4) managed streams (paths under options_.managed_stream_prefix) are in the
//                 registry but not counted or listed as clients' streams.
#include "streams/stream_engine.hpp"

#include <algorithm>

#include "streams/stream_engine_internal.hpp"

namespace ordo {

using engine_internal::media_type_of;

std::pair<stream_engine::record_map, stream_engine::path_map> stream_engine::build_registry(
    const std::vector<storage::loaded_stream>& streams) {
  record_map by_id;
  path_map by_path;
  // Ids ascend, so a fork's source is always registered before the fork.
  for (const auto& s : streams) {
    auto record = make_record(s.row, s.tail, s.row.closed, &by_id);
    if (s.row.state == storage::stream_row_state::soft_deleted) {
      record->publish_lifecycle(stream_lifecycle::soft_deleted);
    }
    by_id.emplace(s.row.id, record);
    by_path.emplace(s.row.path, record);
  }
  return std::pair{std::move(by_id), std::move(by_path)};
}

bool stream_engine::is_managed_path(std::string_view path) const {
  return path.starts_with(options_.managed_stream_prefix);
}

std::size_t stream_engine::stream_count() const {
  mutex_lock lock(registry_mu_);
  return static_cast<std::size_t>(
      std::count_if(by_path_.begin(), by_path_.end(),
                    [this](const auto& e) { return !is_managed_path(e.first); }));
}

std::vector<std::shared_ptr<stream_record>> stream_engine::client_streams() const {
  std::vector<std::shared_ptr<stream_record>> out;
  {
    mutex_lock lock(registry_mu_);
    out.reserve(by_path_.size());
    for (const auto& [path, record] : by_path_) {
      if (!is_managed_path(path)) out.push_back(record);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->config().path < b->config().path; });
  return out;
}

std::shared_ptr<stream_record> stream_engine::find(std::string_view path) const {
  mutex_lock lock(registry_mu_);
  auto it = by_path_.find(std::string(path));
  return it == by_path_.end() ? nullptr : it->second;
}

std::shared_ptr<stream_record> stream_engine::find_by_id(stream_id id) const {
  mutex_lock lock(registry_mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<stream_record> stream_engine::make_record(const storage::stream_row& row,
                                                          stream_position tail, bool closed,
                                                          const record_map* building,
                                                          storage::stream_store* store) {
  stream_config c;
  c.id = row.id;
  c.path = row.path;
  c.content_type = row.content_type;
  c.media_type = media_type_of(row.content_type);
  c.payload = is_json_media_type(c.media_type) ? payload_mode::json : payload_mode::bytes;
  c.sse = is_json_media_type(c.media_type)       ? sse_mode::json
          : is_sse_text_media_type(c.media_type) ? sse_mode::text
                                                 : sse_mode::base64;
  c.incarnation = row.incarnation;
  c.offset_prefix = offset_prefix_for(database_epoch_, c.incarnation);
  c.generation = generation_;
  c.created_at_ms = row.created_at_ms;
  c.ttl_seconds = row.ttl_seconds;
  c.expires_at_ms = row.expires_at_ms;
  c.fork_source_id = row.fork_source_id;
  c.base_seq = row.base_seq;
  c.fork_sub_offset = row.fork_sub_offset;
  if (row.fork_source_id) c.inherited = inherited_segments(row, c.base_seq, building, store);
  published_state state{tail, closed, stream_lifecycle::live, row.pruned_upto};
  return std::make_shared<stream_record>(std::move(c), state, row.last_access_ms,
                                         options_.tail_cache_bytes);
}

}  // namespace ordo
