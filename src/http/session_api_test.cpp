// The OpenAPI description must cover the router: every route the session API serves appears in
// docs/openapi.yaml with the same method and path template.
#include "http/session_api.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <regex>
#include <set>
#include <string>

#include "streams/stream_engine.hpp"

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

// Found by fuzz/session_api.cpp: GET /v1/sessions/{id}/events is in the table (for the OpenAPI
// check) with no handler, as router.cpp serves it as a stream; handed here anyway, it called an
// empty std::function, which threw std::bad_function_call out of the handler.
TEST(session_api, a_route_without_a_handler_answers_404_instead_of_throwing) {
  spdlog::set_level(spdlog::level::critical);
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("ordo-session-api-test-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  {
    stream_engine_options o;
    o.database.path = (dir / "ordo.db").string();
    auto engine = stream_engine::open(std::move(o));
    ASSERT_TRUE(engine) << engine.error().message;
    sessions::session_service service(**engine, sessions::session_service_options{});
    service.start();

    api_request request;
    request.method = "GET";
    request.path = "/v1/sessions/s-1/events";
    request.header = [](std::string_view) { return std::optional<std::string>(); };
    std::promise<api_response> answered;
    EXPECT_NO_THROW(handle_session_api(service, std::move(request),
                                       [&](api_response r) { answered.set_value(std::move(r)); }));
    api_response answer = answered.get_future().get();
    EXPECT_EQ(answer.status, 404u);
    EXPECT_NE(answer.body.find("route_not_found"), std::string::npos) << answer.body;

    service.stop();
    (*engine)->stop();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ordo::http
