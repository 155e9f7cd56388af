// The OpenAPI description must cover the router: every route the session API serves appears in
// docs/openapi.yaml with the same method and path template.
#include "http/session_api.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <string>

namespace ordo::http {
namespace {

// "METHOD /path" for every operation under `paths:` in an OpenAPI YAML file.
std::set<std::string> openapi_operations(const std::string& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << "cannot read " << file;
  std::set<std::string> out;
  std::regex path_line(R"(^  (/[^:\s]+):\s*$)");
  std::regex method_line(R"(^    (get|put|post|patch|delete|head|options):\s*$)");
  std::string line, current;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (line.rfind("paths:", 0) == 0) {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && line[0] != ' ' && line[0] != '#') in_paths = false;
    if (!in_paths) continue;
    std::smatch m;
    if (std::regex_match(line, m, path_line)) {
      current = m[1];
    } else if (std::regex_match(line, m, method_line) && !current.empty()) {
      std::string method = m[1];
      std::transform(method.begin(), method.end(), method.begin(), ::toupper);
      out.insert(method + " " + current);
    }
  }
  return out;
}

TEST(session_api, every_served_route_is_described_in_the_openapi_file) {
  auto documented = openapi_operations(std::string(ORDO_SOURCE_DIR) + "/docs/openapi.yaml");
  ASSERT_FALSE(documented.empty());
  ASSERT_FALSE(session_routes().empty());
  for (const route_spec& r : session_routes()) {
    std::string op = std::string(r.method) + " " + std::string(r.path);
    EXPECT_TRUE(documented.count(op)) << op << " is served but not in docs/openapi.yaml";
  }
}

TEST(session_api, the_openapi_file_describes_no_route_that_is_not_served) {
  auto documented = openapi_operations(std::string(ORDO_SOURCE_DIR) + "/docs/openapi.yaml");
  // A file that yields no operation (moved, or its layout changed) must fail, not pass.
  ASSERT_GE(documented.size(), session_routes().size());
  std::set<std::string> served;
  for (const route_spec& r : session_routes()) {
    served.insert(std::string(r.method) + " " + std::string(r.path));
  }
  for (const auto& op : documented) {
    if (op.find(" /v1/projects") == std::string::npos &&
        op.find(" /v1/sessions") == std::string::npos) {
      continue;
    }
    EXPECT_TRUE(served.count(op)) << op << " is documented but not served";
  }
}

TEST(session_api, the_events_route_maps_to_the_session_event_stream) {
  EXPECT_EQ(session_events_stream("/v1/sessions/demo-3/events"),
            std::optional<std::string>("__ordo/sessions/demo-3/events"));
  EXPECT_FALSE(session_events_stream("/v1/sessions/demo-3/rows"));
  EXPECT_TRUE(is_session_api_path("/v1/sessions/demo-3"));
  EXPECT_FALSE(is_session_api_path("/v1/stream/x"));
}

}  // namespace
}  // namespace ordo::http
