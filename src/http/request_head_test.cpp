#include "http/request_head.hpp"

#include <gtest/gtest.h>

namespace ordo::http {
namespace {

request_head with_te(std::vector<std::string_view> te) {
  request_head h;
  h.hosts = {"localhost:4437"};
  h.transfer_encodings = std::move(te);
  return h;
}

TEST(RequestHead, ChunkedAloneIsTheOnlyTransferEncodingServed) {
  EXPECT_FALSE(check_request_head(with_te({})));
  EXPECT_FALSE(check_request_head(with_te({"chunked"})));
  EXPECT_FALSE(check_request_head(with_te({" Chunked "})));
}

TEST(RequestHead, AnyOtherTransferEncodingIs501SoTheBodyIsNeverReadAsARequest) {
  for (auto te : std::vector<std::vector<std::string_view>>{{"gzip"},
                                                            {"xchunked"},
                                                            {"chunked, identity"},
                                                            {"gzip, chunked"},
                                                            {"chunked", "chunked"},
                                                            {"identity"},
                                                            {","}}) {
    auto f = check_request_head(with_te(te));
    ASSERT_TRUE(f) << te.front();
    EXPECT_EQ(f->kind, failure_kind::not_implemented) << te.front();
    EXPECT_EQ(f->code, "unsupported_transfer_encoding");
  }
  auto f = check_request_head(with_te({"gzip\x01\xff"}));
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("'gzip?\?'"), std::string::npos) << f->message;
}

TEST(RequestHead, Http10WithTransferEncodingIsFaultyFraming) {
  request_head h = with_te({"chunked"});
  h.version = 10;
  auto f = check_request_head(h);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, failure_kind::invalid);
  EXPECT_EQ(f->code, "invalid_transfer_encoding");
}

TEST(RequestHead, Http11NeedsExactlyOneValidHost) {
  request_head h;
  auto missing = check_request_head(h);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->code, "missing_host");
  h.version = 10;
  EXPECT_FALSE(check_request_head(h)) << "HTTP/1.0 may omit Host";
  h.version = 11;
  h.hosts = {"a", "b"};
  EXPECT_EQ(check_request_head(h)->code, "invalid_host");
  h.hosts = {"evil.example:99/\"<>"};
  EXPECT_EQ(check_request_head(h)->code, "invalid_host");
}

TEST(RequestHead, HostValuesFollowTheAuthoritySyntax) {
  for (std::string_view ok : {"", "localhost", "localhost:4437", "127.0.0.1:80", "[::1]:4437",
                              "ordo.example.com", "my-host_1.local"})
    EXPECT_TRUE(valid_host(ok)) << ok;
  for (std::string_view bad : {"evil.example:99/\"<>", "user@host", "a b", "host:port", "<x>",
                               "host/path", "[::1", "host:99999999999999999999"})
    EXPECT_FALSE(valid_host(bad)) << bad;
}

TEST(RequestHead, FieldHelpersTrimWhitespaceAndIgnoreAsciiCase) {
  EXPECT_EQ(trim_ows(" \tBearer x \t"), "Bearer x");
  EXPECT_EQ(trim_ows(" \t "), "");
  EXPECT_TRUE(iequals_ascii("Chunked", "chunked"));
  EXPECT_TRUE(iequals_ascii("bearer", "BEARER"));
  EXPECT_TRUE(iequals_ascii("", ""));
  EXPECT_FALSE(iequals_ascii("chunked", "chunke"));
  EXPECT_FALSE(iequals_ascii("chunked ", "chunked"));
  // Only ASCII letters fold: '@' (0x40) and '`' (0x60) are not a case pair.
  EXPECT_FALSE(iequals_ascii("@", "`"));
  EXPECT_FALSE(iequals_ascii("\xc9", "\xe9"));
}

}  // namespace
}  // namespace ordo::http
