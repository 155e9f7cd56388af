#include "streams/stream_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include <unistd.h>

#include "streams/content_type.hpp"
#include "streams/json_batch.hpp"

namespace ordo {

namespace {

constexpr std::string_view k_default_content_type = "application/octet-stream";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t random_incarnation() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t v = 0;
  while (v == 0)
    v = rng();
  return static_cast<std::int64_t>(v);
}

std::string media_type_of(std::string_view content_type) {
  return normalized_media_type(content_type).value_or(std::string(content_type));
}

// The inode of the file at `path`, or 0 when there is none.
ino_t inode_at(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

// A stream leaving the registry (deleted, expired, or purged by a cascade).
struct removal {
  std::int64_t id = 0;
  stream_lifecycle lifecycle = stream_lifecycle::removed;
};

struct stream_engine::create_job {
  create_request req;
  create_callback done;
  create_result res;
  // Effects, published after commit.
  std::optional<sqlite::stream_row> created;
  std::vector<read_segment> inherited;
  std::vector<std::pair<std::uint64_t, message_ptr>> messages;  // (position, data)
  std::vector<removal> removals;
};

struct stream_engine::append_job {
  append_request req;
  append_callback done;
  append_result res;
  std::int64_t stream_id = 0;
  std::uint64_t after = 0;
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

// ---- write_context ---------------------------------------------------------------------------

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

// ---- open / stop -----------------------------------------------------------------------------

stream_engine::stream_engine(stream_engine_options options) : options_(std::move(options)) {}

result<std::unique_ptr<stream_engine>> stream_engine::open(stream_engine_options options) {
  std::unique_ptr<stream_engine> engine(new stream_engine(std::move(options)));
  engine->syncer_ =
      std::make_unique<sqlite::wal_syncer>([e = engine.get()] { return e->inject("flush", ""); },
                                           [e = engine.get()] {
                                             // The writer may be waiting for this flush or for new
                                             // work, whichever comes first.
                                             { std::lock_guard lock(e->queue_mu_); }
                                             e->queue_cv_.notify_one();
                                           });
  engine->readers_ =
      sqlite::read_pool::start(engine->options_.reader_threads, engine->options_.max_read_queue);
  if (auto s = engine->attach_database(std::nullopt); !s) return std::move(s).error();
  engine->writer_ = std::thread([e = engine.get()] { e->writer_loop(); });
  return engine;
}

stream_engine::~stream_engine() {
  stop();
}

void stream_engine::stop() {
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (readers_) readers_->stop();
}

std::string_view to_string(storage_state s) {
  switch (s) {
    case storage_state::ok:
      return "ok";
    case storage_state::busy:
      return "busy";
    case storage_state::full:
      return "full";
    case storage_state::replaced:
      return "replaced";
    case storage_state::poisoned:
      return "poisoned";
  }
  return "ok";
}

storage_state stream_engine::current_storage_state() const {
  if (poisoned_) return storage_state::poisoned;
  if (file_lost_) return storage_state::replaced;
  return last_batch_state_.load();
}

std::pair<std::size_t, std::size_t> stream_engine::write_queue_depth() const {
  std::lock_guard lock(queue_mu_);
  return {queue_.size(), queued_bytes_};
}

bool stream_engine::writable() const {
  return !poisoned_.load() && !file_lost_.load();
}

std::string stream_engine::write_refusal() const {
  if (poisoned_) return "a commit failed with an unknown outcome; writes are refused until restart";
  if (file_lost_) {
    return "the database file was replaced, moved or deleted (the log says how); writes are "
           "refused until a valid ordo database is at its path or ordo is restarted";
  }
  return "";
}

void stream_engine::on_adopted(std::function<void()> hook) {
  std::lock_guard lock(registry_mu_);
  adopted_hook_ = std::move(hook);
}

stream_engine::file_identity stream_engine::identity_of(const struct stat& st) {
  return file_identity{
      st.st_dev, st.st_ino, st.st_size,
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

void stream_engine::log_file_problem(const std::string& message) {
  if (message == last_file_problem_) return;
  last_file_problem_ = message;
  spdlog::error("{}", message);
}

status stream_engine::check_database_file() {
  const std::string& path = options_.database.path;
  struct stat now {};
  bool present = ::stat(path.c_str(), &now) == 0;
  bool same = present && now.st_dev == file_device_ && now.st_ino == file_inode_;
  if (same && attached_) {
    if (file_lost_) {
      // Moved away and back: the connections never left this file.
      file_lost_ = false;
      last_file_problem_.clear();
      spdlog::warn("the database file '{}' is back at its path; writes resume", path);
    }
    return ok_v;
  }
  if (!file_lost_) {
    file_lost_reason_ =
        !present ? "the database file '" + path + "' was moved or deleted"
                 : "the database file '" + path + "' was replaced by another file (inode " +
                       std::to_string(file_inode_) + " -> " + std::to_string(now.st_ino) + ")";
    file_lost_ = true;
    log_file_problem(file_lost_reason_ +
                     "; refusing writes so nothing is written to a file no longer at its path");
  }
  if (present) adopt_database_file(now);
  if (!file_lost_) return ok_v;
  return make_failure(failure_kind::unavailable, "storage_replaced",
                      file_lost_reason_ +
                          "; writes are refused until a valid ordo database is at the path "
                          "(ordo switches to it) or ordo is restarted");
}

void stream_engine::adopt_database_file(const struct stat& st) {
  const std::string& path = options_.database.path;
  file_identity candidate = identity_of(st);
  if (rejected_file_ == candidate) return;  // unchanged since it failed validation
  auto validate = [&]() -> status {
    if (validated_file_ == candidate) return ok_v;
    if (auto s = sqlite::validate_database_file(path); !s) return s;
    validated_file_ = candidate;
    return ok_v;
  };
  auto reject = [&](const std::string& why) {
    rejected_file_ = candidate;
    file_lost_reason_ = "the database file '" + path + "' was replaced by a file ordo cannot use";
    log_file_problem(why + "; writes stay refused until a valid ordo database is at the path");
  };
  if (attached_) {
    if (auto valid = validate(); !valid) {
      return reject(valid.error().message);
    }
    // The old database's -wal and -shm are still beside the new file, and closing the old
    // connections removes them by name: anything else there would be lost, so refuse.
    for (auto [suffix, ours] : {std::pair{"-wal", wal_inode_}, std::pair{"-shm", shm_inode_}}) {
      ino_t there = inode_at(path + suffix);
      if (there != 0 && there != ours) {
        return reject("the " + std::string(suffix) + " file beside the replaced database '" + path +
                      "' is not the one ordo opened (a replacement must be a single "
                      "file, as `ordo backup` writes); restart ordo to open it as it is");
      }
    }
    spdlog::warn("the database file '{}' was replaced by a valid ordo database; switching to it",
                 path);
    detach_database();
  } else if (auto valid = validate(); !valid) {
    return reject(valid.error().message);
  }
  // SQLite leaves a moved database's -wal and -shm at the path on close (it will not delete
  // what may belong to the file now there), and the new file would read them as its own log.
  // They are the old database's, emptied by the checkpoint at detach: remove them, unless
  // another process still has the old database open; then wait for it to let go.
  if (wal_inode_ != 0 || shm_inode_ != 0) {
    if (sqlite::wal_database_open_elsewhere(path) && inode_at(path + "-shm") == shm_inode_) {
      std::string why = "another process still has the replaced database '" + path +
                        "' open (it holds its -shm file); ordo switches to the new file once "
                        "that process closes it";
      log_file_problem(why);
      readers_->close_connections(
          make_failure(failure_kind::unavailable, "storage_unavailable", why));
      readers_->resume();
      return;
    }
    for (auto [suffix, ours] : {std::pair{"-wal", wal_inode_}, std::pair{"-shm", shm_inode_}}) {
      if (ours != 0 && inode_at(path + suffix) == ours) ::unlink((path + suffix).c_str());
    }
    wal_inode_ = 0;
    shm_inode_ = 0;
  }
  if (auto s = attach_database(candidate); !s) {
    log_file_problem("cannot open the replacement database '" + path + "': " + s.error().message);
    readers_->close_connections(make_failure(
        failure_kind::unavailable, "storage_unavailable",
        "the database file was replaced and the new one cannot be opened: " + s.error().message));
    readers_->resume();
    return;
  }
}

void stream_engine::detach_database() {
  complete_pending();
  readers_->pause();
  readers_->close_connections(make_failure(failure_kind::unavailable, "storage_switching",
                                           "the server is switching to a new database file; "
                                           "retry shortly"));
  // Everything the old WAL holds goes into the old file (gone, or moved elsewhere and then
  // complete), and the -wal is left empty. Readers are closed, so nothing holds it back.
  if (write_db_) {
    auto busy = write_db_->query_int64("PRAGMA wal_checkpoint(TRUNCATE)");
    if (!busy || busy->value_or(0) != 0) {
      spdlog::warn("the checkpoint of the replaced database was incomplete: {}",
                   busy ? "another process is reading it" : busy.error().message);
    }
  }
  syncer_->detach();
  // Statements before their connection.
  write_statements_.reset();
  tables_.reset();
  write_db_.reset();
  attached_ = false;
}

status stream_engine::attach_database(std::optional<file_identity> adopting) {
  const std::string& path = options_.database.path;
  auto opened = sqlite::open_write_connection(options_.database);
  if (!opened) return std::move(opened).error();
  // On the heap from the start: the prepared tables refer to it.
  auto db = std::make_unique<sqlite::connection>(std::move(*opened));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_failure(failure_kind::unavailable, "storage_unavailable",
                        "cannot stat the database file '" + path + "'");
  }
  if (adopting && (st.st_dev != adopting->device || st.st_ino != adopting->inode)) {
    return make_failure(failure_kind::unavailable, "storage_unavailable",
                        "the file changed again while it was being opened");
  }
  auto restored = sqlite::renew_epoch_if_restored(*db);
  if (!restored) return std::move(restored).error();
  if (*restored) {
    spdlog::warn(
        "database restored from a backup taken at {}: it gets a new epoch, so clients "
        "holding offsets from before re-read from the start",
        **restored);
  } else if (adopting) {
    // Offsets issued from the old file must not be taken for positions in this one.
    if (auto s = sqlite::renew_database_epoch(*db); !s) return s;
  }
  auto epoch = sqlite::load_or_create_database_epoch(*db);
  if (!epoch) return std::move(epoch).error();
  auto tables = sqlite::stream_tables::prepare(*db);
  if (!tables) return std::move(tables).error();
  auto streams = tables->load_streams();
  if (!streams) return std::move(streams).error();
  // --sync full in WAL mode: commits return unflushed and the syncer flushes the -wal behind
  // them (wal_syncer.hpp); migrations and the epoch above were committed with a full sync.
  auto journal = db->query_text("PRAGMA journal_mode");
  if (!journal) return std::move(journal).error();
  bool pipelined = options_.database.sync == sqlite::sync_mode::full && *journal == "wal";
  if (pipelined) {
    if (auto s = db->exec("PRAGMA synchronous=NORMAL"); !s) return s;
  }
  std::uint64_t generation = generation_ + 1;
  readers_->pause();  // no-op unless the readers were let go on refusing while detached
  if (auto s = readers_->open_connections(options_.database, generation, *epoch); !s) {
    readers_->close_connections(s.error());
    return s;
  }

  // Nothing fails from here on: switch.
  write_db_ = std::move(db);
  tables_ = std::make_unique<sqlite::stream_tables>(std::move(*tables));
  write_statements_ = std::make_unique<sqlite::statement_cache>(*write_db_);
  database_epoch_ = *epoch;
  generation_ = generation;
  file_device_ = st.st_dev;
  file_inode_ = st.st_ino;
  wal_inode_ = inode_at(path + "-wal");
  shm_inode_ = inode_at(path + "-shm");
  attached_ = true;
  if (pipelined) syncer_->attach(path + "-wal");
  auto [by_id, by_path] = build_registry(*streams);
  record_map old;
  std::function<void()> hook;
  {
    std::lock_guard lock(registry_mu_);
    old = std::exchange(by_id_, std::move(by_id));
    by_path_ = std::move(by_path);
    hook = adopted_hook_;
  }
  // Live readers of the old records end; their clients resume against the new file, where
  // the new epoch answers their old offsets with 410 and a re-read.
  for (auto& [id, record] : old)
    record->publish_lifecycle(stream_lifecycle::replaced);
  readers_->resume();
  file_lost_ = false;
  poisoned_ = false;
  purge_pending_ = true;
  rejected_file_.reset();
  validated_file_.reset();
  last_file_problem_.clear();
  if (adopting) {
    spdlog::warn(
        "switched to the replacement database '{}': streams={} database_epoch={:016x}; clients "
        "resuming with offsets from the old file get 410 and re-read",
        path, streams->size(), database_epoch_.load());
    if (hook) hook();
  } else {
    spdlog::info("storage open path={} streams={} database_epoch={:016x}", path, streams->size(),
                 database_epoch_.load());
  }
  return ok_v;
}

std::pair<stream_engine::record_map, stream_engine::path_map> stream_engine::build_registry(
    const std::vector<sqlite::loaded_stream>& streams) {
  record_map by_id;
  path_map by_path;
  // Ids ascend, so a fork's source is always registered before the fork.
  for (const auto& s : streams) {
    auto record = make_record(s.row, static_cast<std::uint64_t>(s.tail), s.row.closed, &by_id);
    if (s.row.state == sqlite::stream_row_state::soft_deleted) {
      record->publish_lifecycle(stream_lifecycle::soft_deleted);
    }
    by_id.emplace(s.row.id, record);
    by_path.emplace(s.row.path, record);
  }
  return std::pair{std::move(by_id), std::move(by_path)};
}

writer_stats stream_engine::stats() const {
  return writer_stats{transactions_committed_.load(), jobs_committed_.load(),
                      transactions_failed_.load()};
}

status stream_engine::inject(std::string_view point, std::string_view path) const {
  if (!options_.fault_injector) return ok_v;
  return options_.fault_injector(point, path);
}

std::size_t stream_engine::stream_count() const {
  std::lock_guard lock(registry_mu_);
  // Managed streams (session events, the change feed) live under reserved "__" paths.
  return static_cast<std::size_t>(std::count_if(
      by_path_.begin(), by_path_.end(), [](const auto& e) { return e.first.rfind("__", 0) != 0; }));
}

std::vector<std::shared_ptr<stream_record>> stream_engine::client_streams() const {
  std::vector<std::shared_ptr<stream_record>> out;
  {
    std::lock_guard lock(registry_mu_);
    out.reserve(by_path_.size());
    for (const auto& [path, record] : by_path_) {
      if (path.rfind("__", 0) != 0) out.push_back(record);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->config().path < b->config().path; });
  return out;
}

std::shared_ptr<stream_record> stream_engine::find(std::string_view path) const {
  std::lock_guard lock(registry_mu_);
  auto it = by_path_.find(std::string(path));
  return it == by_path_.end() ? nullptr : it->second;
}

std::shared_ptr<stream_record> stream_engine::find_by_id(std::int64_t id) const {
  std::lock_guard lock(registry_mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<stream_record> stream_engine::make_record(const sqlite::stream_row& row,
                                                          std::uint64_t tail, bool closed,
                                                          const record_map* building) {
  stream_config c;
  c.id = row.id;
  c.path = row.path;
  c.content_type = row.content_type;
  c.media_type = media_type_of(row.content_type);
  c.payload = is_json_media_type(c.media_type) ? payload_mode::json : payload_mode::bytes;
  c.sse = is_json_media_type(c.media_type)       ? sse_mode::json
          : is_sse_text_media_type(c.media_type) ? sse_mode::text
                                                 : sse_mode::base64;
  c.incarnation = static_cast<std::uint64_t>(row.incarnation);
  c.offset_prefix = offset_prefix_for(database_epoch_, c.incarnation);
  c.generation = generation_;
  c.created_at_ms = row.created_at_ms;
  c.ttl_seconds = row.ttl_seconds;
  c.expires_at_ms = row.expires_at_ms;
  c.fork_source_id = row.fork_source_id;
  c.base_seq = static_cast<std::uint64_t>(row.base_seq);
  c.fork_sub_offset = static_cast<std::uint64_t>(row.fork_sub_offset);
  if (row.fork_source_id) c.inherited = inherited_segments(row, c.base_seq, building);
  published_state state{tail, closed, stream_lifecycle::live,
                        static_cast<std::uint64_t>(row.pruned_upto)};
  return std::make_shared<stream_record>(std::move(c), state, row.last_access_ms,
                                         options_.tail_cache_bytes);
}

// The read plan for positions <= base_seq of a fork of `row.fork_source_id`, from the source's
// own plan (registered records at startup, or rows within the writer's transaction).
std::vector<read_segment> stream_engine::inherited_segments(const sqlite::stream_row& row,
                                                            std::uint64_t base_seq,
                                                            const record_map* building) const {
  std::vector<read_segment> out;
  if (!row.fork_source_id || base_seq == 0) return out;
  std::int64_t source_id = *row.fork_source_id;
  std::vector<read_segment> source_plan;
  std::uint64_t source_base = 0;
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
  } else if (tables_) {
    auto source_row = tables_->find_by_id(source_id);
    if (source_row && *source_row) {
      source_base = static_cast<std::uint64_t>((*source_row)->base_seq);
      source_plan = inherited_segments(**source_row, source_base);
    }
  }
  for (const read_segment& s : source_plan) {
    if (s.after >= base_seq) break;
    out.push_back({s.stream_id, s.after, std::min(s.upto, base_seq)});
  }
  if (base_seq > source_base) out.push_back({source_id, source_base, base_seq});
  return out;
}

// ---- submission ------------------------------------------------------------------------------

bool stream_engine::enqueue(job j, std::size_t bytes) {
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return false;
    // Both bounds admit one job into an empty queue, so an oversized body is never starved.
    if (!queue_.empty() && (queued_bytes_ + bytes > options_.max_write_queue_bytes ||
                            queue_.size() >= options_.max_write_queue_jobs)) {
      return false;
    }
    queue_.emplace_back(j, bytes);
    queued_bytes_ += bytes;
  }
  queue_cv_.notify_one();
  return true;
}

void stream_engine::create(create_request request, create_callback done) {
  std::size_t bytes = request.initial_data ? request.initial_data->size() : 0;
  auto* j = new create_job{std::move(request), std::move(done), {}, {}, {}, {}, {}};
  if (!enqueue(j, bytes)) {
    create_result r;
    r.status = create_status::failed;
    r.error = make_failure(failure_kind::unavailable, "write_queue_full",
                           "the server is busy writing; retry shortly");
    auto cb = std::move(j->done);
    delete j;
    cb(std::move(r));
  }
}

void stream_engine::append(append_request request, append_callback done) {
  std::size_t bytes = request.data ? request.data->size() : 0;
  auto* j = new append_job{std::move(request), std::move(done), {}, 0, 0, nullptr, false, false};
  if (!enqueue(j, bytes)) {
    append_result r;
    r.status = append_status::overloaded;
    r.error = make_failure(failure_kind::unavailable, "write_queue_full",
                           "the server has too much data waiting to be written; retry shortly");
    auto cb = std::move(j->done);
    delete j;
    cb(std::move(r));
  }
}

void stream_engine::remove(std::string path, delete_callback done) {
  auto* j = new delete_job{std::move(path), std::move(done), {}, {}};
  if (!enqueue(j, 0)) {
    delete_result r;
    r.status = delete_status::failed;
    r.error = make_failure(failure_kind::unavailable, "write_queue_full",
                           "the server is busy writing; retry shortly");
    auto cb = std::move(j->done);
    delete j;
    cb(std::move(r));
  }
}

bool stream_engine::submit(write_job job) {
  std::size_t bytes = job.bytes;
  auto* j = new custom_job{std::move(job), {}};
  if (!enqueue(j, bytes)) {
    delete j;
    return false;
  }
  return true;
}

bool stream_engine::read_with(std::function<void(sqlite::read_context&)> task,
                              std::function<void(const failure&)> refuse) {
  return readers_->submit(std::move(task), std::move(refuse));
}

status stream_engine::await_durable() {
  return syncer_->wait_for_begun();
}

void stream_engine::expire_soon(const std::shared_ptr<stream_record>&) {
  // The maintenance pass finds every expired stream; wake the writer so it runs now. Requests
  // coalesce: a storm of reads of an expired stream queues one pass, not one per read.
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_ || maintenance_requested_) return;
    maintenance_requested_ = true;
  }
  queue_cv_.notify_one();
}

// ---- reads -----------------------------------------------------------------------------------

std::optional<read_chunk> stream_engine::read_in_memory(const stream_record& stream,
                                                        std::uint64_t after) const {
  std::uint64_t upto = stream.state().tail;
  if (after >= upto) return read_chunk{after, {}, nullptr};
  if (after < stream.config().base_seq) return std::nullopt;  // inherited from a fork source
  return stream.read_cached(after, upto, options_.read_chunk_bytes);
}

void stream_engine::read(std::shared_ptr<stream_record> stream, std::uint64_t after,
                         read_callback done) {
  const stream_config& c = stream->config();
  if (auto chunk = read_in_memory(*stream, after)) {
    done(read_result{std::move(chunk), {}});
    return;
  }
  // The tail may have moved on since read_in_memory() looked: the plan reads up to it as it is
  // now, which is never less.
  std::uint64_t upto = stream->state().tail;
  // The plan: inherited segments, then the stream's own messages, clipped to (after, upto].
  std::vector<read_segment> plan;
  for (const read_segment& s : c.inherited) {
    if (s.upto <= after) continue;
    plan.push_back({s.stream_id, std::max(s.after, after), std::min(s.upto, upto)});
  }
  if (upto > c.base_seq) plan.push_back({c.id, std::max(c.base_seq, after), upto});
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
        // Whether retention removed `position`: published, or committed and not yet published
        // (a prune is published after its flush, but readers see it once committed).
        auto pruned_at = [&](std::uint64_t position) {
          auto record = weak.lock();
          if (record && record->state().pruned_upto >= position) return true;
          auto committed = reader.pruned_upto(own_id);
          return committed && static_cast<std::uint64_t>(*committed) >= position;
        };
        read_chunk chunk;
        chunk.after = after;
        std::size_t bytes = 0;
        std::uint64_t expected = after + 1;
        for (const read_segment& s : plan) {
          if (bytes >= max_bytes) break;
          auto rows = reader.read(s.stream_id, static_cast<std::int64_t>(s.after),
                                  static_cast<std::int64_t>(s.upto), max_bytes - bytes);
          if (!rows) {
            (*shared_done)(read_result{std::nullopt, std::move(rows).error()});
            return;
          }
          for (auto& row : *rows) {
            if (static_cast<std::uint64_t>(row.seq) != expected) {
              if (pruned_at(expected)) {
                // Retention removed these positions while the read was queued.
                (*shared_done)(read_result{
                    std::nullopt,
                    make_failure(failure_kind::gone, "offset_pruned",
                                 "the events from position " + std::to_string(expected) +
                                     " were removed by retention while this read was waiting")});
                return;
              }
              (*shared_done)(read_result{
                  std::nullopt,
                  make_failure(failure_kind::internal, "stream_data_missing",
                               "stream data is missing at position " + std::to_string(expected))});
              return;
            }
            ++expected;
            bytes += row.data.size();
            chunk.messages.push_back(std::make_shared<const std::string>(std::move(row.data)));
          }
          if (expected <= s.upto && bytes < max_bytes) break;  // purged underneath the read
        }
        if (chunk.messages.empty()) {
          if (pruned_at(after + 1)) {
            (*shared_done)(read_result{
                std::nullopt,
                make_failure(failure_kind::gone, "offset_pruned",
                             "the events after position " + std::to_string(after) +
                                 " were removed by retention while this read was waiting")});
            return;
          }
        }
        (*shared_done)(read_result{std::move(chunk), {}});
      },
      [shared_done](const failure& f) {
        (*shared_done)(read_result{std::nullopt, f});
      });
  if (!queued) {
    (*shared_done)(read_result{std::nullopt,
                               make_failure(failure_kind::unavailable, "read_queue_full",
                                            "too many catch-up reads are waiting; retry shortly")});
  }
}

// ---- the writer ------------------------------------------------------------------------------

// How often the idle writer checks that the database file is still the one it opened (it also
// checks before every batch); /ready reports a lost file within this, well under a second.
constexpr std::chrono::milliseconds k_file_check_interval{250};

void stream_engine::writer_loop() {
  using clock = std::chrono::steady_clock;
  auto next_maintenance = clock::now() + options_.maintenance_interval;
  auto next_file_check = clock::now();
  for (;;) {
    std::vector<job> batch;
    bool maintenance_requested = false;
    bool stopping = false;
    if (clock::now() >= next_file_check) {
      // Also while idle, so /ready reports a lost file within a second, before any write.
      (void)check_database_file();
      next_file_check = clock::now() + k_file_check_interval;
    }
    {
      std::unique_lock lock(queue_mu_);
      // With a batch waiting for its flush, new work runs while the disk flushes; the batch
      // is completed as soon as its flush is done, or after the new work's transaction.
      queue_cv_.wait_until(lock, std::min(next_maintenance, next_file_check), [&] {
        return stopping_ || maintenance_requested_ || !queue_.empty() ||
               (pending_ && syncer_->settled(pending_->commit_number));
      });
      stopping = stopping_;
      maintenance_requested = std::exchange(maintenance_requested_, false);
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.max_batch_jobs) {
        auto& [j, b] = queue_.front();
        if (!batch.empty() && bytes + b > options_.max_batch_bytes) break;
        bytes += b;
        queued_bytes_ -= b;
        batch.push_back(j);
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      run_batch(batch);
      merge_log(false);
    } else {
      complete_pending();
    }
    auto now = clock::now();
    if (maintenance_requested || now >= next_maintenance || stopping) {
      run_maintenance();
      next_maintenance = now + options_.maintenance_interval;
    }
    if (stopping) {
      complete_pending();
      std::lock_guard lock(queue_mu_);
      if (queue_.empty()) break;
      continue;
    }
    if (purge_pending_) {
      std::lock_guard lock(queue_mu_);
      if (!queue_.empty()) continue;
    }
    if (purge_pending_) purge_pending_ = run_purge_step();
  }
  merge_log(true);
  checkpoint_wal();
}

void stream_engine::merge_log(bool all) {
  if (!tables_ || poisoned_ || file_lost_) return;  // detached, or writes are refused
  std::int64_t rows = tables_->log_rows();
  if (rows == 0) return;
  if (!all) {
    bool full = rows >= static_cast<std::int64_t>(options_.log_merge_rows) ||
                tables_->log_bytes() >= options_.log_merge_bytes;
    if (!full || rows < merge_retry_rows_) return;
  }
  status s = tables_->begin_immediate();
  if (s) s = inject("merge", "");
  if (s) s = tables_->merge_log();
  if (s) {
    // Nothing waits for this commit: a later flush covers it, as the flush at stop does.
    std::uint64_t number = 0;
    s = all ? commit_now() : commit_transaction(number);
  }
  if (!s) {
    (void)tables_->rollback();
    merge_retry_rows_ = rows + static_cast<std::int64_t>(options_.log_merge_rows);
    spdlog::warn("moving the append log ({} messages) into the stream table failed: {}", rows,
                 s.error().message);
    return;
  }
  merge_retry_rows_ = 0;
}

void stream_engine::checkpoint_wal() {
  // After a commit of unknown outcome the WAL is left to the recovery of the next open.
  if (poisoned_ || !write_db_) return;
  // TRUNCATE copies every committed page into ordo.db and empties ordo.db-wal, so a stopped
  // server leaves one self-contained file (a plain copy of it is a complete backup).
  auto busy = write_db_->query_int64("PRAGMA wal_checkpoint(TRUNCATE)");
  if (!busy) {
    spdlog::warn("WAL checkpoint at stop failed: {}", busy.error().message);
  } else if (busy->value_or(0) != 0) {
    spdlog::warn("WAL checkpoint at stop was incomplete: another connection is still reading");
  }
}

namespace {

// Removes a stream inside the writer's transaction: soft-deletes it while forks read through
// it, otherwise hands its data to the janitor and cascades to soft-deleted sources that no
// longer have forks.
result<std::vector<removal>> remove_stream_tx(sqlite::stream_tables& t,
                                              const sqlite::stream_row& row) {
  std::vector<removal> out;
  auto children = t.has_children(row.id);
  if (!children) return std::move(children).error();
  if (*children) {
    if (auto s = t.set_soft_deleted(row.id); !s) return std::move(s).error();
    out.push_back({row.id, stream_lifecycle::soft_deleted});
    return out;
  }
  if (auto s = t.mark_purging(row.id); !s) return std::move(s).error();
  out.push_back({row.id, stream_lifecycle::removed});
  std::optional<std::int64_t> source = row.fork_source_id;
  while (source) {
    auto source_row = t.find_by_id(*source);
    if (!source_row) return std::move(source_row).error();
    if (!*source_row || (*source_row)->state != sqlite::stream_row_state::soft_deleted) break;
    auto more = t.has_children(*source);
    if (!more) return std::move(more).error();
    if (*more) break;
    if (auto s = t.mark_purging(*source); !s) return std::move(s).error();
    out.push_back({*source, stream_lifecycle::removed});
    source = (*source_row)->fork_source_id;
  }
  return out;
}

bool config_matches(const sqlite::stream_row& existing, const std::string& media_type,
                    const std::optional<std::int64_t>& ttl,
                    const std::optional<std::int64_t>& expires_at, bool closed) {
  return media_type_of(existing.content_type) == media_type && existing.ttl_seconds == ttl &&
         existing.expires_at_ms == expires_at && existing.closed == closed;
}

}  // namespace

void stream_engine::run_batch(std::vector<job>& batch) {
  std::vector<bool> ok(batch.size(), false);
  committed_batch b{std::move(batch), std::move(ok), std::nullopt, 0};
  std::optional<failure>& batch_failure = b.error;
  if (auto s = inject("batch.begin", ""); !s) {
    batch_failure = std::move(s).error();
  } else if (poisoned_) {
    batch_failure = make_failure(
        failure_kind::unavailable, "storage_poisoned",
        "an earlier commit failed with an unknown outcome; writes are refused until ordo is "
        "restarted and the database is checked");
  } else if (auto s = check_database_file(); !s) {
    batch_failure = std::move(s).error();
  } else if (auto s = tables_->begin_immediate(); !s) {
    batch_failure = std::move(s).error();
  }

  if (!batch_failure) {
    for (std::size_t i = 0; i < b.jobs.size(); ++i) {
      // The batch before this one is answered as soon as its flush is done, not only after
      // this one commits: its writers wait no longer than the disk.
      complete_pending_if_flushed();
      if (auto s = tables_->savepoint(); !s) {
        batch_failure = std::move(s).error();
        break;
      }
      b.ok[i] = std::visit(
          [&](auto* j) -> bool {
            using T = std::remove_pointer_t<decltype(j)>;
            if constexpr (std::is_same_v<T, create_job>) {
              return run_create(*j);
            } else if constexpr (std::is_same_v<T, append_job>) {
              return run_append(*j);
            } else if constexpr (std::is_same_v<T, delete_job>) {
              return run_delete(*j);
            } else {
              write_context ctx(*this, *write_db_, *write_statements_, *tables_, database_epoch_,
                                wall_ms(), j->effects);
              status kept = j->job.run(ctx);
              if (kept) return true;
              j->refused = std::move(kept).error();
              j->effects.clear();
              return false;
            }
          },
          b.jobs[i]);
      auto s = b.ok[i] ? tables_->release_savepoint() : tables_->rollback_to_savepoint();
      if (!b.ok[i] && s) s = tables_->release_savepoint();
      if (!s) {
        batch_failure = std::move(s).error();
        break;
      }
    }
    if (!batch_failure) {
      status s = inject("commit", "");
      if (s) s = commit_transaction(b.commit_number);
      if (!s) {
        batch_failure = std::move(s).error();
        poison_if_unknown(*batch_failure);  // an injected failure too
      }
    }
    if (batch_failure) (void)tables_->rollback();
  }

  // The batch before this one was flushed while this one ran: it goes first, in order.
  complete_pending();
  if (batch_failure || !syncer_->attached()) {
    complete_batch(b);
  } else {
    pending_ = std::move(b);
  }
}

void stream_engine::complete_pending_if_flushed() {
  if (pending_ && syncer_->settled(pending_->commit_number)) complete_pending();
}

void stream_engine::complete_pending() {
  if (!pending_) return;
  committed_batch b = std::move(*pending_);
  pending_.reset();
  complete_batch(b);
}

void stream_engine::complete_batch(committed_batch& b) {
  std::optional<failure>& batch_failure = b.error;
  if (!batch_failure && b.commit_number != 0) {
    if (auto s = await_flush(b.commit_number); !s) batch_failure = std::move(s).error();
  }
  if (batch_failure) {
    ++transactions_failed_;
    if (batch_failure->code == sqlite::k_storage_busy) {
      last_batch_state_ = storage_state::busy;
    } else if (batch_failure->code == sqlite::k_storage_full) {
      last_batch_state_ = storage_state::full;
    }
    spdlog::error("write batch of {} jobs failed: {}", b.jobs.size(), batch_failure->message);
  } else {
    ++transactions_committed_;
    jobs_committed_ += b.jobs.size();
    last_batch_state_ = storage_state::ok;
    metrics_.batch_jobs.observe(b.jobs.size());
  }
  for (std::size_t i = 0; i < b.jobs.size(); ++i) {
    std::visit(
        [&](auto* j) {
          using T = std::remove_pointer_t<decltype(j)>;
          if constexpr (std::is_same_v<T, create_job>) {
            if (batch_failure) {
              j->res.status = create_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i]) {
              publish_create(*j);
            }
            j->done(std::move(j->res));
          } else if constexpr (std::is_same_v<T, append_job>) {
            if (batch_failure) {
              j->res.status = append_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i] && j->wrote) {
              publish_append(*j);
            }
            j->done(std::move(j->res));
          } else if constexpr (std::is_same_v<T, delete_job>) {
            if (batch_failure) {
              j->res.status = delete_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i]) {
              publish_removals(j->removals);
            }
            j->done(std::move(j->res));
          } else {
            if (!batch_failure && b.ok[i]) publish_effects(j->effects);
            j->job.done(batch_failure ? batch_failure : j->refused);
          }
          delete j;
        },
        b.jobs[i]);
  }
  // Readers last: the writers' answers are already on their way, and a stream's readers are
  // woken once per batch however many of its jobs it held.
  if (deferred_wakes_.empty()) return;
  std::vector<std::shared_ptr<stream_record>> woken;
  woken.swap(deferred_wakes_);
  run_wake_rounds(std::move(woken));
}

// One wake round per record; records whose state changed again meanwhile get their next round
// in a new task, queued behind whatever else the executor has to do.
void stream_engine::run_wake_rounds(std::vector<std::shared_ptr<stream_record>> records) {
  auto wake = [this, records = std::move(records)] {
    std::vector<std::shared_ptr<stream_record>> again;
    for (const auto& record : records) {
      if (record->wake_round()) again.push_back(record);
    }
    if (!again.empty()) run_wake_rounds(std::move(again));
  };
  std::unique_lock lock(wake_executor_mu_);
  if (wake_executor_) {
    wake_executor_(std::move(wake));
    return;
  }
  lock.unlock();
  wake();
}

void stream_engine::set_wake_executor(wake_executor run) {
  std::lock_guard lock(wake_executor_mu_);
  wake_executor_ = std::move(run);
}

status stream_engine::commit_transaction(std::uint64_t& number) {
  number = syncer_->begin_commit();
  auto started = std::chrono::steady_clock::now();
  status s = tables_->commit();
  metrics_.commit_durations.observe(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()));
  syncer_->request(number);  // whatever the outcome: readers waiting for it must not hang
  if (!s) poison_if_unknown(s.error());
  return s;
}

void stream_engine::poison_if_unknown(const failure& f) {
  if (f.code != sqlite::k_storage_io_error || poisoned_.exchange(true)) return;
  spdlog::critical("commit failed with an unknown outcome ({}); refusing all writes until restart",
                   f.message);
}

status stream_engine::await_flush(std::uint64_t number) {
  status flushed = syncer_->wait(number);
  if (!flushed && !poisoned_.exchange(true)) {
    spdlog::critical("{}; refusing all writes until restart", flushed.error().message);
  }
  return flushed;
}

status stream_engine::commit_now() {
  std::uint64_t number = 0;
  if (auto s = commit_transaction(number); !s) return s;
  return await_flush(number);
}

void stream_engine::publish_removals(const std::vector<removal>& removals) {
  for (const removal& r : removals) {
    std::shared_ptr<stream_record> record;
    {
      std::lock_guard lock(registry_mu_);
      auto it = by_id_.find(r.id);
      if (it == by_id_.end()) continue;
      record = it->second;
      if (r.lifecycle == stream_lifecycle::removed) {
        by_id_.erase(it);
        auto p = by_path_.find(record->config().path);
        if (p != by_path_.end() && p->second == record) by_path_.erase(p);
      }
    }
    record->publish_lifecycle(r.lifecycle);
    if (r.lifecycle == stream_lifecycle::removed) purge_pending_ = true;
  }
}

void stream_engine::publish_effects(const std::vector<stream_effect>& effects) {
  for (const stream_effect& e : effects) {
    if (e.what == stream_effect::kind::create) {
      auto record = make_record(*e.created, 0, false);
      std::lock_guard lock(registry_mu_);
      by_id_[e.stream_id] = record;
      by_path_[e.created->path] = record;
      continue;
    }
    auto record = find_by_id(e.stream_id);
    if (!record) continue;
    if (e.what == stream_effect::kind::append) {
      metrics_.appended_messages.add();
      metrics_.appended_bytes.add(e.message->size());
      record->publish_append(e.after, {e.message}, false);
      defer_wake(std::move(record));
    } else if (e.what == stream_effect::kind::prune) {
      record->publish_pruned(e.after);
    } else {
      record->publish_append(record->state().tail, {}, true);
      defer_wake(std::move(record));
    }
  }
}

// ---- create ----------------------------------------------------------------------------------

bool stream_engine::run_create(create_job& j) {
  create_request& req = j.req;
  create_result& res = j.res;
  auto fail = [&](create_status status, failure f) {
    res.status = status;
    res.error = std::move(f);
    return false;
  };
  auto storage = [&](failure f) { return fail(create_status::failed, std::move(f)); };

  // The fork source decides the defaults of a fork, so resolve it first.
  std::optional<sqlite::stream_row> source;
  std::uint64_t source_tail = 0;
  if (req.fork_source_path) {
    auto s = tables_->find_by_path(*req.fork_source_path);
    if (!s) return storage(std::move(s).error());
    auto record = *s ? find_by_id((*s)->id) : nullptr;
    if (!*s || (record && record->expired_at(req.now_ms))) {
      return fail(
          create_status::source_not_found,
          make_failure(failure_kind::not_found, "fork_source_not_found",
                       "Stream-Forked-From names no stream: '" + *req.fork_source_path + "'"));
    }
    if ((*s)->state == sqlite::stream_row_state::soft_deleted) {
      return fail(create_status::source_unavailable,
                  make_failure(failure_kind::conflict, "fork_source_deleted",
                               "the fork source '" + *req.fork_source_path +
                                   "' has been deleted and only lives on for its forks"));
    }
    source = std::move(**s);
    auto t = tables_->tail(*source);
    if (!t) return storage(std::move(t).error());
    source_tail = static_cast<std::uint64_t>(*t);
  }

  // Effective configuration, as it would be stored (forks inherit content type and expiry).
  std::string content_type = req.content_type;
  if (content_type.empty()) {
    content_type = source ? source->content_type : std::string(k_default_content_type);
  }
  std::string media_type = media_type_of(content_type);
  std::optional<std::int64_t> ttl = req.ttl_seconds;
  std::optional<std::int64_t> expires_at = req.expires_at_ms;
  if (source && !ttl && !expires_at) {
    ttl = source->ttl_seconds;
    expires_at = source->expires_at_ms;
  }

  // An existing stream at the path: idempotent success, conflict, or an expired predecessor.
  auto existing = tables_->find_by_path(req.path);
  if (!existing) return storage(std::move(existing).error());
  if (*existing) {
    const sqlite::stream_row& e = **existing;
    auto record = find_by_id(e.id);
    if (e.state == sqlite::stream_row_state::live && record && record->expired_at(req.now_ms)) {
      auto removed = remove_stream_tx(*tables_, e);
      if (!removed) return storage(std::move(removed).error());
      j.removals = std::move(*removed);
      if (j.removals.front().lifecycle == stream_lifecycle::soft_deleted) {
        return fail(create_status::soft_deleted,
                    make_failure(failure_kind::conflict, "stream_soft_deleted",
                                 "the stream at this path expired while forks still read "
                                 "through it; the path cannot be reused until they are gone"));
      }
    } else if (e.state == sqlite::stream_row_state::soft_deleted) {
      return fail(create_status::soft_deleted,
                  make_failure(failure_kind::conflict, "stream_soft_deleted",
                               "the stream at this path was deleted while forks still read "
                               "through it; the path cannot be reused until they are gone"));
    } else {
      bool same = config_matches(e, media_type, ttl, expires_at, req.closed);
      bool same_fork = (e.fork_source_id.has_value() == source.has_value()) &&
                       (!source || *e.fork_source_id == source->id);
      if (same_fork && source && req.fork_offset) {
        same_fork = req.fork_offset->position == static_cast<std::uint64_t>(e.base_seq);
      }
      same_fork = same_fork && req.fork_sub_offset == static_cast<std::uint64_t>(e.fork_sub_offset);
      auto tail = tables_->tail(e);
      if (!tail) return storage(std::move(tail).error());
      res.stream = stream_snapshot{
          e.content_type,
          offset_prefix_for(database_epoch_, static_cast<std::uint64_t>(e.incarnation)),
          static_cast<std::uint64_t>(*tail),
          e.closed,
          e.ttl_seconds,
          e.expires_at_ms};
      if (same && same_fork) {
        res.status = create_status::exists;
        return false;  // nothing written
      }
      return fail(create_status::config_conflict,
                  make_failure(failure_kind::conflict, "stream_exists",
                               "a stream already exists at this path with a different "
                               "configuration (content type, TTL, expiry, closure or fork)"));
    }
  }

  sqlite::stream_row row;
  row.path = req.path;
  row.content_type = content_type;
  row.created_at_ms = req.now_ms;
  row.last_access_ms = req.now_ms;
  row.ttl_seconds = ttl;
  row.expires_at_ms = expires_at;
  row.closed = req.closed;
  std::vector<std::string> own;  // the fork's materialized prefix and the initial body

  if (source) {
    if (media_type_of(source->content_type) != media_type) {
      return fail(create_status::config_conflict,
                  make_failure(
                      failure_kind::conflict, "content_type_mismatch",
                      "a fork must have its source's content type '" + source->content_type + "'"));
    }
    std::uint64_t source_prefix =
        offset_prefix_for(database_epoch_, static_cast<std::uint64_t>(source->incarnation));
    std::uint64_t anchor = source_tail;
    if (req.fork_offset) {
      if (!req.fork_offset->is_zero() && req.fork_offset->prefix != source_prefix) {
        return fail(create_status::invalid,
                    make_failure(failure_kind::invalid, "invalid_fork_offset",
                                 "Stream-Fork-Offset was not issued for the source stream"));
      }
      anchor = req.fork_offset->position;
      if (anchor > source_tail) {
        return fail(create_status::invalid,
                    make_failure(failure_kind::invalid, "invalid_fork_offset",
                                 "Stream-Fork-Offset is beyond the source stream's tail " +
                                     format_offset({source_prefix, source_tail})));
      }
    }
    row.incarnation = source->incarnation;
    row.fork_source_id = source->id;
    row.base_seq = static_cast<std::int64_t>(anchor);
    row.fork_sub_offset = static_cast<std::int64_t>(req.fork_sub_offset);
    j.inherited = inherited_segments(row, anchor);

    if (req.fork_sub_offset > 0) {
      // Materialize the first fork_sub_offset bytes (or JSON values) after the anchor as the
      // fork's first own message.
      std::vector<read_segment> plan = inherited_segments(*source, source->base_seq);
      plan.push_back({source->id, static_cast<std::uint64_t>(source->base_seq), source_tail});
      bool json = is_json_media_type(media_type);
      std::uint64_t wanted = req.fork_sub_offset;
      std::string prefix;
      std::uint64_t taken = 0;
      for (const read_segment& s : plan) {
        if (taken >= wanted || s.upto <= anchor) continue;
        auto rows = tables_->read_messages(s.stream_id,
                                           static_cast<std::int64_t>(std::max(s.after, anchor)),
                                           static_cast<std::int64_t>(s.upto), SIZE_MAX);
        if (!rows) return storage(std::move(rows).error());
        for (const auto& m : *rows) {
          if (taken >= wanted) break;
          if (json) {
            for (std::string_view v : split_json_values(m.data)) {
              if (taken >= wanted) break;
              if (!prefix.empty()) prefix.push_back(',');
              prefix.append(v);
              ++taken;
            }
          } else {
            std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(wanted - taken, m.data.size()));
            prefix.append(m.data, 0, n);
            taken += n;
          }
        }
      }
      if (taken < wanted) {
        return fail(create_status::invalid,
                    make_failure(failure_kind::invalid, "invalid_fork_sub_offset",
                                 "Stream-Fork-Sub-Offset " + std::to_string(wanted) +
                                     " goes past the end of the source stream (only " +
                                     std::to_string(taken) + (json ? " values" : " bytes") +
                                     " follow the fork offset)"));
      }
      own.push_back(std::move(prefix));
    }
  } else {
    row.incarnation = random_incarnation();
  }
  if (req.initial_data && !req.initial_data->empty()) own.push_back(std::move(*req.initial_data));

  auto id = tables_->insert_stream(row);
  if (!id) return storage(std::move(id).error());
  row.id = *id;
  if (auto s = inject("create.after_insert", req.path); !s) {
    return storage(std::move(s).error());
  }
  std::uint64_t position = static_cast<std::uint64_t>(row.base_seq);
  for (auto& data : own) {
    ++position;
    if (auto s = tables_->insert_message(row.id, static_cast<std::int64_t>(position), data); !s) {
      return storage(std::move(s).error());
    }
    j.messages.emplace_back(position, std::make_shared<const std::string>(std::move(data)));
  }
  if (req.closed) {
    if (auto s = tables_->set_closed(row.id, std::nullopt); !s)
      return storage(std::move(s).error());
  }
  res.status = create_status::created;
  res.stream = stream_snapshot{
      row.content_type,
      offset_prefix_for(database_epoch_, static_cast<std::uint64_t>(row.incarnation)),
      position,
      req.closed,
      row.ttl_seconds,
      row.expires_at_ms};
  j.created = std::move(row);
  return true;
}

void stream_engine::publish_create(create_job& j) {
  publish_removals(j.removals);
  if (!j.created) return;
  const sqlite::stream_row& row = *j.created;
  std::uint64_t base = static_cast<std::uint64_t>(row.base_seq);
  auto record = make_record(row, base, false);
  {
    std::lock_guard lock(registry_mu_);
    by_id_[row.id] = record;
    by_path_[row.path] = record;
  }
  std::vector<message_ptr> messages;
  for (auto& [position, data] : j.messages) {
    metrics_.appended_messages.add();
    metrics_.appended_bytes.add(data->size());
    messages.push_back(data);
  }
  record->publish_append(base, std::move(messages), row.closed);
  // A reader may have found the record in the registry above before its first messages.
  defer_wake(std::move(record));
}

// ---- append ----------------------------------------------------------------------------------

bool stream_engine::run_append(append_job& j) {
  append_request& req = j.req;
  append_result& res = j.res;
  auto reject = [&](append_status status, failure_kind kind, std::string code,
                    std::string message) {
    res.status = status;
    res.error = make_failure(kind, std::move(code), std::move(message));
    return false;
  };
  auto storage = [&](failure f) {
    res.status = append_status::failed;
    res.error = std::move(f);
    return false;
  };

  auto found = tables_->find_by_path(req.path);
  if (!found) return storage(std::move(found).error());
  auto record = *found ? find_by_id((*found)->id) : nullptr;
  if (!*found || (record && record->expired_at(req.now_ms))) {
    return reject(append_status::not_found, failure_kind::not_found, "stream_not_found",
                  "no stream exists at this path");
  }
  const sqlite::stream_row& row = **found;
  if (row.state == sqlite::stream_row_state::soft_deleted) {
    return reject(append_status::gone, failure_kind::gone, "stream_deleted",
                  "the stream was deleted; only its forks still read its data");
  }
  auto tail = tables_->tail(row);
  if (!tail) return storage(std::move(tail).error());
  res.offset_prefix =
      offset_prefix_for(database_epoch_, static_cast<std::uint64_t>(row.incarnation));
  res.tail = static_cast<std::uint64_t>(*tail);
  res.closed = row.closed;

  // Idempotent producers first: a retry is a duplicate whatever else has changed since.
  bool producer_accepted = false;
  if (req.producer) {
    const producer_claim& p = *req.producer;
    auto state = tables_->find_producer(row.id, p.id);
    if (!state) return storage(std::move(state).error());
    auto gap = [&](std::uint64_t expected) {
      res.expected_seq = expected;
      res.received_seq = p.seq;
      return reject(append_status::producer_seq_gap, failure_kind::conflict, "producer_seq_gap",
                    "Producer-Seq " + std::to_string(p.seq) + " skips ahead: expected " +
                        std::to_string(expected));
    };
    if (!*state) {
      if (p.seq != 0) return gap(0);
    } else {
      std::uint64_t epoch = static_cast<std::uint64_t>((*state)->epoch);
      std::uint64_t last = static_cast<std::uint64_t>((*state)->last_seq);
      if (p.epoch < epoch) {
        res.producer_epoch = epoch;
        return reject(append_status::stale_epoch, failure_kind::forbidden, "stale_producer_epoch",
                      "Producer-Epoch " + std::to_string(p.epoch) + " has been fenced by epoch " +
                          std::to_string(epoch));
      }
      if (p.epoch > epoch) {
        if (p.seq != 0) {
          return reject(append_status::invalid_epoch_seq, failure_kind::invalid,
                        "invalid_producer_seq",
                        "a new Producer-Epoch must start at Producer-Seq 0");
        }
      } else if (p.seq <= last) {
        res.status = append_status::duplicate;
        res.producer_epoch = epoch;
        res.producer_seq = last;
        return false;  // already written: nothing to do
      } else if (p.seq != last + 1) {
        return gap(last + 1);
      }
    }
    producer_accepted = true;
  }

  if (row.closed) {
    if (!req.data) {
      res.status = append_status::closed;  // closing again is idempotent
      return false;
    }
    return reject(append_status::stream_closed, failure_kind::conflict, "stream_closed",
                  "the stream is closed; no more data can be appended");
  }
  if (req.data && req.media_type != media_type_of(row.content_type)) {
    return reject(append_status::content_type_mismatch, failure_kind::conflict,
                  "content_type_mismatch",
                  "Content-Type '" + req.media_type + "' does not match the stream's '" +
                      row.content_type + "'");
  }
  if (req.stream_seq) {
    if (row.last_stream_seq && *req.stream_seq <= *row.last_stream_seq) {
      return reject(append_status::stream_seq_conflict, failure_kind::conflict,
                    "stream_seq_regression",
                    "Stream-Seq '" + *req.stream_seq + "' is not greater than the last one, '" +
                        *row.last_stream_seq + "'");
    }
    if (auto s = tables_->set_last_stream_seq(row.id, *req.stream_seq); !s) {
      return storage(std::move(s).error());
    }
  }

  j.stream_id = row.id;
  j.after = res.tail;
  if (req.data) {
    std::int64_t seq = *tail + 1;
    if (auto s = tables_->insert_message(row.id, seq, *req.data); !s) {
      return storage(std::move(s).error());
    }
    if (auto s = inject("append.after_insert", req.path); !s) {
      return storage(std::move(s).error());
    }
    j.message = std::make_shared<const std::string>(std::move(*req.data));
    res.tail = static_cast<std::uint64_t>(seq);
  }
  if (req.close) {
    std::optional<sqlite::closed_by> by;
    if (req.producer) {
      by = sqlite::closed_by{req.producer->id, static_cast<std::int64_t>(req.producer->epoch),
                             static_cast<std::int64_t>(req.producer->seq)};
    }
    if (auto s = tables_->set_closed(row.id, by); !s) return storage(std::move(s).error());
    res.closed = true;
    j.closes = true;
  }
  if (producer_accepted) {
    const producer_claim& p = *req.producer;
    if (auto s = tables_->upsert_producer(row.id, p.id, static_cast<std::int64_t>(p.epoch),
                                          static_cast<std::int64_t>(p.seq), req.now_ms);
        !s) {
      return storage(std::move(s).error());
    }
    res.producer_epoch = p.epoch;
    res.producer_seq = p.seq;
  }
  res.status = j.message ? append_status::appended : append_status::closed;
  j.wrote = true;
  return true;
}

void stream_engine::publish_append(append_job& j) {
  auto record = find_by_id(j.stream_id);
  if (!record) return;
  std::vector<message_ptr> messages;
  if (j.message) {
    metrics_.appends.add();
    metrics_.appended_messages.add();
    metrics_.appended_bytes.add(j.message->size());
    messages.push_back(j.message);
  }
  record->touch(j.req.now_ms);
  record->publish_append(j.after, std::move(messages), j.closes);
  defer_wake(std::move(record));
}

void stream_engine::defer_wake(std::shared_ptr<stream_record> record) {
  // Consecutive jobs on one stream wake its readers once.
  if (!deferred_wakes_.empty() && deferred_wakes_.back() == record) return;
  deferred_wakes_.push_back(std::move(record));
}

// ---- delete ----------------------------------------------------------------------------------

bool stream_engine::run_delete(delete_job& j) {
  auto found = tables_->find_by_path(j.path);
  if (!found) {
    j.res.status = delete_status::failed;
    j.res.error = std::move(found).error();
    return false;
  }
  auto record = *found ? find_by_id((*found)->id) : nullptr;
  if (!*found || (record && record->state().lifecycle == stream_lifecycle::live &&
                  record->expired_at(wall_ms()))) {
    j.res.status = delete_status::not_found;
    j.res.error =
        make_failure(failure_kind::not_found, "stream_not_found", "no stream exists at this path");
    return false;
  }
  if ((*found)->state == sqlite::stream_row_state::soft_deleted) {
    j.res.status = delete_status::gone;
    j.res.error = make_failure(failure_kind::gone, "stream_deleted",
                               "the stream was already deleted; its forks still read its data");
    return false;
  }
  auto removed = remove_stream_tx(*tables_, **found);
  if (!removed) {
    j.res.status = delete_status::failed;
    j.res.error = std::move(removed).error();
    return false;
  }
  j.removals = std::move(*removed);
  j.res.status = delete_status::deleted;
  return true;
}

// ---- maintenance: TTL flush, expiry, purge ---------------------------------------------------

void stream_engine::run_maintenance() {
  complete_pending();  // its removals are published after every earlier batch
  if (poisoned_ || file_lost_) return;
  std::vector<std::shared_ptr<stream_record>> records;
  {
    std::lock_guard lock(registry_mu_);
    records.reserve(by_id_.size());
    for (const auto& [id, r] : by_id_)
      records.push_back(r);
  }
  enforce_cache_budget(records);
  std::int64_t now = wall_ms();
  std::vector<std::pair<std::int64_t, std::int64_t>> accessed;
  std::vector<std::int64_t> expired;
  for (const auto& r : records) {
    if (auto t = r->take_dirty_access()) accessed.emplace_back(r->config().id, *t);
    if (r->state().lifecycle == stream_lifecycle::live && r->expired_at(now)) {
      expired.push_back(r->config().id);
    }
  }
  if (accessed.empty() && expired.empty()) return;

  if (auto s = tables_->begin_immediate(); !s) {
    spdlog::warn("maintenance could not start a transaction: {}", s.error().message);
    return;
  }
  std::vector<removal> removals;
  std::optional<failure> error;
  for (const auto& [id, ms] : accessed) {
    if (auto s = tables_->set_last_access(id, ms); !s) error = std::move(s).error();
  }
  for (std::int64_t id : expired) {
    if (error) break;
    auto row = tables_->find_by_id(id);
    if (!row) {
      error = std::move(row).error();
      break;
    }
    if (!*row || (*row)->state != sqlite::stream_row_state::live) continue;
    auto removed = remove_stream_tx(*tables_, **row);
    if (!removed) {
      error = std::move(removed).error();
      break;
    }
    removals.insert(removals.end(), removed->begin(), removed->end());
  }
  if (!error) {
    if (auto s = commit_now(); !s) error = std::move(s).error();
  }
  if (error) {
    (void)tables_->rollback();
    spdlog::warn("maintenance pass failed: {}", error->message);
    return;
  }
  if (!expired.empty()) spdlog::info("expired {} streams", expired.size());
  publish_removals(removals);
}

void stream_engine::enforce_cache_budget(
    const std::vector<std::shared_ptr<stream_record>>& records) {
  std::vector<std::pair<std::int64_t, stream_record*>> cached;  // (last append, record)
  std::size_t total = 0;
  for (const auto& r : records) {
    if (std::size_t bytes = r->cache_bytes(); bytes > 0) {
      total += bytes;
      cached.emplace_back(r->cache_last_used(), r.get());
    }
  }
  tail_cache_bytes_ = total;
  if (total <= options_.tail_cache_total_bytes) return;
  std::sort(cached.begin(), cached.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t dropped = 0, streams = 0;
  for (const auto& [access, record] : cached) {
    if (total <= options_.tail_cache_total_bytes) break;
    std::size_t freed = record->drop_cache();
    total -= std::min(total, freed);
    dropped += freed;
    ++streams;
  }
  tail_cache_bytes_ = total;
  spdlog::debug("tail caches over --tail-cache-total-bytes: emptied {} streams' ({} bytes)",
                streams, dropped);
}

bool stream_engine::run_purge_step() {
  complete_pending();
  if (poisoned_ || file_lost_) return false;
  auto ids = tables_->purging_streams();
  if (!ids) return false;
  if (ids->empty()) return false;
  if (auto s = tables_->begin_immediate(); !s) return true;
  // Forks have higher ids than their sources and must go first (the foreign key).
  std::int64_t id = *std::max_element(ids->begin(), ids->end());
  auto deleted = tables_->purge_messages(id, options_.purge_batch_messages);
  status s = deleted ? status(ok_v) : status(std::move(deleted).error());
  bool done_with_stream = s && *deleted < options_.purge_batch_messages;
  if (s && done_with_stream) s = tables_->delete_stream(id);
  if (s) s = commit_now();
  if (!s) {
    (void)tables_->rollback();
    spdlog::warn("purging stream {} failed: {}", id, s.error().message);
    return true;
  }
  return !(done_with_stream && ids->size() == 1);
}

}  // namespace ordo
