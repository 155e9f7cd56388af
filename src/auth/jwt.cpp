#include "auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <sstream>

#include "base/base64.hpp"

namespace ordo::auth {

namespace json = boost::json;

namespace {

enum class algorithm { hs256, rs256, es256, eddsa };

constexpr std::size_t k_min_hs256_secret_bytes = 32;
constexpr int k_min_rsa_bits = 2048;
constexpr std::size_t k_es256_signature_bytes = 64;
constexpr std::size_t k_p256_coordinate_bytes = 32;
constexpr std::size_t k_ed25519_key_bytes = 32;
constexpr int k_max_json_depth = 16;

std::optional<algorithm> algorithm_named(std::string_view name) {
  if (name == "HS256") return algorithm::hs256;
  if (name == "RS256") return algorithm::rs256;
  if (name == "ES256") return algorithm::es256;
  if (name == "EdDSA") return algorithm::eddsa;
  return std::nullopt;
}

failure refused(std::string why) {
  return make_failure(failure_kind::unauthenticated, "invalid_token", "the token " + why);
}

failure bad_file(const std::string& path, std::string why) {
  return make_failure(failure_kind::invalid, "invalid_auth_keys", "'" + path + "': " + why);
}

// OpenSSL's last error as text, clearing its queue.
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad_file(path, "cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  if (!in.good() && !in.eof()) return bad_file(path, "cannot be read");
  return s.str();
}

std::optional<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = k_max_json_depth;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return std::nullopt;
  return v;
}

std::optional<std::string_view> string_member(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string_view(v->as_string());
}

// A NumericDate (seconds since the epoch, possibly fractional) as milliseconds.
std::optional<std::int64_t> numeric_date_ms(const json::value& v) {
  double seconds = 0;
  if (v.is_int64()) {
    seconds = static_cast<double>(v.as_int64());
  } else if (v.is_uint64()) {
    seconds = static_cast<double>(v.as_uint64());
  } else if (v.is_double()) {
    seconds = v.as_double();
  } else {
    return std::nullopt;
  }
  // Far beyond any real date: refuse rather than overflow.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12) return std::nullopt;
  return static_cast<std::int64_t>(seconds * 1000);
}

}  // namespace

// One verification key: its algorithm is fixed here, by what the key is.
struct jwt_verifier::key {
  algorithm alg = algorithm::hs256;
  std::optional<std::string> kid;
  std::string secret;  // HS256
  pkey_ptr pkey;       // the others

  bool verify(std::string_view signing_input, std::string_view signature) const {
    if (alg == algorithm::hs256) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
                mac, &mac_len)) {
        ERR_clear_error();
        return false;
      }
      return signature.size() == mac_len && CRYPTO_memcmp(mac, signature.data(), mac_len) == 0;
    }
    std::string der;
    if (alg == algorithm::es256) {
      // JWS carries r || s (RFC 7518 section 3.4); OpenSSL verifies the DER form.
      if (signature.size() != k_es256_signature_bytes) return false;
      ECDSA_SIG* sig = ECDSA_SIG_new();
      BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()),
                            k_p256_coordinate_bytes, nullptr);
      BIGNUM* s = BN_bin2bn(
          reinterpret_cast<const unsigned char*>(signature.data() + k_p256_coordinate_bytes),
          k_p256_coordinate_bytes, nullptr);
      if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        ERR_clear_error();
        return false;
      }
      unsigned char* out = nullptr;
      int n = i2d_ECDSA_SIG(sig, &out);
      ECDSA_SIG_free(sig);
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
      OPENSSL_free(out);
      signature = der;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx) return false;
    // EdDSA hashes internally: no digest is named for it.
    const EVP_MD* md = alg == algorithm::eddsa ? nullptr : EVP_sha256();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pkey.get()) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                               signature.size(),
                               reinterpret_cast<const unsigned char*>(signing_input.data()),
                               signing_input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
  }
};

namespace {

using key = jwt_verifier::key;

// The algorithm a public key verifies, by its type; nullopt for a type or size not accepted.
result<algorithm> algorithm_of(EVP_PKEY* pkey, const std::string& path) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return algorithm::eddsa;
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < k_min_rsa_bits) {
      return bad_file(path, "an RSA key has fewer than 2048 bits");
    }
    return algorithm::rs256;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1 ||
        std::string_view(group) != "prime256v1") {
      ERR_clear_error();
      return bad_file(path, "an EC key is not on P-256 (ES256 is the only EC algorithm accepted)");
    }
    return algorithm::es256;
  }
  return bad_file(path, "a key is neither Ed25519, P-256 nor RSA");
}

result<std::vector<std::unique_ptr<key>>> load_pem(const std::string& text,
                                                   const std::string& path) {
  std::vector<std::unique_ptr<key>> out;
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  if (!bio) return bad_file(path, openssl_error());
  for (;;) {
    EVP_PKEY* p = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    if (!p) break;
    auto k = std::make_unique<key>();
    k->pkey.reset(p);
    auto alg = algorithm_of(p, path);
    if (!alg) {
      BIO_free(bio);
      return std::move(alg).error();
    }
    k->alg = *alg;
    out.push_back(std::move(k));
  }
  BIO_free(bio);
  ERR_clear_error();  // the read past the last key
  if (out.empty()) {
    return bad_file(path, "holds no public key (expected PEM \"BEGIN PUBLIC KEY\" blocks or JWKS)");
  }
  return out;
}

std::optional<std::string> b64_member(const json::object& o, std::string_view name) {
  auto text = string_member(o, name);
  if (!text) return std::nullopt;
  return base64url_decode(*text);
}

// One JWKS entry as a key (RFC 7518 section 6).
result<std::unique_ptr<key>> jwk_key(const json::object& jwk, const std::string& path,
                                     std::size_t index) {
  std::string where = "key " + std::to_string(index) + " of its JWKS";
  auto kty = string_member(jwk, "kty");
  if (!kty) return bad_file(path, where + " has no kty");
  auto k = std::make_unique<key>();
  if (auto kid = string_member(jwk, "kid")) k->kid = std::string(*kid);
  if (auto use = string_member(jwk, "use"); use && *use != "sig") {
    return bad_file(path, where + " is not for signatures (use: " + std::string(*use) + ")");
  }
  EVP_PKEY* pkey = nullptr;
  if (*kty == "OKP") {
    auto x = b64_member(jwk, "x");
    if (string_member(jwk, "crv") != std::optional<std::string_view>("Ed25519") || !x ||
        x->size() != k_ed25519_key_bytes) {
      return bad_file(path, where + " is an OKP key but not a valid Ed25519 public key");
    }
    pkey = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
  } else if (*kty == "EC" || *kty == "RSA") {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::vector<BIGNUM*> numbers;
    std::string point;
    bool ok = bld != nullptr;
    if (*kty == "EC") {
      auto x = b64_member(jwk, "x");
      auto y = b64_member(jwk, "y");
      if (string_member(jwk, "crv") != std::optional<std::string_view>("P-256") || !x || !y ||
          x->size() != k_p256_coordinate_bytes || y->size() != k_p256_coordinate_bytes) {
        OSSL_PARAM_BLD_free(bld);
        return bad_file(path, where + " is an EC key but not a valid P-256 public key");
      }
      point = "\x04" + *x + *y;  // uncompressed point
      ok = ok &&
           OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                            point.size());
    } else {
      auto n = b64_member(jwk, "n");
      auto e = b64_member(jwk, "e");
      if (!n || !e || n->empty() || e->empty()) {
        OSSL_PARAM_BLD_free(bld);
        return bad_file(path, where + " is an RSA key without a valid n and e");
      }
      for (const std::string* bytes : {&*n, &*e}) {
        numbers.push_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                                    static_cast<int>(bytes->size()), nullptr));
      }
      ok = ok && numbers[0] && numbers[1] &&
           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, numbers[0]) &&
           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, numbers[1]);
    }
    OSSL_PARAM* params = ok ? OSSL_PARAM_BLD_to_param(bld) : nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, *kty == "EC" ? "EC" : "RSA", nullptr);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1) {
      if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (BIGNUM* b : numbers)
      BN_free(b);
  } else {
    return bad_file(path, where + " has kty '" + std::string(*kty) +
                              "'; public keys are OKP (Ed25519), EC (P-256) or RSA");
  }
  if (!pkey) return bad_file(path, where + " is not a valid key: " + openssl_error());
  k->pkey.reset(pkey);
  auto alg = algorithm_of(pkey, path);
  if (!alg) return std::move(alg).error();
  k->alg = *alg;
  if (auto named = string_member(jwk, "alg"); named && algorithm_named(*named) != k->alg) {
    return bad_file(
        path, where + " names alg '" + std::string(*named) + "', which its key type cannot verify");
  }
  return k;
}

result<std::vector<std::unique_ptr<key>>> load_jwks(const std::string& text,
                                                    const std::string& path) {
  auto doc = parse_json(text);
  if (!doc || !doc->is_object()) return bad_file(path, "is neither PEM nor a JWKS JSON object");
  auto* keys = doc->as_object().if_contains("keys");
  if (!keys || !keys->is_array()) return bad_file(path, "is JSON without a \"keys\" array");
  std::vector<std::unique_ptr<key>> out;
  for (std::size_t i = 0; i < keys->as_array().size(); ++i) {
    const json::value& entry = keys->as_array()[i];
    if (!entry.is_object()) return bad_file(path, "key " + std::to_string(i) + " is not an object");
    auto k = jwk_key(entry.as_object(), path, i);
    if (!k) return std::move(k).error();
    out.push_back(std::move(*k));
  }
  if (out.empty()) return bad_file(path, "holds an empty \"keys\" array");
  return out;
}

}  // namespace

jwt_verifier::~jwt_verifier() = default;

std::size_t jwt_verifier::key_count() const {
  return keys_.size();
}

result<std::unique_ptr<jwt_verifier>> jwt_verifier::load(const jwt_options& options) {
  std::unique_ptr<jwt_verifier> v(new jwt_verifier());
  v->options_ = options;
  if (!options.hs256_secret_file.empty()) {
    auto secret = read_file(options.hs256_secret_file);
    if (!secret) return std::move(secret).error();
    while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r'))
      secret->pop_back();
    if (secret->size() < k_min_hs256_secret_bytes) {
      return bad_file(options.hs256_secret_file,
                      "an HS256 secret needs at least 32 bytes (e.g. `openssl rand -base64 48`)");
    }
    auto k = std::make_unique<key>();
    k->alg = algorithm::hs256;
    k->secret = std::move(*secret);
    v->keys_.push_back(std::move(k));
  }
  if (!options.keys_file.empty()) {
    auto text = read_file(options.keys_file);
    if (!text) return std::move(text).error();
    auto first = text->find_first_not_of(" \t\r\n");
    bool is_json = first != std::string::npos && (*text)[first] == '{';
    auto keys = is_json ? load_jwks(*text, options.keys_file) : load_pem(*text, options.keys_file);
    if (!keys) return std::move(keys).error();
    for (auto& k : *keys)
      v->keys_.push_back(std::move(k));
  }
  if (v->keys_.empty()) {
    return make_failure(failure_kind::invalid, "invalid_auth_keys",
                        "JWT authentication needs a key: give --auth-jwt-hs256-secret-file or "
                        "--auth-jwt-keys");
  }
  return v;
}

result<principal> jwt_verifier::verify(std::string_view token, std::int64_t now_ms) const {
  if (token.size() > k_max_token_bytes) return refused("is too long");
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refused("is not a JWT (three base64url parts separated by dots)");
  }
  auto header_bytes = base64url_decode(token.substr(0, dot1));
  auto payload_bytes = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!header_bytes || !payload_bytes || !signature)
    return refused("has a part that is not base64url");
  auto header = parse_json(*header_bytes);
  if (!header || !header->is_object()) return refused("header is not a JSON object");
  auto alg_name = string_member(header->as_object(), "alg");
  if (!alg_name) return refused("header names no alg");
  auto alg = algorithm_named(*alg_name);
  if (!alg) {
    return refused("uses alg '" + std::string(alg_name->substr(0, 16)) +
                   "'; accepted: HS256, RS256, ES256, EdDSA");
  }
  if (header->as_object().if_contains("crit")) return refused("header has crit extensions");
  auto kid = string_member(header->as_object(), "kid");

  std::string_view signing_input = token.substr(0, dot2);
  bool any_key = false;
  bool verified = false;
  for (const auto& k : keys_) {
    if (k->alg != *alg) continue;
    if (kid && k->kid && *k->kid != *kid) continue;
    any_key = true;
    if (k->verify(signing_input, *signature)) {
      verified = true;
      break;
    }
  }
  if (!any_key)
    return refused("uses alg " + std::string(*alg_name) + ", for which no key is configured" +
                   (kid ? " with its kid" : ""));
  if (!verified) return refused("signature does not verify");

  auto payload = parse_json(*payload_bytes);
  if (!payload || !payload->is_object()) return refused("claims are not a JSON object");
  const json::object& claims = payload->as_object();
  const std::int64_t leeway_ms = std::chrono::milliseconds(k_clock_leeway).count();
  principal p;
  auto* exp = claims.if_contains("exp");
  if (!exp) return refused("has no exp claim (tokens must expire)");
  auto exp_ms = numeric_date_ms(*exp);
  if (!exp_ms) return refused("has an exp that is not a date");
  if (now_ms >= *exp_ms + leeway_ms) return refused("has expired");
  p.expires_at_ms = *exp_ms + leeway_ms;
  if (auto* nbf = claims.if_contains("nbf")) {
    auto nbf_ms = numeric_date_ms(*nbf);
    if (!nbf_ms) return refused("has an nbf that is not a date");
    if (now_ms + leeway_ms < *nbf_ms) return refused("is not valid yet (nbf)");
  }
  if (options_.issuer &&
      string_member(claims, "iss") != std::optional<std::string_view>(*options_.issuer)) {
    return refused("was not issued by the configured issuer");
  }
  if (options_.audience) {
    bool ours = false;
    if (auto* aud = claims.if_contains("aud")) {
      if (aud->is_string()) ours = aud->as_string() == *options_.audience;
      if (aud->is_array()) {
        for (const auto& a : aud->as_array())
          ours = ours || (a.is_string() && a.as_string() == *options_.audience);
      }
    }
    if (!ours) return refused("is not for this audience");
  }
  if (auto sub = string_member(claims, "sub")) p.subject = std::string(sub->substr(0, 256));
  if (p.subject.empty()) p.subject = "jwt";
  if (auto* scope = claims.if_contains("scope")) {
    std::string text;
    if (scope->is_string()) {
      text = std::string(scope->as_string());
    } else if (scope->is_array()) {
      for (const auto& s : scope->as_array()) {
        if (s.is_string()) text += std::string(s.as_string()) + " ";
      }
    } else {
      return refused("has a scope claim that is neither a string nor an array");
    }
    auto scopes = parse_scopes(text, false);
    if (scopes) p.scopes = std::move(*scopes);
  }
  return p;
}

}  // namespace ordo::auth
