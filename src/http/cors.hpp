// Which web origins may read ordo's answers from a browser (CORS, --cors-origins).
//
//   "*" (the default)   any origin, without credentials: Access-Control-Allow-Origin: *. A page
//                       elsewhere can read what its own bearer token allows, and a browser never
//                       attaches the dashboard's cookie to such a read.
//   a list of origins   "https://app.example.com,http://localhost:5173": only these, each
//                       answered with itself, Access-Control-Allow-Credentials: true and
//                       Vary: Origin; any other origin gets no Access-Control-Allow-Origin, so
//                       its page cannot read the answer.
//
// Thread safety: the policy is set once by server::bind(), before any thread serves, and only
// read afterwards.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ordo::http {

class cors_policy {
 public:
  // "*" or a comma-separated list of origins (scheme://host[:port], no path); a malformed one
  // fails naming it.
  static result<cors_policy> parse(std::string_view text);

  bool any() const { return any_; }
  // The Access-Control-Allow-Origin to answer a request from `origin` with, if any.
  std::optional<std::string> allow_origin(const std::optional<std::string>& origin) const;

 private:
  bool any_ = true;
  std::vector<std::string> origins_;
};

// The policy in force (any origin until server::bind() sets one).
const cors_policy& current_cors_policy();
void set_cors_policy(cors_policy policy);

}  // namespace ordo::http
