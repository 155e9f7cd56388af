#include "http/cors.hpp"

#include <algorithm>

namespace ordo::http {

namespace {

cors_policy& policy_in_force() {
  static cors_policy policy = *cors_policy::parse("*");
  return policy;
}

bool valid_origin(std::string_view o) {
  std::size_t scheme_end = o.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view scheme = o.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  std::string_view rest = o.substr(scheme_end + 3);
  if (rest.empty()) return false;
  return std::all_of(rest.begin(), rest.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
}

}  // namespace

result<cors_policy> cors_policy::parse(std::string_view text) {
  cors_policy p;
  if (text == "*") return p;
  p.any_ = false;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    start = end + 1;
    if (item.empty()) continue;
    if (!valid_origin(item)) {
      return make_failure(failure_kind::invalid, "invalid_cors_origin",
                          "--cors-origins: '" + std::string(item) +
                              "' is not an origin (scheme://host[:port] in lowercase, no path), "
                              "and the list is either * or origins only");
    }
    p.origins_.emplace_back(item);
  }
  return p;
}

std::optional<std::string> cors_policy::allow_origin(
    const std::optional<std::string>& origin) const {
  if (any_) return std::string("*");
  if (!origin) return std::nullopt;
  if (std::find(origins_.begin(), origins_.end(), *origin) == origins_.end()) return std::nullopt;
  return *origin;
}

const cors_policy& current_cors_policy() {
  return policy_in_force();
}

void set_cors_policy(cors_policy policy) {
  policy_in_force() = std::move(policy);
}

}  // namespace ordo::http
