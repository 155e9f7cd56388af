// The session API's routes (/v1/projects, /v1/sessions), without Beast: a route table mapping
// method and path template to the session service, request bodies parsed as JSON, replies and
// failures turned into HTTP answers. router.cpp hands requests over as api_request.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scope.hpp"
#include "http/access.hpp"
#include "http/stream_protocol.hpp"
#include "sessions/session_service.hpp"

namespace ordo::http {

struct api_request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded
  std::vector<query_param> query;
  std::function<std::optional<std::string>(std::string_view name)> header;
  std::string body;
  // Who sends it (never null: unrestricted() when authentication is off).
  std::shared_ptr<const auth::principal> who = unrestricted();
};

struct api_response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // JSON
};

using api_callback = std::function<void(api_response)>;

// One route: a method and a path template whose {name} segments match one path segment, and
// what a token needs to use it (http/access.hpp).
struct route_spec {
  std::string_view method;
  std::string_view path;
  session_access access = session_access::unset;
};

// Every route the session API serves (the OpenAPI file must describe each of them).
const std::vector<route_spec>& session_routes();

// Every route with the rule it declares, in words (empty: none, a defect the tests catch).
std::vector<route_rule> session_route_rules();

// Whether `path` belongs to the session API (then handle_session_api answers it).
bool is_session_api_path(std::string_view path);

void handle_session_api(sessions::session_service& service, api_request request, api_callback done);

// The managed event stream of /v1/sessions/{id}/events, if `path` is that route.
std::optional<std::string> session_events_stream(std::string_view path);

}  // namespace ordo::http
