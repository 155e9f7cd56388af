// result<T>: a value or a failure, for module APIs that do not throw (STYLE.md, "Errors").
//
// A failure carries what the caller should do next (its kind), a stable machine-readable code
// (snake_case, shown to clients as error.code) and a sentence naming what to fix. The mapping
// from kind to an HTTP status lives in one place: http/error_response.cpp.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ordo {

// What the caller should do next.
enum class failure_kind {
  invalid,               // fix the request (400)
  unauthenticated,       // send a valid credential (401)
  not_found,             // stop: it does not exist (404)
  gone,                  // stop: it existed and can no longer be served (410)
  conflict,              // re-read and retry the read-modify-write (409)
  forbidden,             // stop: fenced or not allowed (403)
  precondition_failed,   // re-read, then retry with the current version (412)
  too_large,             // send less (413)
  unavailable,           // retry the same call later (503)
  too_many_requests,     // slow down: retry after the Retry-After the failure names (429)
  insufficient_storage,  // retry when the operator has freed space (507)
  not_implemented,       // the server does not support what the request needs (501)
  method_not_allowed,    // use another method (405; the failure's "allow" detail lists them)
  headers_too_large,     // send smaller headers (431)
  internal,              // a bug or an unexpected failure (500)
};

struct failure {
  failure_kind kind = failure_kind::internal;
  std::string code;     // e.g. "invalid_offset"
  std::string message;  // e.g. "offset '0,1' is malformed: ..."
  // Extra fields of the error body, each value a JSON text, e.g. {"current_revision", "7"}.
  std::vector<std::pair<std::string, std::string>> details;

  failure& with(std::string key, std::string json_value) {
    details.emplace_back(std::move(key), std::move(json_value));
    return *this;
  }
};

inline failure make_failure(failure_kind kind, std::string code, std::string message) {
  return failure{kind, std::move(code), std::move(message), {}};
}

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(failure f) : state_(std::in_place_index<1>, std::move(f)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const failure& error() const& {
    assert(!ok());
    return std::get<1>(state_);
  }
  failure&& error() && {
    assert(!ok());
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, failure> state_;
};

// result<void>: success or a failure.
struct ok_t {};
inline constexpr ok_t ok_v{};
using status = result<ok_t>;

}  // namespace ordo
