// The ordo C++ client: Durable Streams create / append / read / head / close / delete against
// any conforming server, plus the shared retry policy the producer and reader use.
//
//   auto c = ordo::client::stream_client::connect({.url = "http://127.0.0.1:4437"});
//   auto created = (*c)->create("chat/1", {.content_type = "application/json"});
//   auto appended = (*c)->append("chat/1", R"({"text":"hi"})");
//   auto page = (*c)->read("chat/1", "-1");   // page->messages, page->next_offset
//
// Errors are failures with the server's error code (e.g. stream_not_found) and the HTTP status
// mapped to a failure_kind; transport errors have kind unavailable (connection_failed,
// timed_out, cancelled, tls_verify_failed).
//
// Thread safety: a stream_client is used by one thread at a time (it owns one keep-alive
// connection); make one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "client/http.hpp"

namespace ordo::client {

// Capped exponential backoff with full jitter: attempt n waits a random time in
// [0, min(max_delay, initial_delay * 2^n)], or what the server's Retry-After asks, if longer.
struct retry_policy {
  std::chrono::milliseconds initial_delay{50};
  std::chrono::milliseconds max_delay{5'000};
  // Give up after this many attempts (0: never) or once this much time has passed since the
  // first attempt (0: never); the last failure is then reported.
  int max_attempts = 0;
  std::chrono::milliseconds max_elapsed{60'000};

  std::chrono::milliseconds delay(int attempt, std::mt19937_64& rng) const;
  // The wait before retry `attempt` after `f`: the backoff, or the failure's Retry-After if
  // longer (capped at k_max_retry_after).
  std::chrono::milliseconds wait_before(int attempt, const failure& f, std::mt19937_64& rng) const;
  // Whether `attempts` failed attempts over `elapsed` exhaust the policy.
  bool exhausted(int attempts, std::chrono::steady_clock::duration elapsed) const;
};

// The longest Retry-After a client honours; a larger one is taken as this.
inline constexpr std::chrono::seconds k_max_retry_after{60};

// Whether a Content-Type names JSON (application/json or any +json type).
bool is_json_content_type(std::string_view content_type);

// Whether a failed request may succeed when sent again: transport errors (except
// cancellation and an untrusted server certificate, tls_verify_failed), timeouts, 5xx and 503
// with Retry-After, 429.
bool is_retryable(const failure& f);

struct client_options {
  std::string url = "http://127.0.0.1:4437";
  std::chrono::milliseconds request_timeout{30'000};
  // Extra headers on every request (e.g. Authorization).
  header_list headers;
  // For https:// URLs: the CA certificates trusted (default: the system's).
  tls_trust tls;
};

struct stream_info {
  std::string content_type;
  std::string next_offset;  // the tail: where an append would land
  bool closed = false;
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::string> expires_at;
};

struct create_options {
  std::string content_type = "application/octet-stream";
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::string> expires_at;  // RFC 3339
  bool closed = false;
  std::optional<std::string> initial_data;
};

struct append_options {
  std::optional<std::string> content_type;  // default: the stream's (a HEAD finds it)
  std::optional<std::string> stream_seq;    // Stream-Seq: must increase bytewise
  bool close = false;                       // close the stream with this append
};

struct append_ack {
  std::string next_offset;
  bool closed = false;
};

// One catch-up (or long-poll) read.
struct read_page {
  // The messages: for JSON streams each JSON value on its own; for other streams the bytes
  // read, as one element (byte streams have no message boundaries on the wire).
  std::vector<std::string> messages;
  std::string next_offset;
  std::optional<std::string> cursor;
  bool up_to_date = false;
  bool closed = false;
  bool json = false;
  bool timed_out = false;  // a long-poll that ended with no data (204)
};

class stream_client {
 public:
  // invalid_url when options.url is not http(s)://host[:port][/prefix]. Connects lazily.
  static result<std::unique_ptr<stream_client>> connect(client_options options);
  ~stream_client();

  result<stream_info> create(const std::string& path, const create_options& options = {});
  result<append_ack> append(const std::string& path, std::string data,
                            const append_options& options = {});
  // Catch-up read from `offset` ("-1": the start, "now": the tail).
  result<read_page> read(const std::string& path, const std::string& offset);
  // Waits up to the server's long-poll timeout for data after `offset`.
  result<read_page> long_poll(const std::string& path, const std::string& offset,
                              const std::optional<std::string>& cursor = std::nullopt);
  // The same at any URL path that speaks the Durable Streams read protocol.
  result<read_page> read_target(const std::string& target, const std::string& offset);
  result<read_page> long_poll_target(const std::string& target, const std::string& offset,
                                     const std::optional<std::string>& cursor = std::nullopt);
  result<stream_info> head(const std::string& path);
  result<append_ack> close(const std::string& path);
  status remove(const std::string& path);

  // A request against the server as it is (for the session API and tools); `timeout` defaults
  // to options().request_timeout.
  result<http_response> send(http_request request,
                             std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // A request whose response body is handed over as it arrives (SSE); see
  // http_connection::stream.
  result<http_response> stream(http_request request,
                               const std::function<bool(const http_response&)>& on_head,
                               const std::function<bool(std::string_view)>& on_body,
                               std::chrono::milliseconds idle_timeout);

  const client_options& options() const { return options_; }
  const server_address& server() const { return server_; }
  // Aborts the request in progress (and every later one); from any thread.
  void cancel();

  // The target of a stream's URL (percent-encoding each path segment).
  static std::string stream_target(const std::string& path);

 private:
  stream_client(client_options options, server_address server);
  result<read_page> read_page_from(const http_response& r, bool allow_no_content);
  void add_default_headers(http_request& request) const;

  client_options options_;
  server_address server_;
  std::unique_ptr<http_connection> connection_;
};

// A failure from a non-2xx response: its JSON error (code, message) if it has one.
failure failure_from_response(const http_response& r);

// JSON helpers shared by the reader and the CLI: splits a JSON array body into its values,
// each minified.
result<std::vector<std::string>> split_json_array(std::string_view body);

}  // namespace ordo::client
