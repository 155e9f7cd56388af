// The stream jobs: create (with forks and initial data), append (with idempotent producers,
// Stream-Seq and close) and delete. Each run_*() runs inside its job's savepoint in the writer's
// transaction and decides the outcome from the rows as committed so far; each publish_*() runs
// after the batch's flush and makes the effects visible: records, tail caches, wake-ups.
//
// Thread safety: the writer thread only.
// Invariants: (1) a message's position is the stream's tail + 1 as the writer's transaction
//                 sees it (earlier jobs of the batch included), assigned in run_*() inside the
//                 transaction that commits it;
//             (2) run_*() returns true only if something it wrote must be kept; false rolls its
//                 savepoint back (a refusal, an idempotent answer, or a storage failure);
//             (3) publish_*() runs only for jobs whose transaction is durable, in job order;
//             (4) a stream with forks is soft-deleted, never purged, while forks read through it.
#include "streams/stream_engine.hpp"

#include <algorithm>

#include "streams/json_batch.hpp"
#include "streams/stream_engine_internal.hpp"

namespace ordo {

using engine_internal::media_type_of;
using engine_internal::random_incarnation;
using engine_internal::remove_stream_tx;
using engine_internal::wall_ms;

namespace {

constexpr std::string_view k_default_content_type = "application/octet-stream";

bool config_matches(const storage::stream_row& existing, const std::string& media_type,
                    const std::optional<std::int64_t>& ttl,
                    const std::optional<std::int64_t>& expires_at, bool closed) {
  return media_type_of(existing.content_type) == media_type && existing.ttl_seconds == ttl &&
         existing.expires_at_ms == expires_at && existing.closed == closed;
}

}  // namespace

// Removes a stream inside the writer's transaction: soft-deletes it while forks read through
// it, otherwise hands its data to the janitor and cascades to soft-deleted sources that no
// longer have forks.
result<std::vector<removal>> engine_internal::remove_stream_tx(storage::stream_store& t,
                                                               const storage::stream_row& row) {
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
  std::optional<stream_id> source = row.fork_source_id;
  while (source) {
    auto source_row = t.find_by_id(*source);
    if (!source_row) return std::move(source_row).error();
    if (!*source_row || (*source_row)->state != storage::stream_row_state::soft_deleted) break;
    auto more = t.has_children(*source);
    if (!more) return std::move(more).error();
    if (*more) break;
    if (auto s = t.mark_purging(*source); !s) return std::move(s).error();
    out.push_back({*source, stream_lifecycle::removed});
    source = (*source_row)->fork_source_id;
  }
  return out;
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
  std::optional<storage::stream_row> source;
  stream_position source_tail;
  if (req.fork_source_path) {
    auto s = store_->find_by_path(*req.fork_source_path);
    if (!s) return storage(std::move(s).error());
    auto record = *s ? find_by_id((*s)->id) : nullptr;
    if (!*s || (record && record->expired_at(req.now_ms))) {
      return fail(
          create_status::source_not_found,
          make_failure(failure_kind::not_found, "fork_source_not_found",
                       "Stream-Forked-From names no stream: '" + *req.fork_source_path + "'"));
    }
    if ((*s)->state == storage::stream_row_state::soft_deleted) {
      return fail(create_status::source_unavailable,
                  make_failure(failure_kind::conflict, "fork_source_deleted",
                               "the fork source '" + *req.fork_source_path +
                                   "' has been deleted and only lives on for its forks"));
    }
    source = std::move(**s);
    auto t = store_->tail(*source);
    if (!t) return storage(std::move(t).error());
    source_tail = *t;
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
  auto existing = store_->find_by_path(req.path);
  if (!existing) return storage(std::move(existing).error());
  if (*existing) {
    const storage::stream_row& e = **existing;
    auto record = find_by_id(e.id);
    if (e.state == storage::stream_row_state::live && record && record->expired_at(req.now_ms)) {
      auto removed = remove_stream_tx(*store_, e);
      if (!removed) return storage(std::move(removed).error());
      j.removals = std::move(*removed);
      if (j.removals.front().lifecycle == stream_lifecycle::soft_deleted) {
        return fail(create_status::soft_deleted,
                    make_failure(failure_kind::conflict, "stream_soft_deleted",
                                 "the stream at this path expired while forks still read "
                                 "through it; the path cannot be reused until they are gone"));
      }
    } else if (e.state == storage::stream_row_state::soft_deleted) {
      return fail(create_status::soft_deleted,
                  make_failure(failure_kind::conflict, "stream_soft_deleted",
                               "the stream at this path was deleted while forks still read "
                               "through it; the path cannot be reused until they are gone"));
    } else {
      bool same = config_matches(e, media_type, ttl, expires_at, req.closed);
      bool same_fork = (e.fork_source_id.has_value() == source.has_value()) &&
                       (!source || *e.fork_source_id == source->id);
      if (same_fork && source && req.fork_offset) {
        same_fork = req.fork_offset->position == e.base_seq;
      }
      same_fork = same_fork && req.fork_sub_offset == e.fork_sub_offset;
      auto tail = store_->tail(e);
      if (!tail) return storage(std::move(tail).error());
      res.stream =
          stream_snapshot{e.content_type, offset_prefix_for(database_epoch_, e.incarnation),
                          *tail,          e.closed,
                          e.ttl_seconds,  e.expires_at_ms};
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

  storage::stream_row row;
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
    std::uint64_t source_prefix = offset_prefix_for(database_epoch_, source->incarnation);
    stream_position anchor = source_tail;
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
    row.base_seq = anchor;
    row.fork_sub_offset = req.fork_sub_offset;
    j.inherited = inherited_segments(row, anchor);

    if (req.fork_sub_offset > 0) {
      // Materialize the first fork_sub_offset bytes (or JSON values) after the anchor as the
      // fork's first own message.
      std::vector<read_segment> plan = inherited_segments(*source, source->base_seq);
      plan.push_back({source->id, source->base_seq, source_tail});
      bool json = is_json_media_type(media_type);
      std::uint64_t wanted = req.fork_sub_offset;
      std::string prefix;
      std::uint64_t taken = 0;
      for (const read_segment& s : plan) {
        if (taken >= wanted || s.upto <= anchor) continue;
        auto rows = store_->read_messages(s.stream, std::max(s.after, anchor), s.upto, SIZE_MAX);
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

  auto id = store_->insert_stream(row);
  if (!id) return storage(std::move(id).error());
  row.id = *id;
  if (auto s = inject("create.after_insert", req.path); !s) {
    return storage(std::move(s).error());
  }
  stream_position position = row.base_seq;
  for (auto& data : own) {
    position = position.next();
    if (auto s = store_->insert_message(row.id, position, data); !s) {
      return storage(std::move(s).error());
    }
    j.messages.emplace_back(position, std::make_shared<const std::string>(std::move(data)));
  }
  if (req.closed) {
    if (auto s = store_->set_closed(row.id, std::nullopt); !s) return storage(std::move(s).error());
  }
  res.status = create_status::created;
  res.stream =
      stream_snapshot{row.content_type, offset_prefix_for(database_epoch_, row.incarnation),
                      position,         req.closed,
                      row.ttl_seconds,  row.expires_at_ms};
  j.created = std::move(row);
  return true;
}

void stream_engine::publish_create(create_job& j) {
  publish_removals(j.removals);
  if (!j.created) return;
  const storage::stream_row& row = *j.created;
  stream_position base = row.base_seq;
  auto record = make_record(row, base, false);
  {
    mutex_lock lock(registry_mu_);
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

  auto found = store_->find_by_path(req.path);
  if (!found) return storage(std::move(found).error());
  auto record = *found ? find_by_id((*found)->id) : nullptr;
  if (!*found || (record && record->expired_at(req.now_ms))) {
    return reject(append_status::not_found, failure_kind::not_found, "stream_not_found",
                  "no stream exists at this path");
  }
  storage::stream_row& row = **found;
  // Everything below is decided from the row as it is under the lock (another node may have
  // appended, closed or deleted since the row was read).
  auto tail = store_->lock_tail(row);
  if (!tail) return storage(std::move(tail).error());
  if (row.state == storage::stream_row_state::purging) {
    return reject(append_status::not_found, failure_kind::not_found, "stream_not_found",
                  "no stream exists at this path");
  }
  if (row.state == storage::stream_row_state::soft_deleted) {
    return reject(append_status::gone, failure_kind::gone, "stream_deleted",
                  "the stream was deleted; only its forks still read its data");
  }
  res.offset_prefix = offset_prefix_for(database_epoch_, row.incarnation);
  res.tail = *tail;
  res.closed = row.closed;

  // Idempotent producers first: a retry is a duplicate whatever else has changed since.
  bool producer_accepted = false;
  if (req.producer) {
    const producer_claim& p = *req.producer;
    auto state = store_->find_producer(row.id, p.id);
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
    if (auto s = store_->set_last_stream_seq(row.id, *req.stream_seq); !s) {
      return storage(std::move(s).error());
    }
  }

  j.stream = row.id;
  j.after = res.tail;
  if (req.data) {
    stream_position seq = tail->next();
    if (auto s = store_->insert_message(row.id, seq, *req.data); !s) {
      return storage(std::move(s).error());
    }
    if (auto s = inject("append.after_insert", req.path); !s) {
      return storage(std::move(s).error());
    }
    j.message = std::make_shared<const std::string>(std::move(*req.data));
    res.tail = seq;
  }
  if (req.close) {
    std::optional<storage::closed_by> by;
    if (req.producer) {
      by = storage::closed_by{req.producer->id, static_cast<std::int64_t>(req.producer->epoch),
                              static_cast<std::int64_t>(req.producer->seq)};
    }
    if (auto s = store_->set_closed(row.id, by); !s) return storage(std::move(s).error());
    res.closed = true;
    j.closes = true;
  }
  if (producer_accepted) {
    const producer_claim& p = *req.producer;
    if (auto s = store_->upsert_producer(row.id, p.id, static_cast<std::int64_t>(p.epoch),
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
  auto record = find_by_id(j.stream);
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

// ---- delete ----------------------------------------------------------------------------------

bool stream_engine::run_delete(delete_job& j) {
  auto found = store_->find_by_path(j.path);
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
  if ((*found)->state == storage::stream_row_state::soft_deleted) {
    j.res.status = delete_status::gone;
    j.res.error = make_failure(failure_kind::gone, "stream_deleted",
                               "the stream was already deleted; its forks still read its data");
    return false;
  }
  auto removed = remove_stream_tx(*store_, **found);
  if (!removed) {
    j.res.status = delete_status::failed;
    j.res.error = std::move(removed).error();
    return false;
  }
  j.removals = std::move(*removed);
  j.res.status = delete_status::deleted;
  return true;
}

// ---- publication of removals and of custom jobs' effects -------------------------------------

void stream_engine::publish_removals(const std::vector<removal>& removals) {
  for (const removal& r : removals) {
    std::shared_ptr<stream_record> record;
    {
      mutex_lock lock(registry_mu_);
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
      auto record = make_record(*e.created, e.created->base_seq, false);
      mutex_lock lock(registry_mu_);
      by_id_[e.stream] = record;
      by_path_[e.created->path] = record;
      continue;
    }
    auto record = find_by_id(e.stream);
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

}  // namespace ordo
