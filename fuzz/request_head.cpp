// Harness: a request from its first byte to its handler's parsers, in process, with no socket.
// The bytes go to Beast's request_parser with the server's limits (header_limit 64 KiB, a body
// limit), as server.cpp's session() reads them; then the request-head checks
// (http/request_head.hpp), the origin-form target as dispatch() parses it, the route matchers'
// path checks (validate_stream_path, session_events_stream, is_session_api_path), the read query
// (parse_read_query, change_filter_from_query and the filter on the body), If-None-Match, and the
// protocol headers of PUT and POST (parse_create, parse_append against a real engine).
//
// The request's fields are read with the server's own head_of() and protocol_headers_of()
// (http/beast_support.hpp). The whole path through dispatch() and the handlers, answers
// included, is the dispatch harness's (fuzz/dispatch.cpp); this one is quicker per input and
// feeds the bytes in pieces.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/url.hpp>
#include <cstdint>
#include <string>

#include "fuzz/check.hpp"
#include "fuzz/engine_fixture.hpp"
#include "http/beast_support.hpp"
#include "http/change_filter.hpp"
#include "http/request_head.hpp"
#include "http/session_api.hpp"
#include "http/stream_protocol.hpp"

namespace bhttp = boost::beast::http;
using ordo::fuzz::check;
using ordo::http::request;

namespace {

// server_options' defaults (http/server.hpp): 64 KiB of headers; a smaller body limit keeps
// the harness quick without changing what is parsed.
constexpr std::uint32_t k_header_limit = 64 << 10;
constexpr std::uint64_t k_body_limit = 1 << 20;

void check_head_verdict(const ordo::http::request_head& head,
                        const std::optional<ordo::failure>& refused) {
  if (refused) {
    check(refused->kind == ordo::failure_kind::invalid ||
              refused->kind == ordo::failure_kind::not_implemented,
          "a refused head is 400 or 501");
    return;
  }
  check(head.transfer_encodings.empty() || head.version >= 11, "no TE in HTTP/1.0");
  check(head.hosts.size() <= 1, "at most one Host");
  check(head.version < 11 || head.hosts.size() == 1, "HTTP/1.1 has a Host");
  for (auto host : head.hosts)
    check(ordo::http::valid_host(host), "an accepted Host is valid");
}

void route(const request& req, ordo::stream_engine& engine) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return;  // 400 invalid_target
  std::string path = url->path();
  std::vector<ordo::http::query_param> params;
  for (auto p : url->params())
    params.push_back({p.key, p.value, p.has_value});

  if (auto events = ordo::http::session_events_stream(path)) {
    // router.cpp's match_session_events names the session with this substring.
    check(path.size() >= 20, "an events path holds a session id");
    std::string session = path.substr(13, path.size() - 20);
    check(*events == ordo::sessions::session_service::events_stream_path(session),
          "the events stream is the session's");
    check(ordo::http::is_session_api_path(path), "events paths are session API paths");
  }
  (void)ordo::http::is_session_api_path(path);

  auto query = ordo::http::parse_read_query(params);
  if (query && query->live != ordo::http::live_mode::none) {
    check(query->offset.has_value(), "a live read has an offset");
  }
  if (auto filter = ordo::http::change_filter_from_query(params)) {
    (void)filter->matches(req.body());
    (void)filter->fingerprint();
  }
  if (auto inm = ordo::http::header(req, "If-None-Match")) {
    (void)ordo::http::if_none_match_matches(*inm, "\"fuzz:0\"");
  }

  if (path.rfind(ordo::http::k_stream_route_prefix, 0) != 0) return;
  std::string stream_path = path.substr(ordo::http::k_stream_route_prefix.size());
  const std::string& reserved = engine.options().managed_stream_prefix;
  auto valid = ordo::http::validate_stream_path(stream_path, reserved);
  if (!valid) {
    check(valid.error().kind == ordo::failure_kind::invalid, "a bad path is 400");
    return;
  }
  check(!stream_path.empty(), "a valid path is not empty");
  check(stream_path.size() <= ordo::http::k_max_stream_path_bytes, "a valid path is short");
  check(stream_path.rfind(reserved, 0) != 0, "a valid path is not a managed stream's");

  if (req.method() == bhttp::verb::put) {
    auto create =
        ordo::http::parse_create(ordo::http::protocol_headers_of(req), req.body(), engine);
    if (!create) check(!create.error().code.empty(), "a refused create names its code");
  } else if (req.method() == bhttp::verb::post) {
    ordo::stream_config stream;
    const bool json = !req.body().empty() && (req.body()[0] & 1);
    stream.content_type = json ? "application/json" : "text/plain";
    stream.media_type = stream.content_type;
    stream.payload = json ? ordo::payload_mode::json : ordo::payload_mode::bytes;
    auto append =
        ordo::http::parse_append(ordo::http::protocol_headers_of(req), req.body(), stream);
    if (!append) check(!append.error().code.empty(), "a refused append names its code");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ordo::fuzz::open_fixture(false);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(k_header_limit);
  parser.body_limit(k_body_limit);
  boost::beast::error_code ec;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Like a socket: the bytes arrive in pieces; the first byte of the input sets the piece size.
  std::size_t piece = size > 0 ? (data[0] % 16) + 1 : 1;
  std::string pending;
  std::size_t at = 0;
  while (!parser.is_header_done() && at < input.size()) {
    pending.append(input.substr(at, piece));
    at += piece;
    std::size_t used = parser.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      continue;
    }
    if (ec) return 0;  // 400 malformed_request, 431 or 413 in server.cpp
  }
  if (!parser.is_header_done()) return 0;
  request& head = parser.get();
  auto h = ordo::http::head_of(head);
  auto refused = ordo::http::check_request_head(h);
  check_head_verdict(h, refused);
  if (refused) return 0;
  pending.append(input.substr(std::min(at, input.size())));
  while (!parser.is_done() && !pending.empty()) {
    std::size_t used = parser.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) ec = {};
    if (ec || used == 0) break;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  route(parser.get(), *ordo::fuzz::fixture().engine);
  return 0;
}
