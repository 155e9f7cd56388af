// The only translation unit of the client that includes Boost.Beast and Asio. An https://
// connection is Beast's SSL stream over the connection's tcp_stream (held by reference, so
// timeouts and cancel act on the TCP layer alike); every exchange is a template over the stream
// it reads and writes.
#include "client/http.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace ordo::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// The most a whole (non-streamed) response body may hold: well above the server's largest
// catch-up chunk.
constexpr std::uint64_t k_max_response_bytes = 256ull << 20;
constexpr std::size_t k_stream_buffer_bytes = 64 << 10;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

failure transport_failure(std::string_view code, std::string message) {
  return make_failure(failure_kind::unavailable, std::string(code), std::move(message));
}

template <class Fields>
void copy_headers(const Fields& from, http_response& to) {
  for (const auto& f : from)
    to.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
}

}  // namespace

result<server_address> parse_server_url(std::string_view url) {
  auto invalid = [&](const std::string& why) {
    return make_failure(failure_kind::invalid, "invalid_url",
                        "server URL '" + std::string(url) + "' " + why);
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return invalid("is not a URL (expected http://host:port or https://host:port)");
  if (parsed->scheme() != "http" && parsed->scheme() != "https") {
    return invalid("must start with http:// or https://");
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) return invalid("has no host");
  if (parsed->has_query() || parsed->has_fragment()) {
    return invalid("must not have a query or fragment");
  }
  server_address a;
  a.tls = parsed->scheme() == "https";
  if (a.tls) a.port = "443";
  a.host = std::string(parsed->encoded_host());
  if (a.host.size() > 2 && a.host.front() == '[') a.host = a.host.substr(1, a.host.size() - 2);
  if (parsed->has_port()) a.port = std::string(parsed->port());
  a.prefix = std::string(parsed->encoded_path());
  while (!a.prefix.empty() && a.prefix.back() == '/')
    a.prefix.pop_back();
  return a;
}

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

struct http_connection::impl {
  impl(server_address s, tls_trust t) : server(std::move(s)), trust(std::move(t)) {}

  server_address server;
  tls_trust trust;
  asio::io_context ioc;
  // Built at the first https:// connection; a CA file that does not load is kept as
  // tls_setup_failure and fails every request.
  std::optional<asio::ssl::context> tls_context;
  std::optional<failure> tls_setup_failure;
  std::optional<beast::tcp_stream> stream;
  // For https://: the SSL stream over *stream (declared after it: destroyed first).
  std::optional<beast::ssl_stream<beast::tcp_stream&>> tls;
  // Why the server's certificate was refused, when the last handshake failed for that.
  std::string tls_verify_error;
  beast::flat_buffer buffer;
  bool reused = false;  // the open connection already carried a response

  failure error_of(const beast::error_code& ec, const std::atomic<bool>& cancelled,
                   std::string_view during) const {
    if (cancelled) return transport_failure(k_cancelled, "cancelled");
    if (tls_setup_failure) return *tls_setup_failure;
    if (!tls_verify_error.empty()) {
      return transport_failure(k_tls_verify_failed,
                               "the TLS certificate of " + server.host + ":" + server.port +
                                   " is not trusted: " + tls_verify_error +
                                   " (a private CA: give its certificate with --cacert FILE or "
                                   "ORDO_CACERT)");
    }
    if (ec == beast::error::timeout) {
      return transport_failure(
          k_timed_out, "timed out " + std::string(during) + " " + server.host + ":" + server.port);
    }
    return transport_failure(k_connection_failed, std::string(during) + " " + server.host + ":" +
                                                      server.port + " failed: " + ec.message());
  }

  void close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
    }
    tls.reset();
    stream.reset();
    buffer.clear();
    reused = false;
  }

  // The client's TLS settings: TLS 1.2 or later, the peer verified against trust.ca_file or the
  // system's CA certificates.
  bool ensure_tls_context() {
    if (tls_context) return true;
    if (tls_setup_failure) return false;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (trust.ca_file.empty()) {
      ctx.set_default_verify_paths(ec);
    } else {
      ctx.load_verify_file(trust.ca_file, ec);
    }
    if (ec) {
      tls_setup_failure = make_failure(
          failure_kind::invalid, "tls_ca_invalid",
          trust.ca_file.empty() ? "cannot load the system's CA certificates: " + ec.message()
                                : "cannot load the CA certificates (PEM) from --cacert '" +
                                      trust.ca_file + "': " + ec.message());
      return false;
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    tls_context.emplace(std::move(ctx));
    return true;
  }

  asio::awaitable<beast::error_code> connect(std::chrono::milliseconds timeout) {
    tls_verify_error.clear();
    if (server.tls && !ensure_tls_context()) co_return asio::error::invalid_argument;
    tcp::resolver resolver(ioc);
    auto [ec, endpoints] =
        co_await resolver.async_resolve(server.host, server.port, tuple_awaitable);
    if (ec) co_return ec;
    stream.emplace(ioc);
    stream->expires_after(timeout);
    auto [cec, endpoint] = co_await stream->async_connect(endpoints, tuple_awaitable);
    if (cec) {
      stream.reset();
      co_return cec;
    }
    beast::error_code ignored;  // small requests go out without waiting for an ACK
    stream->socket().set_option(tcp::no_delay(true), ignored);
    if (!server.tls) co_return cec;
    tls.emplace(*stream, *tls_context);
    SSL* ssl = tls->native_handle();
    beast::error_code not_an_address;
    asio::ip::make_address(server.host, not_an_address);
    if (not_an_address) {
      // A name: sent as SNI, and the certificate must be for it.
      SSL_set_tlsext_host_name(ssl, server.host.c_str());
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, server.host.c_str());
    } else {
      // An address: no SNI (RFC 6066), the certificate must name the address.
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server.host.c_str());
    }
    auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, tuple_awaitable);
    if (hec) {
      long verified = SSL_get_verify_result(ssl);
      if (verified != X509_V_OK) tls_verify_error = X509_verify_cert_error_string(verified);
      close();
    }
    co_return hec;
  }

  bhttp::request<bhttp::string_body> build(const http_request& r) const {
    bhttp::request<bhttp::string_body> req;
    req.method_string(r.method);
    req.target(server.prefix + r.target);
    req.version(11);
    req.set(bhttp::field::host, server.host + ":" + server.port);
    req.set(bhttp::field::user_agent, "ordo-client");
    for (const auto& [k, v] : r.headers)
      req.set(k, v);
    req.body() = r.body;
    if (!r.body.empty() || r.method == "POST" || r.method == "PUT") req.prepare_payload();
    req.keep_alive(true);
    return req;
  }

  // One attempt on the open connection (connecting first if there is none). `fresh` tells
  // whether a failure may be retried on a new connection (nothing of the response arrived on
  // a connection that had been idle).
  struct attempt {
    std::optional<http_response> response;
    beast::error_code ec;
    const char* during = "";
    bool retry_on_new_connection = false;
  };

  asio::awaitable<attempt> exchange(const http_request& r, std::chrono::milliseconds timeout) {
    attempt a;
    bool was_reused = reused && stream.has_value();
    if (!stream) {
      a.ec = co_await connect(timeout);
      if (a.ec) {
        a.during = "connecting to";
        co_return a;
      }
    }
    if (tls) {
      co_await exchange_on(*tls, r, timeout, was_reused, a);
    } else {
      co_await exchange_on(*stream, r, timeout, was_reused, a);
    }
    co_return a;
  }

  // Writes `r` on `io`, the connection's deadline set `timeout` ahead; the write's error.
  template <class Stream>
  asio::awaitable<beast::error_code> send_request(Stream& io, const http_request& r,
                                                  std::chrono::milliseconds timeout) {
    stream->expires_after(timeout);
    auto req = build(r);
    auto [ec, written] = co_await bhttp::async_write(io, req, tuple_awaitable);
    co_return ec;
  }

  template <class Stream>
  asio::awaitable<void> exchange_on(Stream& io, const http_request& r,
                                    std::chrono::milliseconds timeout, bool was_reused,
                                    attempt& a) {
    if (auto wec = co_await send_request(io, r, timeout)) {
      a.ec = wec;
      a.during = "sending to";
      a.retry_on_new_connection = was_reused;
      co_return;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(k_max_response_bytes);
    if (r.method == "HEAD") parser.skip(true);
    auto [rec, read] = co_await bhttp::async_read(io, buffer, parser, tuple_awaitable);
    if (rec) {
      a.ec = rec;
      a.during = "reading from";
      a.retry_on_new_connection = was_reused && !parser.got_some();
      co_return;
    }
    auto& msg = parser.get();
    http_response out;
    out.status = static_cast<int>(msg.result_int());
    copy_headers(msg.base(), out);
    out.body = std::move(msg.body());
    reused = true;
    if (!msg.keep_alive()) close();
    a.response = std::move(out);
  }

  struct streamed {
    std::optional<http_response> head;
    beast::error_code ec;
    const char* during = "";
  };

  // http_connection::stream's request on the connection just opened.
  template <class Stream>
  asio::awaitable<void> stream_on(Stream& io, const http_request& r,
                                  const std::function<bool(const http_response&)>& on_head,
                                  const std::function<bool(std::string_view)>& on_body,
                                  std::chrono::milliseconds idle, streamed& o) {
    if (auto wec = co_await send_request(io, r, idle)) {
      o.ec = wec;
      o.during = "sending to";
      co_return;
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    auto [hec, hn] = co_await bhttp::async_read_header(io, buffer, parser, tuple_awaitable);
    if (hec) {
      o.ec = hec;
      o.during = "reading from";
      co_return;
    }
    http_response head;
    head.status = static_cast<int>(parser.get().result_int());
    copy_headers(parser.get().base(), head);
    o.head = head;
    if (!on_head(head)) co_return;
    std::array<char, k_stream_buffer_bytes> chunk{};
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      stream->expires_after(idle);
      auto [rec, rn] = co_await bhttp::async_read_some(io, buffer, parser, tuple_awaitable);
      if (rec == bhttp::error::need_buffer) rec = {};
      std::size_t got = chunk.size() - parser.get().body().size;
      if (got > 0 && !on_body(std::string_view(chunk.data(), got))) co_return;
      if (rec) {
        o.ec = rec;
        o.during = "reading from";
        co_return;
      }
    }
  }

  template <class T>
  T run(asio::awaitable<T> work) {
    auto future = asio::co_spawn(ioc, std::move(work), asio::use_future);
    ioc.restart();
    ioc.run();
    return future.get();
  }
};

http_connection::http_connection(server_address server, tls_trust trust)
    : impl_(std::make_unique<impl>(std::move(server), std::move(trust))) {}

http_connection::~http_connection() = default;

void http_connection::cancel() {
  cancelled_ = true;
  asio::post(impl_->ioc, [p = impl_.get()] {
    if (p->stream) p->stream->cancel();
  });
}

result<http_response> http_connection::send(const http_request& request,
                                            std::chrono::milliseconds timeout) {
  for (int round = 0; round < 2; ++round) {
    if (cancelled_) return transport_failure(k_cancelled, "cancelled");
    impl::attempt a = impl_->run(impl_->exchange(request, timeout));
    if (a.response) return std::move(*a.response);
    impl_->close();
    // A kept-alive connection the server had closed meanwhile: try once on a new one.
    if (a.retry_on_new_connection && request.idempotent && !cancelled_) continue;
    return impl_->error_of(a.ec, cancelled_, a.during);
  }
  return transport_failure(k_connection_failed, "unreachable");
}

result<http_response> http_connection::stream(
    const http_request& request, const std::function<bool(const http_response&)>& on_head,
    const std::function<bool(std::string_view)>& on_body, std::chrono::milliseconds idle_timeout) {
  if (cancelled_) return transport_failure(k_cancelled, "cancelled");
  // A streamed response is read on its own connection: it ends with the connection.
  impl_->close();
  auto work = [](impl* p, const http_request* r,
                 const std::function<bool(const http_response&)>* on_head,
                 const std::function<bool(std::string_view)>* on_body,
                 std::chrono::milliseconds idle) -> asio::awaitable<impl::streamed> {
    impl::streamed o;
    o.ec = co_await p->connect(idle);
    if (o.ec) {
      o.during = "connecting to";
      co_return o;
    }
    if (p->tls) {
      co_await p->stream_on(*p->tls, *r, *on_head, *on_body, idle, o);
    } else {
      co_await p->stream_on(*p->stream, *r, *on_head, *on_body, idle, o);
    }
    co_return o;
  };
  impl::streamed o = impl_->run(work(impl_.get(), &request, &on_head, &on_body, idle_timeout));
  impl_->close();
  if (o.ec) return impl_->error_of(o.ec, cancelled_, o.during);
  if (!o.head) return transport_failure(k_connection_failed, "no response");
  return std::move(*o.head);
}

}  // namespace ordo::client
