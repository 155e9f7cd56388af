// JSON Web Tokens (RFC 7519), verified with keys the operator configured: an HS256 secret, or
// public keys (Ed25519, P-256, RSA) from a PEM file or a JWKS file (RFC 7517).
//
// What a token must be to pass (anything else is refused with 401 and a reason):
//   - a compact JWS: three base64url parts, at most k_max_token_bytes in all;
//   - its header's `alg` one of HS256, RS256, ES256, EdDSA, and the algorithm of the key that
//     checks it. Each key has exactly one algorithm, fixed by its type when it is loaded (an
//     RSA key verifies RS256 only, a P-256 key ES256 only, an Ed25519 key EdDSA only, the
//     secret HS256 only), so `alg: none` and algorithm confusion (an HS256 token "signed" with
//     a public key's bytes as its secret) have no key to pass;
//   - when its header names a `kid`, checked by the key of that id only;
//   - `exp` present and in the future, `nbf` (if present) in the past, each with
//     k_clock_leeway; `iss` equal to the configured issuer and `aud` (a string or an array)
//     holding the configured audience, when those are configured.
// Its scopes come from the `scope` claim, space-separated (OAuth 2.0), or an array of strings;
// scopes this server does not know are skipped. Its subject is `sub`.
//
// Why not libjwt: Debian 12's libjwt (1.10) has neither EdDSA nor JWKS, and it takes the
// algorithm from the token's own header, which is how algorithm confusion happens. The
// cryptography here is all OpenSSL 3 (EVP); this file only parses the token's structure.
//
// Thread safety: a jwt_verifier is immutable after load(); verify() may run on any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scope.hpp"
#include "base/result.hpp"

namespace ordo::auth {

inline constexpr std::size_t k_max_token_bytes = 16 << 10;
inline constexpr std::chrono::seconds k_clock_leeway{30};

struct jwt_options {
  // A file holding the HS256 secret (its bytes, a trailing newline dropped); at least 32 bytes.
  std::string hs256_secret_file;
  // A file of public keys: PEM ("BEGIN PUBLIC KEY" blocks, one or more) or JWKS JSON.
  std::string keys_file;
  std::optional<std::string> issuer;
  std::optional<std::string> audience;
};

class jwt_verifier {
 public:
  // Loads the keys; a missing, unreadable or malformed file, a weak key (RSA below 2048 bits,
  // a secret below 32 bytes) or no key at all fails with a message naming the file.
  static result<std::unique_ptr<jwt_verifier>> load(const jwt_options& options);
  ~jwt_verifier();
  jwt_verifier(const jwt_verifier&) = delete;
  jwt_verifier& operator=(const jwt_verifier&) = delete;

  // The token's principal, or failure_kind::unauthenticated with code invalid_token and the
  // reason. `now_ms`: milliseconds since the epoch.
  result<principal> verify(std::string_view token, std::int64_t now_ms) const;

  // How many keys were loaded (for the start-up log).
  std::size_t key_count() const;

  struct key;

 private:
  jwt_verifier() = default;
  jwt_options options_;
  std::vector<std::unique_ptr<key>> keys_;
};

}  // namespace ordo::auth
