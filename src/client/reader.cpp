#include "client/reader.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <thread>

#include "base/base64.hpp"

namespace ordo::client {

namespace json = boost::json;

namespace {

// One parsed SSE block.
struct sse_block {
  std::string event;
  std::string data;
};

sse_block parse_block(std::string_view block) {
  sse_block b;
  bool first_data = true;
  while (!block.empty()) {
    auto nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
    if (line.empty() || line.front() == ':') continue;
    auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") {
      b.event = std::string(value);
    } else if (field == "data") {
      if (!first_data) b.data.push_back('\n');
      b.data.append(value);
      first_data = false;
    }
  }
  return b;
}

bool header_is(const http_response& r, std::string_view name, std::string_view prefix) {
  auto v = r.header(name);
  return v && v->rfind(prefix, 0) == 0;
}

}  // namespace

reader::reader(client_options client, reader_options options)
    : client_options_(std::move(client)), options_(std::move(options)) {
  offset_ = options_.offset;
}

result<std::unique_ptr<reader>> reader::open(client_options client, reader_options options) {
  std::unique_ptr<reader> r(new reader(std::move(client), std::move(options)));
  if (auto s = r->reconnect(); !s) return std::move(s).error();
  return r;
}

status reader::reconnect() {
  auto c = stream_client::connect(client_options_);
  if (!c) return std::move(c).error();
  mutex_lock lock(client_mu_);
  if (cancelled_) (*c)->cancel();
  client_ = std::move(*c);
  return ok_v;
}

void reader::cancel() {
  cancelled_ = true;
  {
    mutex_lock lock(client_mu_);
    if (client_) client_->cancel();
  }
  { mutex_lock lock(state_mu_); }
  wake_.notify_all();
}

std::string reader::target() const {
  return options_.target.empty() ? stream_client::stream_target(options_.path) : options_.target;
}

std::string reader::offset() const {
  mutex_lock lock(state_mu_);
  return offset_;
}

reader_stats reader::stats() const {
  mutex_lock lock(state_mu_);
  return stats_;
}

result<stop_reason> reader::run(const std::function<bool(const read_event&)>& on_event) {
  bool caught_up = false;
  int failures = 0;
  int empty_sse = 0;
  auto failing_since = std::chrono::steady_clock::now();
  for (;;) {
    if (cancelled_) return stop_reason::cancelled;
    result<step> s = step::go_on;
    bool delivered = true;
    bool use_sse =
        options_.live == live_mode::sse || (options_.live == live_mode::automatic && sse_works_);
    if (!caught_up) {
      s = catch_up(on_event);
      if (s && *s == step::go_on) {
        mutex_lock lock(state_mu_);
        caught_up = up_to_date_;
      }
    } else if (use_sse) {
      s = follow_sse(on_event, delivered);
    } else {
      s = follow_long_poll(on_event);
    }
    if (s) {
      switch (*s) {
        case step::stop_closed:
          return stop_reason::closed;
        case step::stop_caught_up:
          return stop_reason::caught_up;
        case step::stop_caller:
          return stop_reason::stopped_by_caller;
        case step::stop_cancelled:
          return stop_reason::cancelled;
        case step::go_on:
          break;
      }
      failures = 0;
      if (use_sse && caught_up && !delivered && options_.live == live_mode::automatic &&
          ++empty_sse >= options_.sse_failures_before_fallback) {
        sse_works_ = false;  // SSE connections keep ending with nothing: long-poll instead
        mutex_lock lock(state_mu_);
        stats_.using_long_poll = true;
      }
      if (delivered) empty_sse = 0;
      continue;
    }
    failure f = std::move(s).error();
    if (cancelled_ || f.code == k_cancelled) return stop_reason::cancelled;
    if (f.kind == failure_kind::gone) {
      // The offset is not valid here any more (another or a replaced database, retention).
      {
        mutex_lock lock(state_mu_);
        stats_.resyncs += 1;
      }
      read_event e;
      e.what = read_event::kind::resync;
      e.error = f;
      e.offset = "-1";
      if (!on_event(e)) return stop_reason::stopped_by_caller;
      if (!options_.restart_on_resync) return f;
      mutex_lock lock(state_mu_);
      offset_ = "-1";
      cursor_.reset();
      caught_up = false;
      up_to_date_ = false;
      continue;
    }
    if (!is_retryable(f)) return f;
    if (failures == 0) failing_since = std::chrono::steady_clock::now();
    const retry_policy& policy = options_.retry;
    if (policy.exhausted(failures + 1, std::chrono::steady_clock::now() - failing_since)) {
      return f;
    }
    auto wait = policy.wait_before(failures, f, rng_);
    failures += 1;
    {
      mutex_lock lock(state_mu_);
      stats_.reconnects += 1;
      lock.wait_for(wake_, wait, [&]() REQUIRES(state_mu_) { return cancelled_.load(); });
    }
    if (auto c = reconnect(); !c) return std::move(c).error();
  }
}

result<reader::step> reader::deliver(read_page page,
                                     const std::function<bool(const read_event&)>& on_event,
                                     bool catching_up) {
  if (!page.messages.empty()) {
    read_event e;
    e.messages = std::move(page.messages);
    e.json = page.json;
    e.offset = page.next_offset;
    if (!on_event(e)) return step::stop_caller;
  }
  {
    mutex_lock lock(state_mu_);
    if (!page.next_offset.empty()) offset_ = page.next_offset;
    if (catching_up) {
      up_to_date_ = page.up_to_date;
    } else {
      cursor_ = page.cursor;
    }
  }
  if (catching_up) json_ = page.json;
  if (page.closed && page.up_to_date) {
    read_event e;
    e.what = read_event::kind::closed;
    e.offset = page.next_offset;
    on_event(e);
    return step::stop_closed;
  }
  if (catching_up && page.up_to_date) {
    read_event e;
    e.what = read_event::kind::up_to_date;
    e.offset = page.next_offset;
    if (!on_event(e)) return step::stop_caller;
    if (options_.live == live_mode::none) return step::stop_caught_up;
  }
  return step::go_on;
}

result<reader::step> reader::catch_up(const std::function<bool(const read_event&)>& on_event) {
  auto page = client_->read_target(target(), offset());
  if (!page) return std::move(page).error();
  return deliver(std::move(*page), on_event, true);
}

result<reader::step> reader::follow_long_poll(
    const std::function<bool(const read_event&)>& on_event) {
  std::optional<std::string> cursor;
  std::string from;
  {
    mutex_lock lock(state_mu_);
    cursor = cursor_;
    from = offset_;
  }
  auto page = client_->long_poll_target(target(), from, cursor);
  if (!page) return std::move(page).error();
  return deliver(std::move(*page), on_event, false);
}

result<reader::step> reader::follow_sse(const std::function<bool(const read_event&)>& on_event,
                                        bool& delivered) {
  delivered = false;
  http_request r;
  {
    mutex_lock lock(state_mu_);
    r.target = target() + "?offset=" + offset_ + "&live=sse";
    if (cursor_) r.target += "&cursor=" + *cursor_;
  }
  std::optional<http_response> head;
  std::string error_body;
  bool base64 = false;
  bool unsupported = false;
  std::string buffer;
  std::vector<std::string> pending;  // data events waiting for their control event
  std::optional<step> stop;
  std::optional<failure> bad;

  auto on_head = [&](const http_response& h) {
    head = h;
    if (h.status != 200) return true;  // read the JSON error
    if (!header_is(h, "Content-Type", "text/event-stream")) {
      unsupported = true;
      return false;
    }
    base64 = h.header("Stream-SSE-Data-Encoding") == "base64";
    return true;
  };
  auto handle_block = [&](std::string_view text) -> bool {
    sse_block b = parse_block(text);
    if (b.event == "data") {
      if (base64) {
        auto bytes = base64_decode(b.data);
        if (!bytes) {
          bad = make_failure(failure_kind::internal, "invalid_response",
                             "an SSE data event is not valid base64");
          return false;
        }
        pending.push_back(std::move(*bytes));
      } else if (json_) {
        auto values = split_json_array(b.data);
        if (!values) {
          bad = std::move(values).error();
          return false;
        }
        for (auto& v : *values)
          pending.push_back(std::move(v));
      } else {
        pending.push_back(std::move(b.data));
      }
      return true;
    }
    if (b.event != "control") return true;
    boost::system::error_code ec;
    json::value v = json::parse(b.data, ec);
    if (ec || !v.is_object()) {
      bad = make_failure(failure_kind::internal, "invalid_response",
                         "an SSE control event is not a JSON object");
      return false;
    }
    const json::object& o = v.as_object();
    std::string next;
    if (auto* n = o.if_contains("streamNextOffset"); n && n->is_string()) {
      next = std::string(n->as_string());
    }
    bool up_to_date = false, closed = false;
    if (auto* u = o.if_contains("upToDate"); u && u->is_bool()) up_to_date = u->as_bool();
    if (auto* c = o.if_contains("streamClosed"); c && c->is_bool()) closed = c->as_bool();
    if (!pending.empty()) {
      read_event e;
      e.messages = std::move(pending);
      e.json = json_;
      pending.clear();
      e.offset = next;
      delivered = true;
      if (!on_event(e)) {
        stop = step::stop_caller;
        return false;
      }
    } else if (up_to_date && !closed) {
      read_event e;
      e.what = read_event::kind::up_to_date;
      e.offset = next;
      delivered = true;
      if (!on_event(e)) {
        stop = step::stop_caller;
        return false;
      }
    }
    {
      mutex_lock lock(state_mu_);
      if (!next.empty()) offset_ = next;
      if (auto* c = o.if_contains("streamCursor"); c && c->is_string()) {
        cursor_ = std::string(c->as_string());
      }
    }
    if (closed && up_to_date) {
      read_event e;
      e.what = read_event::kind::closed;
      e.offset = next;
      on_event(e);
      stop = step::stop_closed;
      return false;
    }
    return true;
  };
  auto on_body = [&](std::string_view chunk) -> bool {
    if (head && head->status != 200) {
      if (error_body.size() < 64 * 1024) error_body.append(chunk);
      return true;
    }
    for (char c : chunk) {
      if (c != '\r') buffer.push_back(c);
    }
    std::size_t start = 0;
    for (;;) {
      auto end = buffer.find("\n\n", start);
      if (end == std::string::npos) break;
      bool go_on = handle_block(std::string_view(buffer).substr(start, end - start));
      start = end + 2;
      if (!go_on) {
        buffer.erase(0, start);
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };

  auto res = client_->stream(std::move(r), on_head, on_body, options_.idle_timeout);
  if (bad) return *bad;
  if (stop) return *stop;
  if (!res) {
    // Cut off: what was delivered stands; resume from its offset.
    if (delivered && res.error().code != k_cancelled) return step::go_on;
    return std::move(res).error();
  }
  if (unsupported) {
    sse_works_ = options_.live == live_mode::sse;
    if (options_.live == live_mode::sse) {
      return make_failure(failure_kind::invalid, "sse_unsupported",
                          "the server did not answer with an event stream");
    }
    mutex_lock lock(state_mu_);
    stats_.using_long_poll = true;
    return step::go_on;
  }
  if (res->status != 200) {
    http_response full = *res;
    full.body = error_body;
    failure f = failure_from_response(full);
    if (options_.live == live_mode::automatic &&
        (res->status == 400 || res->status == 405 || res->status == 406 || res->status == 501) &&
        f.code != "invalid_offset") {
      sse_works_ = false;
      mutex_lock lock(state_mu_);
      stats_.using_long_poll = true;
      return step::go_on;
    }
    return f;
  }
  return step::go_on;  // the server ended the response: reconnect from the offset
}

}  // namespace ordo::client
