// Harness: every route of the session API (http/session_api.hpp, session_routes()), driven
// through handle_session_api() as router.cpp does, against a real session_service over a real
// SQLite database (a temporary directory, opened once per process). The input picks the route,
// whether its path parameters name the harness's project and a live session or are fuzzed, the
// query, If-Match and Idempotency-Key, and the body (JSON or not; PR observations included).
//
// Input layout (FuzzedDataProvider: integers from the end, strings from the front): the last
// byte picks the route (index into session_routes()), the one before it holds flags (1, 16 and 32
// together: a fresh session; 2: If-Match; 4: Idempotency-Key; 8: fuzzed path parameters); from
// the front come the query, If-Match, Idempotency-Key and path segment strings, each ended by a
// backslash and another character; the rest is the body.
//
// Invariants: every request is answered exactly once, with a 2xx-4xx status or the storage's
// 503/507, never 500 (an internal error is a bug); a body is JSON; a failure's body names a code.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "fuzz/check.hpp"
#include "fuzz/engine_fixture.hpp"
#include "http/session_api.hpp"

using ordo::fuzz::check;
namespace json = boost::json;

namespace {

std::string g_project;  // the harness's project; replaced when an input archived it
std::string g_session;  // a live session of g_project, replaced when asked (flags 1 and 16)
int g_projects = 0;
bool g_session_ended = false;  // the last answer said g_session has ended

ordo::http::api_response call(ordo::http::api_request request) {
  auto answered = std::make_shared<std::promise<ordo::http::api_response>>();
  auto future = answered->get_future();
  auto calls = std::make_shared<std::atomic<int>>(0);
  ordo::http::handle_session_api(*ordo::fuzz::fixture().service, std::move(request),
                                 [answered, calls](ordo::http::api_response r) {
                                   check(++*calls == 1, "answered exactly once");
                                   answered->set_value(std::move(r));
                                 });
  return future.get();
}

ordo::http::api_request make_request(std::string method, std::string path, std::string body) {
  ordo::http::api_request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  r.header = [](std::string_view) { return std::optional<std::string>(); };
  return r;
}

void new_project() {
  g_project = "fuzz-" + std::to_string(++g_projects);
  auto r =
      call(make_request("POST", "/v1/projects", R"({"id":")" + g_project + R"(","name":"Fuzz"})"));
  check(r.status == 201 || r.status == 200, "a project can be created");
}

// A new session in g_project; in a new project when an input archived that one.
std::string new_session() {
  auto r = call(make_request("POST", "/v1/projects/" + g_project + "/sessions", "{}"));
  if (r.status >= 400) {
    new_project();
    r = call(make_request("POST", "/v1/projects/" + g_project + "/sessions", "{}"));
  }
  check(r.status == 201 || r.status == 200, "a session can be created");
  return json::value_to<std::string>(json::parse(r.body).at("id"));
}

// A path from a route template: {project} is the harness's project, {session} the live session,
// {generation} and {command} "1", {row} "r1"; with `fuzzed`, every parameter is `segment` instead.
std::string path_of(std::string_view templ, bool fuzzed, const std::string& segment) {
  std::string out;
  std::size_t i = 0;
  while (i < templ.size()) {
    if (templ[i] != '{') {
      out.push_back(templ[i++]);
      continue;
    }
    std::size_t end = templ.find('}', i);
    std::string_view name = templ.substr(i + 1, end - i - 1);
    if (fuzzed) {
      out += segment;
    } else if (name == "project") {
      out += g_project;
    } else if (name == "session") {
      out += g_session;
    } else if (name == "row") {
      out += "r1";
    } else {
      out += "1";
    }
    i = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  ordo::fuzz::disable_leak_checks(argc, argv);
  ordo::fuzz::open_fixture(true);
  new_project();
  g_session = new_session();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto& routes = ordo::http::session_routes();
  const auto& spec = routes[in.ConsumeIntegralInRange<std::size_t>(0, routes.size() - 1)];
  const std::uint8_t flags = in.ConsumeIntegral<std::uint8_t>();
  std::string query = in.ConsumeRandomLengthString(128);
  std::optional<std::string> if_match;
  std::optional<std::string> idempotency_key;
  if (flags & 2) if_match = in.ConsumeRandomLengthString(24);
  if (flags & 4) idempotency_key = in.ConsumeRandomLengthString(48);
  std::string segment = flags & 8 ? in.ConsumeRandomLengthString(48) : std::string();
  std::string body = in.ConsumeRemainingBytesAsString();
  // A fresh session now and then (one input in eight, and after the last one ended): every
  // session is in the change feed's snapshot and the lists, so creating one per input would slow
  // those routes down over a run.
  if ((flags & 0x31) == 0x31 || g_session_ended) g_session = new_session();
  g_session_ended = false;

  auto request = make_request(std::string(spec.method), path_of(spec.path, flags & 8, segment),
                              std::move(body));
  // The query as router.cpp decodes it (an origin-form target it could not parse is a 400 there).
  const std::string target = "/?" + query;  // the url_view below points into it
  if (auto url = boost::urls::parse_origin_form(target)) {
    for (auto p : url->params())
      request.query.push_back({p.key, p.value, p.has_value});
  }
  request.header = [if_match, idempotency_key](std::string_view name) {
    if (name == "If-Match") return if_match;
    if (name == "Idempotency-Key") return idempotency_key;
    return std::optional<std::string>();
  };
  auto answer = call(std::move(request));
  g_session_ended = answer.status == 409 && answer.body.find("session_ended") != std::string::npos;
  check(answer.status >= 200 && answer.status < 600, "an HTTP status");
  check(answer.status != 500, "no internal error");
  check(answer.status < 500 || answer.status == 503 || answer.status == 507,
        "5xx only for storage");
  if (!answer.body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(answer.body, ec);
    check(!ec, "the body is JSON");
    if (answer.status >= 400) {
      check(v.is_object() && v.as_object().contains("error"), "a failure names its error");
    }
  }
  return 0;
}
