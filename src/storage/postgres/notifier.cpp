#include "storage/postgres/notifier.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "storage/postgres/connection.hpp"

namespace ordo::postgres {

// ---- payloads ------------------------------------------------------------------------------

std::string notify_payload(std::string_view node, std::vector<std::int64_t> streams,
                           std::size_t limit) {
  std::sort(streams.begin(), streams.end());
  streams.erase(std::unique(streams.begin(), streams.end()), streams.end());
  std::string out(node);
  out += ' ';
  const std::size_t prefix = out.size();
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(streams[i]);
    if (out.size() > limit) break;
  }
  if (out.size() > limit || streams.empty()) {
    out.resize(prefix);
    out += '*';
  }
  return out;
}

std::optional<wake_hint> parse_notify_payload(std::string_view payload) {
  std::size_t space = payload.find(' ');
  if (space == std::string_view::npos || space == 0) return std::nullopt;
  wake_hint hint;
  hint.from_node = std::string(payload.substr(0, space));
  std::string_view rest = payload.substr(space + 1);
  if (rest == "*") {
    hint.all = true;
    return hint;
  }
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    std::int64_t id = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (ec != std::errc() || end != item.data() + item.size() || id <= 0) return std::nullopt;
    hint.streams.push_back(id);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
    if (rest.empty()) return std::nullopt;  // a trailing comma
  }
  if (hint.streams.empty()) return std::nullopt;
  return hint;
}

// ---- listener ------------------------------------------------------------------------------

namespace {
constexpr std::chrono::milliseconds k_first_backoff{100};
}

std::unique_ptr<listener> listener::start(listener_options options, on_hint hint) {
  std::unique_ptr<listener> l(new listener(std::move(options), std::move(hint)));
  if (!l->thread_.start("ordo-pg-listen", [p = l.get()] { p->run(); })) return nullptr;
  return l;
}

listener::listener(listener_options options, on_hint hint)
    : options_(std::move(options)), hint_(std::move(hint)) {}

listener::~listener() {
  thread_.stop();
}

void listener::run() {
  auto backoff = k_first_backoff;
  while (!thread_.stopping()) {
    const std::uint64_t before = connects_;
    if (!listen_once()) return;
    if (connects_ != before) backoff = k_first_backoff;  // it was up: start over
    connected_ = false;
    // Wait before reconnecting, or until stopped.
    if (!thread_.wait(backoff)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool listener::listen_once() {
  const std::string where = redacted(options_.url);
  auto db = connection::open(options_.url, {.application_name = "ordo listener"});
  if (!db) {
    spdlog::warn("LISTEN connection to {} failed: {}; retrying", where, db.error().message);
    return !thread_.stopping();
  }
  if (auto s = db->exec("LISTEN " + quoted_identifier(options_.channel)); !s) {
    spdlog::warn("LISTEN on {} failed: {}; retrying", where, s.error().message);
    return !thread_.stopping();
  }
  connected_ = true;
  if (++connects_ > 1) spdlog::info("LISTEN connection to {} is back", where);
  // Whatever was committed while no one listened is found by rechecking everything.
  hint_(wake_hint{.all = true});
  using clock = std::chrono::steady_clock;
  auto next_poll = clock::now() + options_.safety_poll;
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - clock::now());
    pollfd fds[2] = {{db->socket(), POLLIN, 0}, {thread_.stop_fd(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    if (thread_.stopping() || (n > 0 && fds[1].revents)) return false;
    if (n == 0) {
      // The safety poll; a query also finds a connection that broke without a word.
      if (auto alive = db->query("SELECT 1"); !alive) {
        spdlog::warn("LISTEN connection to {} lost: {}; reconnecting", where,
                     alive.error().message);
        return true;
      }
      hint_(wake_hint{.all = true});
      next_poll = clock::now() + options_.safety_poll;
    } else if (n > 0) {
      if (auto s = db->consume_input(); !s) {
        spdlog::warn("LISTEN connection to {} lost: {}; reconnecting", where, s.error().message);
        return true;
      }
    }
    for (const auto& note : db->take_notifications()) {
      if (note.channel != options_.channel) continue;
      auto hint = parse_notify_payload(note.payload);
      // A payload this version does not read still means something changed.
      hint_(hint ? *hint : wake_hint{.all = true});
    }
  }
}

}  // namespace ordo::postgres
