#include "auth/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "base/base64.hpp"

namespace ordo::auth {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::int64_t k_now_ms = 1'800'000'000'000;  // 2027
constexpr std::int64_t k_now_s = k_now_ms / 1000;

// A signing key of the tests (OpenSSL generates it) and what a verifier needs of it.
struct test_key {
  std::string alg;
  EVP_PKEY* pkey = nullptr;
  std::string secret;  // HS256
  ~test_key() { EVP_PKEY_free(pkey); }

  static std::unique_ptr<test_key> make(const std::string& alg, int rsa_bits = 2048) {
    auto k = std::make_unique<test_key>();
    k->alg = alg;
    if (alg == "RS256") k->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", (size_t)rsa_bits);
    if (alg == "ES256") k->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (alg == "EdDSA") k->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (alg == "HS256") k->secret = std::string(48, 'k');
    return k;
  }

  std::string public_pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }

  json::object jwk(const std::string& kid) const {
    json::object o;
    o["kid"] = kid;
    if (alg == "EdDSA") {
      unsigned char raw[32];
      std::size_t len = sizeof raw;
      EVP_PKEY_get_raw_public_key(pkey, raw, &len);
      o["kty"] = "OKP";
      o["crv"] = "Ed25519";
      o["x"] = base64url_encode(std::string(reinterpret_cast<char*>(raw), len));
    } else if (alg == "ES256") {
      unsigned char point[65];
      std::size_t len = 0;
      EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
      o["kty"] = "EC";
      o["crv"] = "P-256";
      o["x"] = base64url_encode(std::string(reinterpret_cast<char*>(point + 1), 32));
      o["y"] = base64url_encode(std::string(reinterpret_cast<char*>(point + 33), 32));
    } else {
      BIGNUM *n = nullptr, *e = nullptr;
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n);
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e);
      auto bytes = [](BIGNUM* b) {
        std::string s(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
        BN_bn2bin(b, reinterpret_cast<unsigned char*>(s.data()));
        return s;
      };
      o["kty"] = "RSA";
      o["n"] = base64url_encode(bytes(n));
      o["e"] = base64url_encode(bytes(e));
      BN_free(n);
      BN_free(e);
    }
    return o;
  }

  std::string sign(std::string_view input) const {
    if (alg == "HS256") {
      unsigned char mac[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
      return std::string(reinterpret_cast<char*>(mac), len);
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, alg == "EdDSA" ? nullptr : EVP_sha256(), nullptr, pkey);
    std::size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (alg != "ES256") return sig;
    // DER to r || s, as JWS carries it.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data() + 32), 32);
    ECDSA_SIG_free(es);
    return raw;
  }
};

std::string make_token(const test_key& key, json::object claims, json::object header = {}) {
  if (!header.contains("alg")) header["alg"] = key.alg;
  header["typ"] = "JWT";
  std::string input =
      base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));
  return input + "." + base64url_encode(key.sign(input));
}

json::object valid_claims() {
  return json::object{
      {"sub", "alice"}, {"exp", k_now_s + 3600}, {"scope", "streams:read:chat/** openid"}};
}

class jwt_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ordo-jwt-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::unique_ptr<jwt_verifier> verifier_for(const test_key& k, jwt_options o = {}) {
    if (k.alg == "HS256") {
      o.hs256_secret_file = write("secret", k.secret + "\n");
    } else {
      o.keys_file = write("keys.pem", k.public_pem());
    }
    auto v = jwt_verifier::load(o);
    EXPECT_TRUE(v) << v.error().message;
    return std::move(*v);
  }
  fs::path dir_;
};

TEST_F(jwt_test, each_algorithm_verifies_with_its_key_and_carries_subject_and_scopes) {
  for (std::string alg : {"HS256", "RS256", "ES256", "EdDSA"}) {
    auto key = test_key::make(alg);
    auto v = verifier_for(*key);
    auto p = v->verify(make_token(*key, valid_claims()), k_now_ms);
    ASSERT_TRUE(p) << alg << ": " << p.error().message;
    EXPECT_EQ(p->subject, "alice");
    EXPECT_EQ(p->scope_text(), "streams:read:chat/**");  // openid is not ordo's: skipped
    EXPECT_EQ(p->expires_at_ms, (k_now_s + 3600) * 1000 + 30'000);
  }
}

TEST_F(jwt_test, a_jwks_file_loads_every_key_type_and_kid_picks_the_key) {
  auto ed = test_key::make("EdDSA");
  auto ec = test_key::make("ES256");
  auto rsa = test_key::make("RS256");
  json::array keys{ed->jwk("ed"), ec->jwk("ec"), rsa->jwk("rsa")};
  jwt_options o;
  o.keys_file = write("jwks.json", json::serialize(json::object{{"keys", keys}}));
  auto v = jwt_verifier::load(o);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ((*v)->key_count(), 3u);
  for (auto* k : {ed.get(), ec.get(), rsa.get()}) {
    std::string kid = k == ed.get() ? "ed" : k == ec.get() ? "ec" : "rsa";
    EXPECT_TRUE((*v)->verify(make_token(*k, valid_claims(), {{"kid", kid}}), k_now_ms)) << kid;
    EXPECT_TRUE((*v)->verify(make_token(*k, valid_claims()), k_now_ms)) << kid;
  }
  // A kid naming another key of the same type is not tried with this one.
  auto other = test_key::make("EdDSA");
  auto refused = (*v)->verify(make_token(*other, valid_claims(), {{"kid", "ed"}}), k_now_ms);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::unauthenticated);
}

TEST_F(jwt_test, alg_none_and_unsupported_algorithms_are_refused) {
  auto key = test_key::make("HS256");
  auto v = verifier_for(*key);
  std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                     base64url_encode(json::serialize(valid_claims())) + ".";
  auto r = v->verify(none, k_now_ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("alg 'none'"), std::string::npos) << r.error().message;
  auto hs512 = make_token(*key, valid_claims(), {{"alg", "HS512"}});
  EXPECT_FALSE(v->verify(hs512, k_now_ms));
}

TEST_F(jwt_test, algorithm_confusion_an_hs256_token_keyed_with_the_public_key_is_refused) {
  auto rsa = test_key::make("RS256");
  auto v = verifier_for(*rsa);
  // The classic attack: HMAC the token with the server's public key text as the secret.
  test_key forged;
  forged.alg = "HS256";
  forged.secret = rsa->public_pem();
  auto r = v->verify(make_token(forged, valid_claims()), k_now_ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no key is configured"), std::string::npos);
  // And an RS256 header on an Ed25519 signature has no key either.
  auto ed = test_key::make("EdDSA");
  auto v2 = verifier_for(*ed);
  test_key liar;
  liar.alg = "EdDSA";
  liar.pkey = ed->pkey;
  auto token = make_token(liar, valid_claims(), {{"alg", "RS256"}});
  liar.pkey = nullptr;
  EXPECT_FALSE(v2->verify(token, k_now_ms));
}

TEST_F(jwt_test, a_bad_signature_or_a_changed_payload_is_refused) {
  for (std::string alg : {"HS256", "RS256", "ES256", "EdDSA"}) {
    auto key = test_key::make(alg);
    auto v = verifier_for(*key);
    auto token = make_token(*key, valid_claims());
    std::string tampered = token;
    auto dot = tampered.find('.');
    auto claims = valid_claims();
    claims["scope"] = "admin";
    tampered = tampered.substr(0, dot + 1) + base64url_encode(json::serialize(claims)) +
               tampered.substr(tampered.rfind('.'));
    EXPECT_FALSE(v->verify(tampered, k_now_ms)) << alg;
    auto other = test_key::make(alg);
    if (alg == "HS256") other->secret = std::string(48, 'x');
    EXPECT_FALSE(v->verify(make_token(*other, valid_claims()), k_now_ms)) << alg;
  }
}

TEST_F(jwt_test, exp_nbf_iss_and_aud_are_checked) {
  auto key = test_key::make("EdDSA");
  jwt_options o;
  o.issuer = "https://id.example";
  o.audience = "ordo";
  auto v = verifier_for(*key, o);
  auto claims = [&](std::function<void(json::object&)> change) {
    json::object c = valid_claims();
    c["iss"] = "https://id.example";
    c["aud"] = "ordo";
    change(c);
    return make_token(*key, c);
  };
  EXPECT_TRUE(v->verify(claims([](auto&) {}), k_now_ms));
  EXPECT_TRUE(v->verify(claims([](auto& c) { c["aud"] = json::array{"x", "ordo"}; }), k_now_ms));
  auto reason = [&](const std::string& token) {
    auto r = v->verify(token, k_now_ms);
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(reason(claims([](auto& c) { c["exp"] = k_now_s - 60; })).find("expired"),
            std::string::npos);
  // Within the leeway an expiry is forgiven.
  EXPECT_EQ(reason(claims([](auto& c) { c["exp"] = k_now_s - 10; })), "accepted");
  EXPECT_NE(reason(claims([](auto& c) { c.erase("exp"); })).find("no exp"), std::string::npos);
  EXPECT_NE(reason(claims([](auto& c) { c["nbf"] = k_now_s + 600; })).find("not valid yet"),
            std::string::npos);
  EXPECT_NE(reason(claims([](auto& c) { c["iss"] = "https://evil.example"; })).find("issuer"),
            std::string::npos);
  EXPECT_NE(reason(claims([](auto& c) { c["aud"] = "other"; })).find("audience"),
            std::string::npos);
  EXPECT_NE(reason(claims([](auto& c) { c.erase("aud"); })).find("audience"), std::string::npos);
  EXPECT_NE(reason(claims([](auto& c) { c["exp"] = "tomorrow"; })).find("not a date"),
            std::string::npos);
}

TEST_F(jwt_test, malformed_tokens_are_refused_with_a_reason) {
  auto key = test_key::make("HS256");
  auto v = verifier_for(*key);
  for (std::string token :
       std::vector<std::string>{"", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.",
                                std::string(k_max_token_bytes + 1, 'a')}) {
    auto r = v->verify(token, k_now_ms);
    ASSERT_FALSE(r) << token;
    EXPECT_EQ(r.error().kind, failure_kind::unauthenticated);
    EXPECT_EQ(r.error().code, "invalid_token");
  }
}

TEST_F(jwt_test, weak_or_missing_keys_stop_the_start_with_the_file_named) {
  jwt_options short_secret;
  short_secret.hs256_secret_file = write("short", "too short\n");
  auto r = jwt_verifier::load(short_secret);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("short"), std::string::npos);
  auto small = test_key::make("RS256", 1024);
  jwt_options weak;
  weak.keys_file = write("weak.pem", small->public_pem());
  r = jwt_verifier::load(weak);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("2048"), std::string::npos);
  jwt_options missing;
  missing.keys_file = (dir_ / "nope.pem").string();
  EXPECT_FALSE(jwt_verifier::load(missing));
  jwt_options garbage;
  garbage.keys_file = write("garbage.pem", "hello");
  EXPECT_FALSE(jwt_verifier::load(garbage));
  EXPECT_FALSE(jwt_verifier::load(jwt_options{}));
  jwt_options bad_jwks;
  bad_jwks.keys_file = write("bad.json", R"({"keys":[{"kty":"oct","k":"AAAA"}]})");
  r = jwt_verifier::load(bad_jwks);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("kty 'oct'"), std::string::npos);
}

}  // namespace
}  // namespace ordo::auth
