// The dashboard's files as the build embedded them (web/, cmake/embed_assets.cmake) and the
// answers dashboard_response() gives for them: every file in web/ is served under its path with
// the Content-Type of its extension, byte for byte, with an ETag that answers 304.
#include "http/dashboard.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "http/dashboard_assets.hpp"

namespace ordo::http {
namespace {

namespace fs = std::filesystem;

std::string header_of(const api_response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(dashboard, every_file_in_web_is_embedded_byte_for_byte_under_its_path) {
  const fs::path web = fs::path(ORDO_SOURCE_DIR) / "web";
  std::set<std::string> expected;
  for (const auto& entry : fs::recursive_directory_iterator(web)) {
    if (!entry.is_regular_file()) continue;
    std::string rel = fs::relative(entry.path(), web).generic_string();
    // Hidden files and editor backups are not embedded (cmake/embed_assets.cmake).
    std::string name = entry.path().filename().string();
    if (name.front() == '.' || name.back() == '~') continue;
    std::string url = rel == "index.html" ? "/" : "/ui/" + rel;
    expected.insert(url);
    api_response r = dashboard_response("GET", url, std::nullopt);
    ASSERT_EQ(r.status, 200u) << url;
    EXPECT_EQ(r.body, read_file(entry.path())) << url;
  }
  std::set<std::string> embedded;
  for (const auto& asset : dashboard_assets())
    embedded.insert(std::string(asset.url_path));
  EXPECT_EQ(embedded, expected);
}

TEST(dashboard, content_types_follow_the_extension) {
  const std::map<std::string, std::string> by_extension = {{"html", "text/html; charset=utf-8"},
                                                           {"js", "text/javascript; charset=utf-8"},
                                                           {"css", "text/css; charset=utf-8"},
                                                           {"svg", "image/svg+xml"},
                                                           {"json", "application/json"},
                                                           {"png", "image/png"},
                                                           {"ico", "image/x-icon"}};
  for (const auto& asset : dashboard_assets()) {
    std::string path = asset.url_path == "/" ? "/index.html" : std::string(asset.url_path);
    std::string ext = path.substr(path.rfind('.') + 1);
    ASSERT_TRUE(by_extension.count(ext)) << path;
    api_response r = dashboard_response("GET", asset.url_path, std::nullopt);
    EXPECT_EQ(header_of(r, "Content-Type"), by_extension.at(ext)) << path;
    EXPECT_EQ(header_of(r, "Cache-Control"), "no-cache") << path;
    EXPECT_FALSE(header_of(r, "Content-Security-Policy").empty()) << path;
  }
}

TEST(dashboard, the_etag_answers_304_without_a_body_and_differs_between_files) {
  std::set<std::string> tags;
  for (const auto& asset : dashboard_assets()) {
    api_response first = dashboard_response("GET", asset.url_path, std::nullopt);
    std::string etag = header_of(first, "ETag");
    ASSERT_EQ(etag.size(), 18u) << asset.url_path;  // "…16 hex digits…"
    tags.insert(etag);
    api_response again = dashboard_response("GET", asset.url_path, etag);
    EXPECT_EQ(again.status, 304u);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(header_of(again, "ETag"), etag);
    EXPECT_EQ(dashboard_response("GET", asset.url_path, "\"0000000000000000\"").status, 200u);
  }
  EXPECT_EQ(tags.size(), dashboard_assets().size());
}

// ---- error paths ------------------------------------------------------------------------------

TEST(dashboard, an_unknown_file_is_404_route_not_found) {
  for (std::string_view path : {"/ui/nope.js", "/ui/", "/ui/js", "/ui//style.css"}) {
    api_response r = dashboard_response("GET", path, std::nullopt);
    EXPECT_EQ(r.status, 404u) << path;
    EXPECT_NE(r.body.find("\"route_not_found\""), std::string::npos) << path;
  }
}

TEST(dashboard, methods_other_than_get_and_head_are_405_with_allow) {
  for (std::string_view method : {"POST", "PUT", "DELETE", "PATCH"}) {
    api_response r = dashboard_response(method, "/", std::nullopt);
    EXPECT_EQ(r.status, 405u) << method;
    EXPECT_EQ(header_of(r, "Allow"), "GET, HEAD");
  }
  EXPECT_EQ(dashboard_response("HEAD", "/", std::nullopt).status, 200u);
}

TEST(dashboard, only_the_root_and_ui_paths_belong_to_the_dashboard) {
  EXPECT_TRUE(is_dashboard_path("/"));
  EXPECT_TRUE(is_dashboard_path("/ui/js/app.js"));
  EXPECT_FALSE(is_dashboard_path("/index.html"));
  EXPECT_FALSE(is_dashboard_path("/ui"));
  EXPECT_FALSE(is_dashboard_path("/v1/streams"));
}

}  // namespace
}  // namespace ordo::http
