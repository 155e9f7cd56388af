// The stream methods of the Durable Streams protocol: PUT creates, POST appends (or closes),
// DELETE deletes, HEAD reports, GET reads — a catch-up read answered here at once, a long-poll
// that waits at the tail, or SSE (handed to serve_sse, live_readers.cpp). The protocol's
// grammar is http/stream_protocol.cpp's; this file reads the request's raw values out of Beast,
// calls the stream engine and writes its answer as headers and body.
//
// Threads: every handler runs on its connection's network thread; the engine's answers come back
// to it through await_engine(). A stream's published state (stream_record::state()) is a copy
// the writer thread may outdate at any moment: the handlers read it again after every wait.
//
// g++ 12: every co_await names its non-trivial operands first, and closures built here capture
// only pointers (beast_support.hpp).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/rfc3339.hpp"
#include "http/access.hpp"
#include "http/server_impl.hpp"
#include "http/stream_protocol.hpp"
#include "streams/cursor.hpp"

namespace ordo::http {

namespace {

// Catch-up responses that can never change may be cached this long (section 10.1).
constexpr std::int64_t k_immutable_max_age_seconds = 60;
// How long an offset just past the published tail waits for the writer to publish it.
constexpr std::chrono::milliseconds k_publish_grace{1000};

// FNV-1a: a stable hash (std::hash may change between builds), for ETags of filtered reads.
std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

failure stream_gone() {
  return make_failure(failure_kind::gone, "stream_deleted",
                      "the stream was deleted; only its forks still read its data");
}

// A long-poll at the tail: 204 with the next offset, and the cursor unless the stream is
// closed.
string_response up_to_date_response(const request& req, const stream_config& c,
                                    const published_state& st, const std::string& cursor) {
  string_response res = make_response(req, bhttp::status::no_content);
  res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
  res.set("Stream-Up-To-Date", "true");
  if (st.closed) {
    res.set("Stream-Closed", "true");
  } else {
    res.set("Stream-Cursor", cursor);
  }
  res.set(bhttp::field::cache_control, "no-store");
  finish(res, true);
  return res;
}

}  // namespace

protocol_headers protocol_headers_of(const request& req) {
  protocol_headers h;
  h.content_type = header(req, "Content-Type");
  h.stream_ttl = header(req, "Stream-TTL");
  h.stream_expires_at = header(req, "Stream-Expires-At");
  h.stream_closed = header(req, "Stream-Closed");
  h.stream_seq = header(req, "Stream-Seq");
  h.producer_id = header(req, "Producer-Id");
  h.producer_epoch = header(req, "Producer-Epoch");
  h.producer_seq = header(req, "Producer-Seq");
  h.forked_from = header(req, "Stream-Forked-From");
  h.fork_offset = header(req, "Stream-Fork-Offset");
  h.fork_sub_offset = header(req, "Stream-Fork-Sub-Offset");
  return h;
}

result<std::shared_ptr<stream_record>> server::impl::live_stream(const std::string& path) {
  auto record = engine.find(path);
  if (!record) return stream_not_found();
  published_state st = record->state();
  if (st.lifecycle == stream_lifecycle::soft_deleted) return stream_gone();
  if (st.lifecycle == stream_lifecycle::removed) return stream_not_found();
  if (record->expired_at(now_ms())) {
    engine.expire_soon(record);
    return stream_not_found();
  }
  return record;
}

std::string server::impl::location_for(const request& req) const {
  auto host = req[bhttp::field::host];
  std::string authority =
      host.empty() ? options.host + ":" + std::to_string(options.port) : std::string(host);
  return "http://" + authority + std::string(req.target().substr(0, req.target().find('?')));
}

// ---- PUT: create --------------------------------------------------------------------------------

awaitable<string_response> server::impl::handle_put(request& req, const std::string& path,
                                                    const auth::principal& who) {
  auto parsed = parse_create(protocol_headers_of(req), std::move(req.body()), engine);
  if (!parsed) co_return error_response(req, parsed.error());
  if (parsed->fork_source_path &&
      !who.may_stream(*parsed->fork_source_path, auth::access_level::read)) {
    // Exactly what a fork of a missing stream answers (stream_operations.cpp).
    co_return error_response(req, make_failure(failure_kind::not_found, "fork_source_not_found",
                                               "Stream-Forked-From names no stream: '" +
                                                   *parsed->fork_source_path + "'"));
  }
  parsed->path = path;
  parsed->now_ms = now_ms();
  // Closures built inside coroutines capture only pointers (see await_engine).
  auto c = std::make_shared<create_request>(std::move(*parsed));
  auto op =
      await_engine<create_result>([this, c](auto done) { engine.create(std::move(*c), done); });
  create_result r = co_await std::move(op);
  if (r.status != create_status::created && r.status != create_status::exists) {
    co_return error_response(req, r.error);
  }
  auto res = make_response(
      req, r.status == create_status::created ? bhttp::status::created : bhttp::status::ok);
  if (r.status == create_status::created) res.set(bhttp::field::location, location_for(req));
  res.set(bhttp::field::content_type, r.stream.content_type);
  res.set("Stream-Next-Offset", format_offset({r.stream.offset_prefix, r.stream.tail}));
  if (r.stream.closed) res.set("Stream-Closed", "true");
  res.set(bhttp::field::cache_control, "no-store");
  finish(res, false);
  co_return res;
}

// ---- POST: append / close -----------------------------------------------------------------------

awaitable<string_response> server::impl::handle_post(request& req, const std::string& path) {
  auto record = live_stream(path);
  if (!record) co_return error_response(req, record.error());
  auto parsed = parse_append(protocol_headers_of(req), std::move(req.body()), (*record)->config());
  if (!parsed) co_return error_response(req, parsed.error());
  parsed->path = path;
  parsed->now_ms = now_ms();
  bool has_producer = parsed->producer.has_value();
  auto a = std::make_shared<append_request>(std::move(*parsed));
  auto op =
      await_engine<append_result>([this, a](auto done) { engine.append(std::move(*a), done); });
  append_result r = co_await std::move(op);

  auto with_stream_headers = [&](string_response& res) {
    res.set("Stream-Next-Offset", format_offset({r.offset_prefix, r.tail}));
    if (r.closed) res.set("Stream-Closed", "true");
  };
  auto with_producer_headers = [&](string_response& res) {
    if (!has_producer) return;
    res.set("Producer-Epoch", std::to_string(r.producer_epoch));
    res.set("Producer-Seq", std::to_string(r.producer_seq));
  };
  string_response res;
  switch (r.status) {
    case append_status::appended:
      res = make_response(req, has_producer ? bhttp::status::ok : bhttp::status::no_content);
      with_stream_headers(res);
      with_producer_headers(res);
      break;
    case append_status::closed:
    case append_status::duplicate:
      res = make_response(req, bhttp::status::no_content);
      with_stream_headers(res);
      with_producer_headers(res);
      break;
    case append_status::stream_closed:
      res = error_response(req, r.error);
      with_stream_headers(res);
      res.set("Stream-Closed", "true");
      break;
    case append_status::stale_epoch:
      res = error_response(req, r.error);
      res.set("Producer-Epoch", std::to_string(r.producer_epoch));
      break;
    case append_status::producer_seq_gap:
      res = error_response(req, r.error);
      res.set("Producer-Expected-Seq", std::to_string(r.expected_seq));
      res.set("Producer-Received-Seq", std::to_string(r.received_seq));
      break;
    default:
      res = error_response(req, r.error);
      break;
  }
  finish(res, false);
  co_return res;
}

// ---- DELETE -------------------------------------------------------------------------------------

awaitable<string_response> server::impl::handle_delete(request& req, const std::string& path) {
  if (auto record = engine.find(path); record && record->expired_at(now_ms()) &&
                                       record->state().lifecycle == stream_lifecycle::live) {
    engine.expire_soon(record);
    co_return error_response(req, stream_not_found());
  }
  auto op = await_engine<delete_result>([this, &path](auto done) { engine.remove(path, done); });
  delete_result r = co_await std::move(op);
  if (r.status != delete_status::deleted) co_return error_response(req, r.error);
  auto res = make_response(req, bhttp::status::no_content);
  finish(res, false);
  co_return res;
}

// ---- HEAD ---------------------------------------------------------------------------------------

string_response server::impl::handle_head(request& req, const std::string& path) {
  auto record = live_stream(path);
  if (!record) return error_response(req, record.error());
  const stream_config& c = (*record)->config();
  published_state st = (*record)->state();
  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, c.content_type);
  res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
  if (c.ttl_seconds) res.set("Stream-TTL", std::to_string(*c.ttl_seconds));
  if (c.expires_at_ms) res.set("Stream-Expires-At", format_rfc3339_ms(*c.expires_at_ms));
  if (st.closed) res.set("Stream-Closed", "true");
  res.set(bhttp::field::cache_control, "no-store");
  finish(res, true);
  return res;
}

// ---- GET: catch-up, long-poll, SSE --------------------------------------------------------------

// g++ 12 warns -Wmismatched-new-delete at this coroutine's end, about Asio's frame allocator: a
// false positive (its operator new and delete are a matched pair) that comes and goes with
// inlining.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
awaitable<bool> server::impl::handle_get(request& req, connection& conn, const std::string& path,
                                         const boost::urls::url_view& url,
                                         const change_filter* filter) {
  string_response res;
  auto record_result = live_stream(path);
  if (!record_result) {
    res = error_response(req, record_result.error());
    co_return co_await respond(conn, res);
  }
  std::shared_ptr<stream_record> record = *record_result;

  std::vector<query_param> params;
  for (auto p : url.params())
    params.push_back({p.key, p.value, p.has_value});
  auto query = parse_read_query(params);
  if (!query) {
    res = error_response(req, query.error());
    co_return co_await respond(conn, res);
  }

  const stream_config& c = record->config();
  record->touch(now_ms());  // a read resets a sliding TTL
  published_state st = record->state();

  bool now_offset = query->offset && query->offset->kind == offset_request_kind::now;
  stream_position position;
  if (now_offset) {
    position = st.tail;
  } else if (query->offset && query->offset->kind == offset_request_kind::at) {
    const stream_offset& at = query->offset->at;
    if (at.prefix == c.offset_prefix && at.position > st.tail) {
      // A snapshot reads the database, which can show a commit a moment before the writer
      // publishes it: give such an offset a short grace before calling it beyond the tail.
      auto deadline = std::chrono::steady_clock::now() + k_publish_grace;
      while (record->state().tail < at.position &&
             record->state().lifecycle == stream_lifecycle::live && !stopping) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        co_await wait_for_change(
            conn, stopping, *record, record->state().tail,
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
      }
      st = record->state();
      if (stopping && at.position > st.tail) {
        // The grace was cut short by a shutdown: the offset may well be valid, so not 410.
        res = error_response(req, make_failure(failure_kind::unavailable, "server_stopping",
                                               "the server is shutting down; retry the read"));
        co_return co_await respond(conn, res);
      }
    }
    if (at.prefix != c.offset_prefix || at.position > st.tail) {
      bool foreign = at.prefix != c.offset_prefix;
      {
        res = error_response(
            req, make_failure(
                     failure_kind::gone, foreign ? "offset_not_for_stream" : "offset_beyond_tail",
                     std::string(foreign ? "this offset was not issued for this stream (it "
                                           "comes from another database, or from an "
                                           "earlier stream at this path)"
                                         : "this offset is beyond the stream's tail (the "
                                           "database was restored from an older copy)") +
                         "; re-read the stream from offset -1"));
        co_return co_await respond(conn, res);
      }
    }
    position = at.position;
  }

  if (position < st.pruned_upto) {
    // Retention removed what this reader asks for: say so, never skip ahead silently.
    bool feed = sqlite::is_change_feed_path(path);
    // A project's own feed resumes from its own snapshot (project ids are URL-safe).
    std::string snapshot = "/v1/changes/snapshot";
    if (auto project = sqlite::change_feed_project(path)) {
      snapshot += "?project=" + std::string(*project);
    }
    failure f = make_failure(
        failure_kind::gone, "offset_pruned",
        "the events before offset " + format_offset({c.offset_prefix, st.pruned_upto}) +
            " were removed by retention; " +
            (feed ? "load GET " + snapshot + " and follow the feed from its offset"
                  : std::string("re-read from the oldest retained offset")));
    f.with("oldest_offset", "\"" + format_offset({c.offset_prefix, st.pruned_upto}) + "\"");
    if (feed) f.with("snapshot", "\"" + snapshot + "\"");
    res = error_response(req, f);
    co_return co_await respond(conn, res);
  }

  std::optional<std::string> cursor;
  if (query->live != live_mode::none) {
    cursor = response_cursor(query->cursor, std::chrono::system_clock::now(),
                             random_cursor_jitter_seconds());
  }

  if (query->live == live_mode::sse) {
    co_return co_await begin_sse(req, conn, record, position, query->cursor, filter);
  }

  if (query->live == live_mode::none && now_offset) {
    res = make_response(req, bhttp::status::ok);
    res.set(bhttp::field::content_type, c.content_type);
    res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
    res.set("Stream-Up-To-Date", "true");
    if (st.closed) res.set("Stream-Closed", "true");
    res.set(bhttp::field::cache_control, "no-store");
    res.body() = c.payload == payload_mode::json ? "[]" : "";
    finish(res, false);
    co_return co_await respond(conn, res);
  }

  std::optional<gauge_hold> long_poll_gauge;
  if (query->live == live_mode::long_poll) long_poll_gauge.emplace(metrics.long_poll_readers);
  if (query->live == live_mode::long_poll && filter && filter->active()) {
    // Scan forward over events the filter drops, waiting at the tail, until one matches, the
    // stream closes or the timeout passes. The answer's offset covers everything scanned.
    auto deadline = std::chrono::steady_clock::now() + options.long_poll_timeout;
    for (;;) {
      st = record->state();
      if (st.lifecycle != stream_lifecycle::live) break;
      if (position < st.tail) {
        read_result r = co_await read_admitted(conn, record, position);
        if (!r.chunk || r.chunk->messages.empty()) break;
        bool any = std::any_of(r.chunk->messages.begin(), r.chunk->messages.end(),
                               [&](const message_ptr& m) { return filter->matches(*m); });
        if (any) break;
        position = r.chunk->upto();
        continue;
      }
      if (st.closed) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      auto waited = co_await wait_for_change(
          conn, stopping, *record, position,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
      // A shutdown answers like the timeout: what was scanned so far, or 204.
      if (waited == wait_outcome::stopping) break;
      if (std::chrono::steady_clock::now() >= deadline && record->state().tail <= position) break;
    }
    st = record->state();
  } else if (query->live == live_mode::long_poll && position >= st.tail) {
    if (!st.closed) {
      // A shutdown ends the wait early; the answer is then the timeout's 204. A wake-up with
      // nothing new (the round of a commit published before this wait began, delivered after
      // it) waits on: an early 204 would only send the client straight back.
      auto deadline = std::chrono::steady_clock::now() + options.long_poll_timeout;
      for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        auto waited = co_await wait_for_change(
            conn, stopping, *record, position,
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        if (waited != wait_outcome::changed) break;
        st = record->state();
        if (st.tail > position || st.closed || st.lifecycle != stream_lifecycle::live) break;
      }
      st = record->state();
      if (st.lifecycle == stream_lifecycle::removed) {
        res = error_response(req, stream_not_found());
        co_return co_await respond(conn, res);
      }
      if (st.lifecycle == stream_lifecycle::soft_deleted) {
        res = error_response(req, stream_gone());
        co_return co_await respond(conn, res);
      }
    }
    if (position >= st.tail) {
      res = up_to_date_response(req, c, st, *cursor);
      co_return co_await respond(conn, res);
    }
  }
  if (query->live == live_mode::long_poll && position >= st.tail) {
    res = up_to_date_response(req, c, st, *cursor);
    co_return co_await respond(conn, res);
  }
  res = co_await catch_up_response(req, conn, record, position, cursor, filter);
  co_return co_await respond(conn, res);
}
#pragma GCC diagnostic pop

awaitable<string_response> server::impl::catch_up_response(
    request& req, connection& conn, const std::shared_ptr<stream_record>& record,
    stream_position position, const std::optional<std::string>& cursor,
    const change_filter* filter) {
  const stream_config& c = record->config();
  read_result r = co_await read_admitted(conn, record, position);
  if (!r.chunk) co_return error_response(req, r.error);
  const read_chunk& chunk = *r.chunk;
  published_state st = record->state();
  stream_position next = chunk.upto();
  bool up_to_date = next >= st.tail;
  bool closed = st.closed && up_to_date;

  bool filtered = filter && filter->active();
  std::string etag = "\"" + hex16(c.offset_prefix) + ":" + std::to_string(position.value()) + ":" +
                     std::to_string(next.value()) + (closed ? ":c" : "") +
                     (filtered ? ":f" + hex16(fnv1a64(filter->fingerprint())) : "") + "\"";
  auto if_none_match = req[bhttp::field::if_none_match];
  if (!if_none_match.empty() && if_none_match_matches(if_none_match, etag)) {
    auto res = make_response(req, bhttp::status::not_modified);
    res.set(bhttp::field::etag, etag);
    res.set("Stream-Next-Offset", format_offset({c.offset_prefix, next}));
    finish(res, true);
    co_return res;
  }

  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, c.content_type);
  res.set("Stream-Next-Offset", format_offset({c.offset_prefix, next}));
  if (up_to_date) res.set("Stream-Up-To-Date", "true");
  if (closed) res.set("Stream-Closed", "true");
  if (cursor && !closed) res.set("Stream-Cursor", *cursor);
  res.set(bhttp::field::etag, etag);
  // A chunk that ends before the tail, or at the end of a closed stream, never changes; one
  // that reaches the tail of an open stream must be revalidated (its ETag makes that cheap).
  if (!up_to_date || closed) {
    std::int64_t max_age = k_immutable_max_age_seconds;
    if (c.ttl_seconds) max_age = std::min(max_age, *c.ttl_seconds);
    if (c.expires_at_ms)
      max_age = std::min(max_age, std::max<std::int64_t>(0, (*c.expires_at_ms - now_ms()) / 1000));
    res.set(bhttp::field::cache_control,
            "private, max-age=" + std::to_string(max_age) + ", stale-while-revalidate=300");
  } else {
    res.set(bhttp::field::cache_control, "no-cache");
  }
  if (filtered) {
    std::vector<message_ptr> kept;
    for (const auto& m : chunk.messages) {
      if (filter->matches(*m)) kept.push_back(m);
    }
    res.body() = encode_body(c.payload, kept);
  } else {
    res.body() =
        chunk.shared ? chunk.shared->body(c.payload) : encode_body(c.payload, chunk.messages);
  }
  finish(res, false);
  co_return res;
}

}  // namespace ordo::http
