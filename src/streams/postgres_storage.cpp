// The engine on PostgreSQL (--storage postgres://...): what database_custody.cpp is for the
// SQLite file. attach_postgres() connects the writer (migrating the schema, which several nodes
// starting at once may do: migrations.cpp holds an advisory lock), agrees on the database epoch
// and loads the registry; check_postgres() connects again, with backoff, once the connection was
// lost; read_postgres() serves catch-up reads on the PostgreSQL reader pool.
//
// What the writer does differently on PostgreSQL is in the stream tables
// (storage/postgres/stream_tables.hpp: a counter row per stream, locked in id order) and in
// run_batch() (it locks the batch's streams first). A commit whose outcome is unknown (the
// connection broke during COMMIT) fails its batch with storage_commit_unknown and does not stop
// the writer: the data is stored once or not at all, and a producer's retry is answered from the
// table as a duplicate or stored then.
//
// Thread safety: attach_postgres() runs in open(), before the writer starts; check_postgres() on
// the writer thread; read_postgres() on any thread (the reader pool runs the reads). pg_problem_
// is read by /ready under pg_mu_.
// Invariants: (1) while pg_lost_ is set, no batch begins;
//             (2) the epoch and the registry come from the database, never from this node's
//                 memory of it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "storage/postgres/connection.hpp"
#include "storage/postgres/leadership.hpp"
#include "storage/postgres/migrations.hpp"
#include "storage/postgres/notifier.hpp"
#include "storage/postgres/read_pool.hpp"
#include "storage/postgres/sql_statements.hpp"
#include "storage/postgres/stream_tables.hpp"
#include "streams/stream_engine.hpp"
#include "streams/stream_engine_internal.hpp"

namespace ordo {

namespace {

constexpr std::chrono::milliseconds k_first_backoff{100};

postgres::open_options writer_connection() {
  postgres::open_options o;
  o.application_name = "ordo-writer";
  return o;
}

// The writer's connection, with --sync mapped to synchronous_commit.
result<postgres::connection> connect_writer(const stream_engine_options& options) {
  auto db = postgres::connection::open(options.postgres_url, writer_connection());
  if (!db) return db;
  if (auto s = db->exec(options.postgres_synchronous_commit ? "SET synchronous_commit = on"
                                                            : "SET synchronous_commit = off");
      !s) {
    return std::move(s).error();
  }
  return db;
}

}  // namespace

status stream_engine::attach_postgres() {
  const std::string url = postgres::redacted(options_.postgres_url);
  auto db = connect_writer(options_);
  if (!db) return std::move(db).error();
  auto applied = postgres::migrate(*db);
  if (!applied) return std::move(applied).error();
  if (*applied > 0) spdlog::info("applied {} PostgreSQL migrations to {}", *applied, url);
  auto epoch = postgres::load_or_create_database_epoch(*db);
  if (!epoch) return std::move(epoch).error();
  auto owned = std::make_unique<postgres::connection>(std::move(*db));
  auto tables = std::make_unique<postgres::stream_tables>(*owned);
  auto streams = tables->load_streams();
  if (!streams) return std::move(streams).error();

  postgres::read_pool_options ro;
  ro.url = options_.postgres_url;
  ro.threads = options_.reader_threads;
  ro.max_queued = options_.max_read_queue;
  ro.max_backoff = options_.postgres_max_backoff;
  pg_readers_ = postgres::read_pool::start(std::move(ro));

  pg_db_ = std::move(owned);
  pg_tables_ = std::move(tables);
  write_sql_ = std::make_unique<postgres::sql_statements>(*pg_db_);
  store_ = pg_tables_.get();
  database_epoch_ = *epoch;
  generation_ = 1;
  attached_ = true;
  auto [by_id, by_path] = build_registry(*streams);
  {
    mutex_lock lock(registry_mu_);
    by_id_ = std::move(by_id);
    by_path_ = std::move(by_path);
  }
  char node[17];
  std::snprintf(node, sizeof node, "%016llx",
                static_cast<unsigned long long>(std::random_device{}() * 0x100000000ULL ^
                                                std::random_device{}()));
  node_id_ = node;
  postgres::listener_options lo;
  lo.url = options_.postgres_url;
  lo.max_backoff = options_.postgres_max_backoff;
  pg_listener_ = postgres::listener::start(std::move(lo),
                                           [this](const postgres::wake_hint& h) { on_hint(h); });
  postgres::leadership_options leader;
  leader.url = options_.postgres_url;
  // Leadership logs its own changes; runs_background_work() asks it each time.
  pg_leader_ = postgres::leadership::start(std::move(leader), [](bool) {});
  spdlog::info("storage open postgres={} node={} streams={} database_epoch={:016x}", url, node_id_,
               streams->size(), database_epoch_.load());
  return ok_v;
}

bool stream_engine::runs_background_work() const {
  if (!storage_shared()) return true;
  return pg_leader_ && pg_leader_->leading();
}

result<std::vector<stream_id>> stream_engine::pg_expired_streams(std::int64_t now_ms) {
  if (!pg_tables_) return std::vector<stream_id>();
  return pg_tables_->expired_streams(now_ms);
}

bool stream_engine::listener_down() const {
  return pg_listener_ && !pg_listener_->connected();
}

status stream_engine::notify_streams(std::vector<std::int64_t> streams) {
  if (!storage_shared() || streams.empty()) return ok_v;
  auto sent = pg_db_->query("SELECT pg_notify($1, $2)",
                            {std::string(postgres::k_wake_channel),
                             postgres::notify_payload(node_id_, std::move(streams))});
  if (!sent) return std::move(sent).error();
  return ok_v;
}

void stream_engine::on_hint(const postgres::wake_hint& hint) {
  if (hint.from_node == node_id_) return;  // this node's own batch: published already
  std::vector<stream_id> ids;
  if (hint.all) {
    // Every stream someone waits on here; the others are refreshed when a request asks.
    mutex_lock lock(registry_mu_);
    for (const auto& [id, record] : by_id_) {
      if (record->has_listeners()) ids.push_back(id);
    }
  } else {
    for (std::int64_t id : hint.streams)
      ids.push_back(stream_id{id});
  }
  if (ids.empty()) return;
  std::sort(ids.begin(), ids.end());  // the rows come back in id order, and are matched so
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  bool queued = pg_readers_->submit(
      [this, ids = std::move(ids)](postgres::read_context& context) {
        auto found = context.streams.find_loaded(ids);
        if (!found) {
          spdlog::warn("refreshing {} streams after a notification failed: {}", ids.size(),
                       found.error().message);
          return;
        }
        std::size_t next = 0;
        for (stream_id id : ids) {
          while (next < found->size() && (*found)[next].row.id < id)
            ++next;
          std::optional<storage::loaded_stream> now;
          if (next < found->size() && (*found)[next].row.id == id) now = (*found)[next];
          reconcile(id, now ? now->row.path : std::string(), now, context.streams);
        }
      },
      [](const failure&) {});  // the database is away: the listener rechecks all once back
  if (!queued) spdlog::warn("a notification was dropped: the read queue is full");
}

void stream_engine::refresh(std::string path, std::function<void(status)> done) {
  if (!storage_shared()) {
    done(ok_v);
    return;
  }
  auto shared_done = std::make_shared<std::function<void(status)>>(std::move(done));
  bool queued = pg_readers_->submit(
      [this, path, shared_done](postgres::read_context& context) {
        auto now = context.streams.find_loaded(path);
        if (!now) return (*shared_done)(std::move(now).error());
        if (*now) {
          reconcile((*now)->row.id, path, *now, context.streams);
        } else if (auto record = find(path)) {
          reconcile(record->config().id, path, std::nullopt, context.streams);
        }
        (*shared_done)(ok_v);
      },
      [shared_done](const failure& f) { (*shared_done)(f); });
  if (!queued) {
    (*shared_done)(make_failure(failure_kind::unavailable, "read_queue_full",
                                "too many reads are waiting; retry shortly"));
  }
}

void stream_engine::reconcile(stream_id id, const std::string& path,
                              const std::optional<storage::loaded_stream>& now,
                              storage::stream_store& store) {
  mutex_lock publishing(publish_mu_);
  std::shared_ptr<stream_record> record = find_by_id(id);
  std::vector<std::shared_ptr<stream_record>> woken;
  auto remove = [&](const std::shared_ptr<stream_record>& r) {
    {
      mutex_lock lock(registry_mu_);
      by_id_.erase(r->config().id);
      auto p = by_path_.find(r->config().path);
      if (p != by_path_.end() && p->second == r) by_path_.erase(p);
    }
    r->publish_lifecycle(stream_lifecycle::removed);
  };
  if (!now || now->row.state == storage::stream_row_state::purging) {
    if (record) remove(record);  // deleted (or expired) through another node
    return;
  }
  const storage::stream_row& row = now->row;
  if (!record) {
    // Created through another node. Whatever this node still holds at the path is an earlier
    // stream there, deleted meanwhile.
    if (auto old = find(path); old && old->config().id != id) remove(old);
    record = make_record(row, now->tail, row.closed, nullptr, &store);
    if (row.state == storage::stream_row_state::soft_deleted) {
      record->publish_lifecycle(stream_lifecycle::soft_deleted);
    }
    mutex_lock lock(registry_mu_);
    by_id_[id] = record;
    by_path_[row.path] = record;
    return;
  }
  // Readers waiting here for what another node appended: the new messages are read once, here,
  // into the tail cache, so that each of them is served from memory instead of reading the table
  // itself (fan-out on every node, not only on the one that wrote).
  const stream_position known = record->state().tail;
  if (now->tail > known && record->has_listeners() && record->config().base_seq <= known) {
    auto rows = store.read_messages(id, known, now->tail, options_.tail_cache_bytes);
    bool whole = rows && !rows->empty() && rows->back().seq == now->tail;
    for (std::size_t i = 0; whole && i < rows->size(); ++i)
      whole = (*rows)[i].seq == known + (i + 1);
    if (whole) {
      std::vector<message_ptr> messages;
      messages.reserve(rows->size());
      for (auto& m : *rows)
        messages.push_back(std::make_shared<const std::string>(std::move(m.data)));
      record->publish_append(known, std::move(messages), row.closed);
      woken.push_back(record);
    }
  }
  if (record->publish_foreign(now->tail, row.closed, row.pruned_upto) && woken.empty()) {
    woken.push_back(record);
  }
  // Reads through other nodes renew a sliding TTL as reads here do.
  if (row.last_access_ms > record->last_access_ms()) record->touch(row.last_access_ms);
  if (row.state == storage::stream_row_state::soft_deleted &&
      record->state().lifecycle == stream_lifecycle::live) {
    record->publish_lifecycle(stream_lifecycle::soft_deleted);
  }
  publishing.unlock();
  if (!woken.empty()) run_wake_rounds(std::move(woken));
}

status stream_engine::check_postgres() {
  if (pg_db_ && !pg_db_->lost() && !pg_reconnect_) return ok_v;
  auto unavailable = [&] {
    mutex_lock lock(pg_mu_);
    return make_failure(failure_kind::unavailable, "storage_unavailable",
                        "PostgreSQL is unreachable (" + pg_problem_ +
                            "); writes are refused until ordo connects again");
  };
  auto now = std::chrono::steady_clock::now();
  if (pg_lost_ && now < pg_next_attempt_) return unavailable();
  if (!pg_lost_.exchange(true)) {
    {
      mutex_lock lock(pg_mu_);
      pg_problem_ = "the writer's connection was lost";
    }
    spdlog::error("the writer lost its PostgreSQL connection; writes answer 503 until it is back");
    pg_backoff_ = std::chrono::milliseconds{0};
  }
  // Statements of the old connection go with it.
  store_ = nullptr;
  write_sql_.reset();
  pg_tables_.reset();
  pg_db_.reset();
  auto db = connect_writer(options_);
  if (!db) {
    pg_backoff_ =
        std::min(options_.postgres_max_backoff,
                 pg_backoff_ == std::chrono::milliseconds{0} ? k_first_backoff : pg_backoff_ * 2);
    pg_next_attempt_ = now + pg_backoff_;
    {
      mutex_lock lock(pg_mu_);
      pg_problem_ = db.error().message;
    }
    return unavailable();
  }
  // The database may have been restored or replaced meanwhile: the epoch is read again, and a
  // new one is a new registry.
  auto epoch = postgres::load_or_create_database_epoch(*db);
  if (!epoch) {
    mutex_lock lock(pg_mu_);
    pg_problem_ = epoch.error().message;
    return unavailable();
  }
  pg_db_ = std::make_unique<postgres::connection>(std::move(*db));
  pg_tables_ = std::make_unique<postgres::stream_tables>(*pg_db_);
  write_sql_ = std::make_unique<postgres::sql_statements>(*pg_db_);
  store_ = pg_tables_.get();
  if (*epoch != database_epoch_) {
    spdlog::warn(
        "the PostgreSQL database has a new epoch ({:016x} -> {:016x}): it was restored "
        "or replaced; clients holding offsets from before re-read",
        database_epoch_.load(), *epoch);
    auto streams = pg_tables_->load_streams();
    if (!streams) {
      mutex_lock lock(pg_mu_);
      pg_problem_ = streams.error().message;
      return unavailable();
    }
    database_epoch_ = *epoch;
    generation_ = generation_ + 1;
    auto [by_id, by_path] = build_registry(*streams);
    record_map old;
    {
      mutex_lock lock(registry_mu_);
      old = std::exchange(by_id_, std::move(by_id));
      by_path_ = std::move(by_path);
    }
    for (auto& [id, record] : old)
      record->publish_lifecycle(stream_lifecycle::replaced);
  }
  pg_lost_ = false;
  pg_reconnect_ = false;
  spdlog::warn("the writer is connected to PostgreSQL again; writes resume");
  return ok_v;
}

bool stream_engine::read_with_postgres(std::function<void(storage::read_snapshot&)> task,
                                       std::function<void(const failure&)> refuse) {
  return pg_readers_->submit(
      [this, task = std::move(task), refuse](postgres::read_context& context) {
        // One snapshot for the whole task, as SQLite's read transaction gives.
        if (auto s = context.db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s) {
          return refuse(s.error());
        }
        postgres::sql_statements sql(context.db);
        storage::read_snapshot snapshot{sql, database_epoch_.load()};
        task(snapshot);
        (void)context.db.exec("COMMIT");
      },
      refuse);
}

void stream_engine::read_postgres(std::shared_ptr<stream_record> stream,
                                  std::vector<read_segment> plan, stream_position after,
                                  read_callback done) {
  std::size_t max_bytes = options_.read_chunk_bytes;
  auto shared_done = std::make_shared<read_callback>(std::move(done));
  std::weak_ptr<stream_record> weak = stream;
  stream_id own_id = stream->config().id;
  bool queued = pg_readers_->submit(
      [plan = std::move(plan), after, max_bytes, shared_done, weak,
       own_id](postgres::read_context& context) {
        (*shared_done)(engine_internal::follow_plan(
            plan, after, max_bytes,
            [&](const read_segment& s, std::size_t max) {
              return context.streams.read_messages(s.stream, s.after, s.upto, max);
            },
            [&](stream_position position) {
              // Published, or committed by any node.
              auto record = weak.lock();
              if (record && record->state().pruned_upto >= position) return true;
              auto row = context.streams.find_by_id(own_id);
              return row && *row && (**row).pruned_upto >= position;
            }));
      },
      [shared_done](const failure& f) {
        (*shared_done)(read_result{std::nullopt, f});
      });
  if (!queued) (*shared_done)(engine_internal::read_queue_full());
}

}  // namespace ordo
