// Checks of a request's framing and Host before it is routed (RFC 9112). Whatever a proxy in
// front of ordo could read differently is refused, and the connection closed, instead of being
// guessed at: a body whose length ordo cannot tell would otherwise be read as the next request
// (request smuggling), and a Host that is not an authority would be echoed into Location.
// No Beast here: server.cpp hands in the header fields.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ordo::http {

// `s` without the spaces and tabs around it (RFC 9110's optional whitespace).
std::string_view trim_ows(std::string_view s);
// Whether `a` and `b` are equal but for the case of ASCII letters (field names, tokens, schemes).
bool iequals_ascii(std::string_view a, std::string_view b);

struct request_head {
  unsigned version = 11;                             // 10 or 11
  std::vector<std::string_view> transfer_encodings;  // every Transfer-Encoding field's value
  std::vector<std::string_view> hosts;               // every Host field's value
};

// nullopt when the request may be served. Otherwise the failure to answer, after which the
// connection must close:
//   - a Transfer-Encoding other than exactly `chunked`: 501 unsupported_transfer_encoding
//     (RFC 9112 §6.1: gzip, `chunked, identity`, unknown codings), or, in an HTTP/1.0 request,
//     400 invalid_transfer_encoding (§6.1: its framing is faulty);
//   - HTTP/1.1 without Host: 400 missing_host (§3.2); more than one Host, or one that is not
//     host[:port]: 400 invalid_host.
std::optional<failure> check_request_head(const request_head& head);

// Whether `host` is a Host field value: an empty value, or uri-host [":" port] (a registered
// name, an IPv4 address or a bracketed IP literal) without user information.
bool valid_host(std::string_view host);

}  // namespace ordo::http
