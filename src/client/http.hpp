// The client's HTTP/1.1 transport: one keep-alive connection to one server, with timeouts and
// cancellation, over TCP or, for https://, TLS 1.2 or later (the server's certificate verified
// against the system's CA certificates or a given CA file, and its host name checked).
// Beast stays inside http.cpp; nothing here pulls it in.
//
// Thread safety: an http_connection is used by one thread at a time; cancel() may be called
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace ordo::client {

// Where a server is: `http://host[:port][/prefix]` or `https://…`.
struct server_address {
  std::string host;
  std::string port = "80";  // "443" for https:// without a port
  std::string prefix;       // without a trailing '/', e.g. "" or "/ordo"
  bool tls = false;         // https://
};

// invalid_url names what is wrong (http:// and https:// are spoken).
result<server_address> parse_server_url(std::string_view url);

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_request {
  std::string method = "GET";
  std::string target;  // path and query, e.g. "/v1/stream/a?offset=-1"
  header_list headers;
  std::string body;
  // Whether sending it twice is harmless (GET, HEAD, PUT, DELETE, a producer's POST): such a
  // request is sent again on a fresh connection when a kept-alive one turns out to be closed.
  bool idempotent = true;
};

struct http_response {
  int status = 0;
  header_list headers;
  std::string body;

  // The first header of that name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
};

// Transport failures have kind unavailable and one of these codes.
inline constexpr std::string_view k_connection_failed = "connection_failed";
inline constexpr std::string_view k_timed_out = "timed_out";
inline constexpr std::string_view k_cancelled = "cancelled";
// The server's certificate was not trusted (unknown CA, expired, another host's): sending again
// cannot help, so it is not retryable (is_retryable, client.hpp).
inline constexpr std::string_view k_tls_verify_failed = "tls_verify_failed";

// How an https:// connection decides whom to trust.
struct tls_trust {
  // PEM file of the CA certificates to trust instead of the system's (--cacert, ORDO_CACERT);
  // empty: the system's.
  std::string ca_file;
};

class http_connection {
 public:
  // A CA file that does not load fails the first request, with code tls_ca_invalid.
  explicit http_connection(server_address server, tls_trust trust = {});
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  // Sends `request` and reads the whole response within `timeout`.
  result<http_response> send(const http_request& request, std::chrono::milliseconds timeout);

  // Sends `request`; once the status and headers are in, calls on_head (false: stop there),
  // then hands the body to on_body as it arrives, until it ends, on_body returns false, no byte
  // arrives for `idle_timeout`, or cancel(). The response returned has an empty body.
  result<http_response> stream(const http_request& request,
                               const std::function<bool(const http_response&)>& on_head,
                               const std::function<bool(std::string_view)>& on_body,
                               std::chrono::milliseconds idle_timeout);

  // Aborts what is in progress, now or next (it fails with k_cancelled); from any thread.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace ordo::client
