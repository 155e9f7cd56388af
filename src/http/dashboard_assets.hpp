// The dashboard's files (web/), embedded into the binary by the build: cmake/embed_assets.cmake
// generates the definition of dashboard_assets() from web/ (see it for paths and ETags).
#pragma once

#include <string_view>
#include <vector>

namespace ordo::http {

struct embedded_asset {
  std::string_view url_path;      // "/" for index.html, "/ui/<file>" for the rest
  std::string_view content_type;  // from the file's extension
  std::string_view etag;          // strong, quoted: a hash of the bytes
  std::string_view body;
};

// Every embedded file, ordered by its path under web/. Immutable; safe from any thread.
const std::vector<embedded_asset>& dashboard_assets();

}  // namespace ordo::http
