#include "auth/authenticator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include <sys/stat.h>

namespace ordo::auth {

namespace {

failure unauthenticated(std::string code, std::string message) {
  return make_failure(failure_kind::unauthenticated, std::move(code), std::move(message));
}

}  // namespace

result<auth_options> parse_auth_mode(std::string_view mode) {
  auth_options o;
  if (mode == "none") return o;
  std::size_t start = 0;
  while (start <= mode.size()) {
    std::size_t end = mode.find(',', start);
    if (end == std::string_view::npos) end = mode.size();
    std::string_view item = mode.substr(start, end - start);
    start = end + 1;
    if (item == "jwt") {
      o.jwt = true;
    } else if (item == "tokens") {
      o.tokens = true;
    } else {
      return make_failure(
          failure_kind::invalid, "invalid_auth_mode",
          "--auth is none, jwt, tokens or jwt,tokens; got '" + std::string(mode) + "'");
    }
  }
  return o;
}

result<std::unique_ptr<authenticator>> authenticator::open(auth_options options) {
  std::unique_ptr<authenticator> a(new authenticator(std::move(options)));
  if (a->options_.jwt) {
    auto v = jwt_verifier::load(a->options_.jwt_keys);
    if (!v) return std::move(v).error();
    a->jwt_ = std::move(*v);
  } else if (!a->options_.jwt_keys.hs256_secret_file.empty() ||
             !a->options_.jwt_keys.keys_file.empty()) {
    return make_failure(failure_kind::invalid, "invalid_auth_mode",
                        "JWT keys are configured but --auth does not include jwt");
  }
  if (a->options_.tokens) {
    if (a->options_.tokens_file.empty()) {
      return make_failure(failure_kind::invalid, "invalid_auth_mode",
                          "--auth tokens needs --auth-tokens-file (create one with `ordo token "
                          "create --tokens-file FILE --scope ...`)");
    }
    // The stamp first: a change made while this reads is then seen by the next check.
    auto stamp = stamp_of(a->options_.tokens_file);
    auto loaded = load_api_tokens(a->options_.tokens_file, false);
    if (!loaded) return std::move(loaded).error();
    mutex_lock lock(a->mu_);
    a->tokens_ = std::make_shared<const api_token_set>(std::move(*loaded));
    a->tokens_stamp_ = stamp;
    a->tokens_checked_ = std::chrono::steady_clock::now();
  } else if (!a->options_.tokens_file.empty()) {
    return make_failure(failure_kind::invalid, "invalid_auth_mode",
                        "--auth-tokens-file is set but --auth does not include tokens");
  }
  return a;
}

authenticator::~authenticator() = default;

std::optional<authenticator::file_stamp> authenticator::stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return file_stamp{
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
      static_cast<std::uintmax_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino)};
}

std::string authenticator::mode_name() const {
  if (options_.jwt && options_.tokens) return "jwt,tokens";
  if (options_.jwt) return "jwt";
  if (options_.tokens) return "tokens";
  return "none";
}

void authenticator::reload_tokens_if_changed(bool on_miss) {
  auto now = std::chrono::steady_clock::now();
  if (!on_miss) {
    if (now - tokens_checked_ < k_tokens_file_check) return;
    tokens_checked_ = now;
  }
  auto stamp = stamp_of(options_.tokens_file);
  if (!stamp) {
    spdlog::warn("auth: cannot stat the tokens file '{}'; keeping the tokens loaded",
                 options_.tokens_file);
    return;
  }
  if (tokens_stamp_ && *tokens_stamp_ == *stamp) return;
  auto loaded = load_api_tokens(options_.tokens_file, false);
  if (!loaded) {
    spdlog::error("auth: {}; keeping the tokens loaded before", loaded.error().message);
    return;
  }
  tokens_ = std::make_shared<const api_token_set>(std::move(*loaded));
  tokens_stamp_ = stamp;
  cache_.clear();  // a revoked token must not live on in the cache
  spdlog::info("auth: reloaded {} API token(s) from '{}'", tokens_->entries.size(),
               options_.tokens_file);
}

result<std::shared_ptr<const principal>> authenticator::verify(std::string_view token,
                                                               std::int64_t now_ms) {
  verifications_ += 1;
  if (options_.tokens && looks_like_api_token(token)) {
    std::shared_ptr<const api_token_set> set;
    {
      mutex_lock lock(mu_);
      set = tokens_;
    }
    const api_token_entry* e = set ? set->find(token) : nullptr;
    if (!e) {
      // Perhaps created a moment ago: look at the file again. (A throttle here, 100 ms, once
      // answered 401 to a token created within 100 ms of another miss.)
      mutex_lock lock(mu_);
      reload_tokens_if_changed(true);
      set = tokens_;
      e = set ? set->find(token) : nullptr;
    }
    if (!e)
      return unauthenticated("invalid_token",
                             "the API token is not known (revoked, or never issued here)");
    if (e->expires_ms && now_ms >= *e->expires_ms)
      return unauthenticated("invalid_token", "the API token has expired");
    auto p = std::make_shared<principal>();
    p->subject = "token:" + e->id;
    p->scopes = e->scopes;
    p->expires_at_ms = e->expires_ms;
    return std::shared_ptr<const principal>(std::move(p));
  }
  if (options_.jwt) {
    auto p = jwt_->verify(token, now_ms);
    if (!p) return std::move(p).error();
    return std::shared_ptr<const principal>(std::make_shared<principal>(std::move(*p)));
  }
  return unauthenticated("invalid_token",
                         "the token is not an API token of this server (they start with ordo_)");
}

result<std::shared_ptr<const principal>> authenticator::authenticate(std::string_view token,
                                                                     std::int64_t now_ms) {
  if (token.empty()) {
    failures_ += 1;
    return unauthenticated("missing_token", "send Authorization: Bearer TOKEN");
  }
  if (token.size() > k_max_token_bytes) {
    failures_ += 1;
    return unauthenticated("invalid_token", "the token is too long");
  }
  std::string key(token);
  {
    mutex_lock lock(mu_);
    if (options_.tokens) reload_tokens_if_changed(false);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (now_ms < it->second.valid_until_ms) {
        cache_hits_ += 1;
        return it->second.who;
      }
      cache_.erase(it);
    }
  }
  auto who = verify(token, now_ms);
  if (!who) {
    failures_ += 1;
    return who;
  }
  std::int64_t until = now_ms + std::chrono::milliseconds(k_cache_ttl).count();
  if ((*who)->expires_at_ms) until = std::min(until, *(*who)->expires_at_ms);
  mutex_lock lock(mu_);
  if (cache_.size() >= k_max_cached_tokens) cache_.clear();
  cache_[std::move(key)] = cached{*who, until};
  return who;
}

void authenticator::log_failure(const failure& f, std::string_view peer) {
  auto now = std::chrono::steady_clock::now();
  std::uint64_t skipped = 0;
  {
    mutex_lock lock(mu_);
    if (last_failure_log_ != std::chrono::steady_clock::time_point{} &&
        now - last_failure_log_ < k_failure_log_interval) {
      failures_not_logged_ += 1;
      return;
    }
    last_failure_log_ = now;
    skipped = failures_not_logged_;
    failures_not_logged_ = 0;
  }
  if (skipped > 0) {
    spdlog::warn("auth: refused a credential from {}: {} ({} more refusals since the last line)",
                 peer, f.message, skipped);
  } else {
    spdlog::warn("auth: refused a credential from {}: {}", peer, f.message);
  }
}

}  // namespace ordo::auth
