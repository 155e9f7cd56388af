#include "http/error_response.hpp"

#include <boost/json.hpp>

#include "base/utf8.hpp"

namespace ordo::http {

unsigned http_status_for(failure_kind kind) {
  switch (kind) {
    case failure_kind::invalid:
      return 400;
    case failure_kind::unauthenticated:
      return 401;
    case failure_kind::not_found:
      return 404;
    case failure_kind::gone:
      return 410;
    case failure_kind::conflict:
      return 409;
    case failure_kind::forbidden:
      return 403;
    case failure_kind::precondition_failed:
      return 412;
    case failure_kind::too_large:
      return 413;
    case failure_kind::unavailable:
      return 503;
    case failure_kind::too_many_requests:
      return 429;
    case failure_kind::insufficient_storage:
      return 507;
    case failure_kind::not_implemented:
      return 501;
    case failure_kind::method_not_allowed:
      return 405;
    case failure_kind::headers_too_large:
      return 431;
    case failure_kind::internal:
      return 500;
  }
  return 500;
}

std::string error_body(const failure& f) {
  boost::json::object error;
  // Messages quote what the client sent (a path, an offset): whatever its bytes, the JSON stays
  // valid UTF-8.
  error["code"] = to_valid_utf8(f.code);
  error["message"] = to_valid_utf8(f.message);
  for (const auto& [key, json_text] : f.details) {
    if (key == "allow") continue;        // the Allow header
    if (key == "retry_after") continue;  // the Retry-After header
    boost::system::error_code ec;
    auto value = boost::json::parse(json_text, ec);
    error[key] = ec ? boost::json::value(json_text) : std::move(value);
  }
  boost::json::object body;
  body["error"] = std::move(error);
  return boost::json::serialize(body);
}

error_answer error_answer_for(const failure& f) {
  error_answer a;
  a.status = http_status_for(f.kind);
  a.headers.emplace_back("Content-Type", "application/json");
  a.headers.emplace_back("Cache-Control", "no-store");
  if (f.kind == failure_kind::unavailable) a.headers.emplace_back("Retry-After", "1");
  if (f.kind == failure_kind::unauthenticated) {
    // RFC 6750 section 3: the scheme, and why the credential was refused.
    a.headers.emplace_back("WWW-Authenticate",
                           f.code == "missing_token"
                               ? "Bearer realm=\"ordo\""
                               : "Bearer realm=\"ordo\", error=\"invalid_token\"");
  }
  for (const auto& [key, value] : f.details) {
    if (key == "allow") a.headers.emplace_back("Allow", value);
    if (key == "retry_after") a.headers.emplace_back("Retry-After", value);
    if (key == "current_revision") a.headers.emplace_back("ETag", "\"" + value + "\"");
  }
  a.body = error_body(f);
  return a;
}

failure method_not_allowed(std::string_view allow, std::string message) {
  return make_failure(failure_kind::method_not_allowed, "method_not_allowed", std::move(message))
      .with("allow", std::string(allow));
}

}  // namespace ordo::http
