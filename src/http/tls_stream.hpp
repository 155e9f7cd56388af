// A TLS connection's encryption: Beast's SSL stream over the connection's own tcp_stream (held
// by reference, so the connection's timeouts, cancel and close work the same for both kinds),
// and the TLS context it was accepted with. Private to http/: included by the two files that
// read or write a connection (server.cpp, live_readers.cpp); router.cpp and stream_handlers.cpp
// answer through write_response() and never see it.
//
// Thread safety: used on its connection's network thread only (server_impl.hpp, invariant 5).
#pragma once

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>

#include "http/beast_support.hpp"

namespace ordo::http {

struct tls_stream {
  tls_stream(beast::tcp_stream& tcp, std::shared_ptr<asio::ssl::context> ctx)
      : context(std::move(ctx)), stream(tcp, *context) {}
  // Declared first, destroyed last: the SSL stream uses it to its end. A SIGHUP reload replaces
  // the server's context, never this one.
  std::shared_ptr<asio::ssl::context> context;
  beast::ssl_stream<beast::tcp_stream&> stream;
};

}  // namespace ordo::http
