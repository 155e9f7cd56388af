#include "auth/authenticator.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace ordo::auth {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t k_now_ms = 1'800'000'000'000;

class api_tokens_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ordo-tokens-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = (dir_ / "tokens.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<authenticator> open_tokens() {
    auth_options o;
    o.tokens = true;
    o.tokens_file = file_;
    auto a = authenticator::open(o);
    EXPECT_TRUE(a) << a.error().message;
    return std::move(*a);
  }
  fs::path dir_;
  std::string file_;
};

TEST_F(api_tokens_test, a_created_token_is_stored_only_as_its_hash_and_authenticates) {
  auto m = create_api_token(file_, "streams:read:chat/** sessions:write:web", std::nullopt, "ci",
                            k_now_ms);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->token.rfind("ordo_" + m->entry.id + "_", 0), 0u);
  std::ifstream in(file_);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text.find(m->token), std::string::npos);
  EXPECT_NE(text.find(sha256_hex(m->token)), std::string::npos);
  EXPECT_EQ(fs::status(file_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  auto a = open_tokens();
  auto p = a->authenticate(m->token, k_now_ms);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ((*p)->subject, "token:" + m->entry.id);
  EXPECT_TRUE((*p)->may_stream("chat/x", access_level::read));
  EXPECT_FALSE((*p)->may_stream("chat/x", access_level::write));
  EXPECT_TRUE((*p)->may_project("web", access_level::write));
  // The second time comes from the cache.
  ASSERT_TRUE(a->authenticate(m->token, k_now_ms));
  EXPECT_EQ(a->cache_hits(), 1u);
  EXPECT_EQ(a->verifications(), 1u);
}

TEST_F(api_tokens_test, unknown_expired_and_missing_tokens_are_refused) {
  auto m = create_api_token(file_, "admin", std::chrono::hours(1), "", k_now_ms);
  ASSERT_TRUE(m);
  auto a = open_tokens();
  EXPECT_TRUE(a->authenticate(m->token, k_now_ms));
  auto expired = a->authenticate(m->token, k_now_ms + 3'600'000);
  ASSERT_FALSE(expired);  // the cache entry ends with the token
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
  auto unknown = a->authenticate("ordo_000000000000_nope", k_now_ms);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, failure_kind::unauthenticated);
  auto missing = a->authenticate("", k_now_ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "missing_token");
  EXPECT_FALSE(a->authenticate("eyJhbGciOiJIUzI1NiJ9.e30.x", k_now_ms));  // no JWT mode
  EXPECT_EQ(a->failures(), 4u);
}

TEST_F(api_tokens_test, a_revoked_token_stops_working_once_the_file_is_reread) {
  auto keep = create_api_token(file_, "admin", std::nullopt, "keep", k_now_ms);
  auto drop = create_api_token(file_, "admin", std::nullopt, "drop", k_now_ms);
  ASSERT_TRUE(keep && drop);
  auto a = open_tokens();
  ASSERT_TRUE(a->authenticate(drop->token, k_now_ms));
  auto revoked = revoke_api_token(file_, drop->entry.id);
  ASSERT_TRUE(revoked) << revoked.error().message;
  EXPECT_EQ(revoked->name, "drop");
  std::this_thread::sleep_for(k_tokens_file_check + std::chrono::milliseconds(100));
  EXPECT_FALSE(a->authenticate(drop->token, k_now_ms));
  EXPECT_TRUE(a->authenticate(keep->token, k_now_ms));
  EXPECT_FALSE(revoke_api_token(file_, drop->entry.id));
}

TEST_F(api_tokens_test, a_token_created_right_after_an_unknown_one_was_refused_works_at_once) {
  auto first = create_api_token(file_, "admin", std::nullopt, "first", k_now_ms);
  ASSERT_TRUE(first);
  auto a = open_tokens();
  // A miss looks at the file; so must the next one, however soon it comes.
  EXPECT_FALSE(a->authenticate("ordo_000000000000_" + std::string(43, 'A'), k_now_ms));
  auto created = create_api_token(file_, "admin", std::nullopt, "second", k_now_ms);
  ASSERT_TRUE(created);
  EXPECT_TRUE(a->authenticate(created->token, k_now_ms));
}

TEST_F(api_tokens_test, a_broken_file_is_refused_whole_with_its_line) {
  std::ofstream(file_) << "# tokens\n\n{\"id\":\"a\",\"sha256\":\"" << std::string(64, 'a')
                       << "\",\"scopes\":\"streams:read:x streams:rwx:y\"}\n";
  auth_options o;
  o.tokens = true;
  o.tokens_file = file_;
  auto a = authenticator::open(o);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("line 3"), std::string::npos) << a.error().message;
  EXPECT_FALSE(create_api_token(file_, "admin", std::nullopt, "", k_now_ms));
  EXPECT_FALSE(create_api_token((dir_ / "new").string(), "bogus", std::nullopt, "", k_now_ms));
}

TEST_F(api_tokens_test, a_bad_reload_keeps_the_tokens_loaded_before) {
  auto m = create_api_token(file_, "admin", std::nullopt, "", k_now_ms);
  ASSERT_TRUE(m);
  auto a = open_tokens();
  std::ofstream(file_, std::ios::app) << "not json\n";
  std::this_thread::sleep_for(k_tokens_file_check + std::chrono::milliseconds(100));
  EXPECT_TRUE(a->authenticate(m->token, k_now_ms));
}

TEST(auth_mode, names_parse_and_options_must_agree_with_the_mode) {
  EXPECT_TRUE(parse_auth_mode("none"));
  EXPECT_TRUE(parse_auth_mode("jwt")->jwt);
  auto both = parse_auth_mode("tokens,jwt");
  ASSERT_TRUE(both);
  EXPECT_TRUE(both->jwt && both->tokens);
  EXPECT_FALSE(parse_auth_mode("basic"));
  EXPECT_FALSE(parse_auth_mode(""));
  auth_options o;
  o.tokens = true;
  EXPECT_FALSE(authenticator::open(o));  // no tokens file
  auth_options stray;
  stray.tokens_file = "/x";
  EXPECT_FALSE(authenticator::open(stray));
  auto none = authenticator::open(auth_options{});
  ASSERT_TRUE(none);
  EXPECT_FALSE((*none)->enabled());
  EXPECT_EQ((*none)->mode_name(), "none");
}

}  // namespace
}  // namespace ordo::auth
