#include "http/error_response.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace ordo::http {
namespace {

std::string header(const error_answer& a, std::string_view name) {
  for (const auto& [k, v] : a.headers)
    if (k == name) return v;
  return "";
}

TEST(error_response, every_failure_kind_has_its_status) {
  std::vector<std::pair<failure_kind, unsigned>> expected = {
      {failure_kind::invalid, 400},
      {failure_kind::unauthenticated, 401},
      {failure_kind::forbidden, 403},
      {failure_kind::not_found, 404},
      {failure_kind::method_not_allowed, 405},
      {failure_kind::conflict, 409},
      {failure_kind::gone, 410},
      {failure_kind::precondition_failed, 412},
      {failure_kind::too_large, 413},
      {failure_kind::headers_too_large, 431},
      {failure_kind::internal, 500},
      {failure_kind::not_implemented, 501},
      {failure_kind::unavailable, 503},
      {failure_kind::too_many_requests, 429},
      {failure_kind::insufficient_storage, 507}};
  for (auto [kind, status] : expected) {
    error_answer a = error_answer_for(make_failure(kind, "x", "y"));
    EXPECT_EQ(a.status, status);
    EXPECT_EQ(header(a, "Content-Type"), "application/json");
    EXPECT_EQ(header(a, "Cache-Control"), "no-store");
    EXPECT_EQ(header(a, "Retry-After"), kind == failure_kind::unavailable ? "1" : "") << status;
  }
}

TEST(error_response, a_405_carries_allow_as_a_header_not_in_the_body) {
  error_answer a = error_answer_for(method_not_allowed("GET, HEAD", "use GET"));
  EXPECT_EQ(a.status, 405u);
  EXPECT_EQ(header(a, "Allow"), "GET, HEAD");
  auto body = boost::json::parse(a.body).as_object();
  EXPECT_EQ(body.at("error").at("code").as_string(), "method_not_allowed");
  EXPECT_FALSE(body.at("error").as_object().contains("allow"));
}

TEST(error_response, a_stale_revision_carries_its_etag_and_the_body_keeps_it) {
  error_answer a = error_answer_for(
      make_failure(failure_kind::precondition_failed, "revision_mismatch", "re-read")
          .with("current_revision", "7"));
  EXPECT_EQ(a.status, 412u);
  EXPECT_EQ(header(a, "ETag"), "\"7\"");
  EXPECT_EQ(boost::json::parse(a.body).at("error").at("current_revision").as_int64(), 7);
}

TEST(error_response, what_a_message_quotes_is_made_valid_utf8) {
  error_answer a = error_answer_for(
      make_failure(failure_kind::not_found, "route_not_found", "no resource at '/nope\xff'"));
  boost::system::error_code ec;
  auto v = boost::json::parse(a.body, ec);  // Boost.JSON refuses invalid UTF-8
  ASSERT_FALSE(ec) << a.body;
  EXPECT_EQ(v.at("error").at("message").as_string(), "no resource at '/nope\xEF\xBF\xBD'");
}

}  // namespace
}  // namespace ordo::http
