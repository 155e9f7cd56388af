// What the HTTP layer counts for /metrics, and the page it is written to (render_metrics). No
// Beast here: the server's Beast files count (server_impl.hpp names them), metrics.cpp writes
// the exposition.
//
// Thread safety: the network threads and the wake thread count, a scrape reads; every member
// is an atomic, so counting takes no lock and allocates nothing.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/authenticator.hpp"
#include "base/metrics.hpp"
#include "http/token_limits.hpp"
#include "sessions/session_service.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::http {

// Which part of the API a request was for: the `route` label of ordo_http_responses_total.
enum class route_class { streams, sessions, changes, dashboard, health, metrics, other };
inline constexpr std::size_t k_route_classes = 7;
std::string_view to_string(route_class r);
// The class of a request path (before it is validated: an unknown path is `other`).
route_class classify_route(std::string_view path);

struct server_metrics {
  // Responses by route class and status class (1xx to 5xx).
  std::array<std::array<metrics::counter, 5>, k_route_classes> responses;
  // SSE readers cut off because their socket took no byte for --sse-write-timeout.
  metrics::counter slow_readers_reset;
  // Catch-up reads that had to wait in line for --max-catch-up-reads, and those refused with
  // 503 catch_up_busy after --catch-up-wait-timeout.
  metrics::counter catch_up_waits;
  metrics::counter catch_up_refusals;
  std::atomic<std::int64_t> sse_readers{0};
  std::atomic<std::int64_t> long_poll_readers{0};

  void count_response(route_class route, unsigned status) {
    std::size_t status_class = status / 100;
    if (status_class < 1 || status_class > 5) return;
    responses[static_cast<std::size_t>(route)][status_class - 1].add();
  }
};

// Holds one unit of a gauge while it lives (an SSE reader, a waiting long-poll).
class gauge_hold {
 public:
  explicit gauge_hold(std::atomic<std::int64_t>& gauge) : gauge_(gauge) {
    gauge_.fetch_add(1, std::memory_order_relaxed);
  }
  ~gauge_hold() { gauge_.fetch_sub(1, std::memory_order_relaxed); }
  gauge_hold(const gauge_hold&) = delete;
  gauge_hold& operator=(const gauge_hold&) = delete;

 private:
  std::atomic<std::int64_t>& gauge_;
};

// Everything one scrape reports, gathered by the server.
struct metrics_scrape {
  const stream_engine& engine;
  const server_metrics& server;
  std::size_t open_connections = 0;
  std::size_t catch_up_active = 0;
  std::size_t catch_up_waiting = 0;
  // nullopt when the database could not be read (the scrape still answers, without them).
  std::optional<sessions::session_counts> sessions;
  const sessions::background_metrics* background = nullptr;
  // Authentication and the per-token caps; null when authentication is off.
  const auth::authenticator* auth = nullptr;
  const token_limits* limits = nullptr;
};

// The Prometheus text exposition (format 0.0.4) of every ordo metric, plus the standard
// process_* metrics read from /proc/self.
std::string render_metrics(const metrics_scrape& scrape);

// The Content-Type of that text.
inline constexpr std::string_view k_metrics_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ordo::http
