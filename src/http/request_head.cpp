#include "http/request_head.hpp"

#include <boost/url/parse.hpp>
#include <string>

namespace ordo::http {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

namespace {

// How much of a refused field value an error message quotes.
constexpr std::size_t k_quoted_value_bytes = 64;

// A field value quoted for an error message: printable ASCII only, at most
// k_quoted_value_bytes.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (unsigned char c : value.substr(0, k_quoted_value_bytes))
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  if (value.size() > k_quoted_value_bytes) out += "...";
  return out + "'";
}

}  // namespace

bool valid_host(std::string_view host) {
  if (host.empty()) return true;
  auto authority = boost::urls::parse_authority(host);
  if (!authority || authority->has_userinfo() || authority->host().empty()) return false;
  std::string_view port = authority->port();
  return port.size() <= 5 && (port.size() < 5 || port <= "65535");
}

std::optional<failure> check_request_head(const request_head& head) {
  if (!head.transfer_encodings.empty()) {
    if (head.version < 11) {
      return make_failure(failure_kind::invalid, "invalid_transfer_encoding",
                          "an HTTP/1.0 request cannot use Transfer-Encoding; send Content-Length");
    }
    // The codings of every field, in order; only a single `chunked` is understood.
    std::vector<std::string_view> codings;
    std::string all;
    for (std::string_view field : head.transfer_encodings) {
      if (!all.empty()) all += ", ";
      all += field;
      std::size_t start = 0;
      while (start <= field.size()) {
        std::size_t comma = field.find(',', start);
        if (comma == std::string_view::npos) comma = field.size();
        std::string_view coding = trim_ows(field.substr(start, comma - start));
        if (!coding.empty()) codings.push_back(coding);
        start = comma + 1;
      }
    }
    if (codings.size() != 1 || !iequals_ascii(codings.front(), "chunked")) {
      return make_failure(failure_kind::not_implemented, "unsupported_transfer_encoding",
                          "Transfer-Encoding " + quoted(all) +
                              " is not supported; send the body with Content-Length or "
                              "'Transfer-Encoding: chunked'");
    }
  }
  if (head.hosts.empty()) {
    if (head.version >= 11) {
      return make_failure(failure_kind::invalid, "missing_host",
                          "an HTTP/1.1 request needs a Host header");
    }
    return std::nullopt;
  }
  if (head.hosts.size() > 1) {
    return make_failure(failure_kind::invalid, "invalid_host",
                        "the request has more than one Host header");
  }
  if (!valid_host(head.hosts.front())) {
    return make_failure(failure_kind::invalid, "invalid_host",
                        "Host " + quoted(head.hosts.front()) +
                            " is not a host name or address with an optional port");
  }
  return std::nullopt;
}

}  // namespace ordo::http
