// The one place that turns a failure into its HTTP answer: the status for its kind, the headers
// that go with it and the JSON body. The server's Beast files (through error_response() in
// beast_support.hpp), session_api.cpp and dashboard.cpp all answer failures through it, so every
// 503 carries Retry-After, every 405 its Allow, every stale revision its ETag, whichever route
// refused. No Beast here.
//
//   kind                  status  headers besides Content-Type and Cache-Control: no-store
//   invalid               400
//   forbidden             403
//   not_found             404
//   method_not_allowed    405     Allow (the failure's "allow" detail, not in the body)
//   conflict              409
//   gone                  410
//   precondition_failed   412     ETag (the "current_revision" detail, also in the body)
//   too_large             413
//   headers_too_large     431
//   internal              500
//   not_implemented       501
//   unavailable           503     Retry-After: 1
//   insufficient_storage  507
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace ordo::http {

// The HTTP status for a failure kind.
unsigned http_status_for(failure_kind kind);

// {"error":{"code":...,"message":...,<details>}}, valid UTF-8 whatever the failure quotes.
std::string error_body(const failure& f);

struct error_answer {
  unsigned status = 500;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the JSON error; a HEAD answer leaves it out
};
error_answer error_answer_for(const failure& f);

// 405 with Allow: `allow` lists the methods the resource serves ("GET, HEAD").
failure method_not_allowed(std::string_view allow, std::string message);

}  // namespace ordo::http
