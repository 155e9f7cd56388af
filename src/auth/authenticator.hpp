// Who sent a request: the bearer token's principal, through JWT verification or the API tokens
// file, with a cache so that a token is verified once, not on every request.
//
// Modes (--auth): none (no authentication: every request acts as admin), jwt, tokens, or both
// ("jwt,tokens": a token shaped like an API token is looked up, any other verified as a JWT).
//
// The cache maps a token to its principal until the earlier of the token's expiry and
// k_cache_ttl, at most k_max_cached_tokens entries (when full it is emptied: a flood of
// distinct valid tokens costs verification, never memory). A change of the tokens file (checked
// at most every k_tokens_file_check) reloads it and empties the cache, so a revoked token stops
// working within that interval. A reload that fails keeps the tokens already loaded and logs
// why.
//
// Failures are logged at most k_failure_log_interval apart, with a count of those not logged,
// so an attacker cannot flood the log.
//
// Thread safety: authenticate() may run on any thread; mu_ guards the cache, the token set and
// the failure log's state. The verifier is immutable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/api_tokens.hpp"
#include "auth/jwt.hpp"
#include "auth/scope.hpp"
#include "base/result.hpp"
#include "base/thread_annotations.hpp"

namespace ordo::auth {

inline constexpr std::size_t k_max_cached_tokens = 10'000;
inline constexpr std::chrono::seconds k_cache_ttl{60};
inline constexpr std::chrono::seconds k_tokens_file_check{1};
inline constexpr std::chrono::seconds k_failure_log_interval{10};

struct auth_options {
  bool jwt = false;
  bool tokens = false;
  jwt_options jwt_keys;
  std::string tokens_file;
};

// "none", "jwt", "tokens", "jwt,tokens" (either order) into the flags of auth_options.
result<auth_options> parse_auth_mode(std::string_view mode);

class authenticator {
 public:
  // Loads keys and the tokens file; fails with a message naming what to fix.
  static result<std::unique_ptr<authenticator>> open(auth_options options);
  ~authenticator();

  bool enabled() const { return options_.jwt || options_.tokens; }
  // "none", "jwt", "tokens" or "jwt,tokens".
  std::string mode_name() const;

  // The principal of a bearer token (the credential of an Authorization: Bearer header or the
  // dashboard's cookie), or unauthenticated with the reason. `now_ms`: since the epoch.
  result<std::shared_ptr<const principal>> authenticate(std::string_view token,
                                                        std::int64_t now_ms);

  // Logs a refused credential (rate-limited); `peer` is the client's address.
  void log_failure(const failure& f, std::string_view peer);

  // Tokens verified from the cache, and verified afresh (for /metrics).
  std::uint64_t cache_hits() const { return cache_hits_.load(); }
  std::uint64_t verifications() const { return verifications_.load(); }
  std::uint64_t failures() const { return failures_.load(); }

 private:
  explicit authenticator(auth_options options) : options_(std::move(options)) {}
  result<std::shared_ptr<const principal>> verify(std::string_view token, std::int64_t now_ms);
  // `on_miss`: an API token not in the set, perhaps created a moment ago: the file is looked at
  // now, so a token just created works at once (a stat() per unknown token, about a
  // microsecond, against the tens a refused request costs anyway). Otherwise at most every
  // k_tokens_file_check.
  void reload_tokens_if_changed(bool on_miss) REQUIRES(mu_);

  struct cached {
    std::shared_ptr<const principal> who;
    std::int64_t valid_until_ms = 0;
  };
  struct file_stamp {
    std::int64_t mtime_ns = 0;
    std::uintmax_t size = 0;
    std::uint64_t inode = 0;
    bool operator==(const file_stamp&) const = default;
  };
  static std::optional<file_stamp> stamp_of(const std::string& path);

  const auth_options options_;
  std::unique_ptr<jwt_verifier> jwt_;
  mutex mu_;
  std::unordered_map<std::string, cached> cache_ GUARDED_BY(mu_);
  std::shared_ptr<const api_token_set> tokens_ GUARDED_BY(mu_);
  std::optional<file_stamp> tokens_stamp_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point tokens_checked_ GUARDED_BY(mu_){};
  std::chrono::steady_clock::time_point last_failure_log_ GUARDED_BY(mu_){};
  std::uint64_t failures_not_logged_ GUARDED_BY(mu_) = 0;
  std::atomic<std::uint64_t> cache_hits_{0};
  std::atomic<std::uint64_t> verifications_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace ordo::auth
