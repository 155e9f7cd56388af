// Harness: what a request's credential goes through before any route (auth/, http/access.hpp):
// JWT verification (against an HS256 secret and an Ed25519 key loaded once), scope lists, the API
// tokens file, the Authorization and Cookie headers, and stream globs. Invariants: an accepted
// JWT has a subject and an expiry after now; a parsed scope writes back to text that parses to
// the same scope; a parsed tokens file writes back line by line to the same entries; a bearer
// token or cookie value is a substring of its header, without surrounding blanks; a glob
// without stars matches exactly itself and "**" matches everything.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "auth/api_tokens.hpp"
#include "auth/jwt.hpp"
#include "auth/scope.hpp"
#include "fuzz/check.hpp"
#include "http/access.hpp"

using ordo::fuzz::check;

namespace {

// The seeds' tokens are signed with this secret (fuzz/make_seeds.py), so mutations of a valid
// token reach the claims checks, not only the signature's.
constexpr const char* k_secret = "ordo-fuzz-hs256-secret-0123456789abcdef";
constexpr std::int64_t k_now_ms = 1'800'000'000'000;

std::unique_ptr<ordo::auth::jwt_verifier> verifier;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto dir =
      std::filesystem::temp_directory_path() / ("ordo-fuzz-tokens-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "secret") << k_secret << "\n";
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  FILE* pem = std::fopen((dir / "keys.pem").c_str(), "w");
  PEM_write_PUBKEY(pem, key);
  std::fclose(pem);
  EVP_PKEY_free(key);
  ordo::auth::jwt_options o;
  o.hs256_secret_file = (dir / "secret").string();
  o.keys_file = (dir / "keys.pem").string();
  o.audience = "ordo";
  auto v = ordo::auth::jwt_verifier::load(o);
  check(v.ok(), "the harness's keys load");
  verifier = std::move(*v);
  std::filesystem::remove_all(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange(0, 4);
  if (mode == 0) {
    std::string token = in.ConsumeRemainingBytesAsString();
    auto p = verifier->verify(token, k_now_ms);
    if (p) {
      check(!p->subject.empty(), "an accepted token has a subject");
      check(p->expires_at_ms && *p->expires_at_ms > k_now_ms, "an accepted token has not expired");
    } else {
      check(p.error().kind == ordo::failure_kind::unauthenticated, "a refusal is a 401");
    }
  } else if (mode == 1) {
    bool strict = in.ConsumeBool();
    std::string text = in.ConsumeRemainingBytesAsString();
    auto scopes = ordo::auth::parse_scopes(text, strict);
    if (scopes) {
      for (const auto& s : *scopes) {
        auto again = ordo::auth::parse_scope(s.to_string());
        check(again.ok(), "a parsed scope's text parses");
        check(again->to_string() == s.to_string(), "a scope round-trips");
      }
    } else {
      check(strict, "only a strict list fails");
    }
  } else if (mode == 2) {
    std::string text = in.ConsumeRemainingBytesAsString();
    auto set = ordo::auth::parse_api_tokens(text, "fuzz");
    if (set) {
      for (const auto& e : set->entries) {
        auto again = ordo::auth::parse_api_tokens(ordo::auth::api_token_line(e), "fuzz");
        check(again.ok() && again->entries.size() == 1, "an entry's line parses");
        const auto& f = again->entries[0];
        check(f.id == e.id && f.sha256_hex == e.sha256_hex && f.expires_ms == e.expires_ms,
              "an entry round-trips");
        check(set->find("x") == nullptr || set->by_hash.count(ordo::auth::sha256_hex("x")),
              "find agrees with the hash index");
      }
    }
  } else if (mode == 3) {
    std::string header = in.ConsumeRemainingBytesAsString();
    if (auto token = ordo::http::bearer_token(header)) {
      check(header.find(*token) != std::string::npos, "the token is part of the header");
      check(token->empty() || (token->front() != ' ' && token->back() != ' '), "no blanks");
    }
    if (auto cookie = ordo::http::cookie_value(header, ordo::http::k_session_cookie)) {
      check(header.find(*cookie) != std::string::npos, "the cookie is part of the header");
    }
  } else {
    std::string glob = in.ConsumeRandomLengthString(64);
    std::string path = in.ConsumeRemainingBytesAsString();
    bool matches = ordo::auth::glob_matches(glob, path);
    if (glob.find('*') == std::string::npos) check(matches == (glob == path), "a literal glob");
    check(ordo::auth::glob_matches("**", path), "** matches everything");
    if (path.find('/') == std::string::npos) {
      check(ordo::auth::glob_matches("*", path), "* matches a segment");
    }
  }
  return 0;
}
