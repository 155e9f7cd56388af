// Opaque API tokens: random secrets the server knows only by their SHA-256.
//
// A token reads `ordo_<id>_<secret>`: `id` is 12 hex digits naming it in lists, logs and
// `ordo token revoke`; `secret` is 32 random bytes (OpenSSL's RAND_bytes) in base64url. The
// tokens file stores one JSON object per line and never the token itself:
//
//   {"id":"3f9c0a1b2c4d","sha256":"<64 hex digits: SHA-256 of the whole token>",
//    "scopes":"streams:read:chat/** sessions:read:web-app","name":"dashboard",
//    "created":"2026-12-02T10:00:00Z","expires":"2027-01-01T10:00:00Z"}
//
// `expires` may be null (never). Blank lines and lines starting with '#' are skipped. Every
// other line must be such an object, with scopes this server knows: a file that does not parse
// is refused whole, at start-up and at reload, so a typo never silently drops a token's
// restrictions. `ordo token create` appends a line (writing a new file and renaming it over the
// old), `ordo token revoke` removes one; a running server picks the change up (authenticator).
//
// Thread safety: free functions; api_token_set is immutable once loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/scope.hpp"
#include "base/result.hpp"

namespace ordo::auth {

inline constexpr std::string_view k_api_token_prefix = "ordo_";

struct api_token_entry {
  std::string id;
  std::string sha256_hex;
  std::vector<scope> scopes;
  std::string name;
  std::string created;                     // RFC 3339
  std::optional<std::int64_t> expires_ms;  // nullopt: never
};

// The SHA-256 of `token`, in lowercase hex.
std::string sha256_hex(std::string_view token);

// Whether `token` has the shape of an API token (so a JWT is not looked up here).
bool looks_like_api_token(std::string_view token);

struct api_token_set {
  std::vector<api_token_entry> entries;
  std::unordered_map<std::string, std::size_t> by_hash;  // sha256_hex -> index

  const api_token_entry* find(std::string_view token) const;
};

// Parses a tokens file's text; `path` names it in errors (with the line).
result<api_token_set> parse_api_tokens(std::string_view text, const std::string& path);
// Reads and parses the file; a missing file is an empty set only when `missing_ok`.
result<api_token_set> load_api_tokens(const std::string& path, bool missing_ok);

struct minted_token {
  std::string token;  // shown once
  api_token_entry entry;
};

// A new token with these scopes (checked strictly) and lifetime (nullopt: never expires),
// appended to the file at `path` (created with mode 0600 if missing) by writing a new file and
// renaming it over the old one.
result<minted_token> create_api_token(const std::string& path, const std::string& scopes,
                                      std::optional<std::chrono::milliseconds> lifetime,
                                      const std::string& name, std::int64_t now_ms);

// Removes the token with this id from the file; not_found if there is none.
result<api_token_entry> revoke_api_token(const std::string& path, const std::string& id);

// The line the file stores for an entry (no newline).
std::string api_token_line(const api_token_entry& e);

}  // namespace ordo::auth
