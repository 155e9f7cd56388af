// The server's TLS settings, built from its certificate and key files with OpenSSL alone (no
// Asio or Beast here, so the loading and its errors are testable without a server):
// TLS 1.2 and later, no compression, no renegotiation, the server's cipher preference (ECDHE
// with AES-GCM or ChaCha20-Poly1305 for TLS 1.2; TLS 1.3's suites are all AEAD).
// server.cpp wraps the result in an asio::ssl::context, one per load: `ordo serve` loads it at
// start and again on SIGHUP (server::reload_tls()).
//
// Thread safety: make_server_tls_context() keeps no state and may run on any thread (OpenSSL's
// error queue is per thread).
#pragma once

#include <memory>
#include <string>

#include "base/result.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace ordo::http {

// Where `ordo serve --tls-cert/--tls-key` found the server's identity (PEM files).
struct tls_files {
  std::string cert_file;  // the certificate, then any intermediates (a chain)
  std::string key_file;   // its private key, unencrypted
};

struct ssl_ctx_free {
  void operator()(ssl_ctx_st* ctx) const;
};
using ssl_ctx_ptr = std::unique_ptr<ssl_ctx_st, ssl_ctx_free>;

// A server context for `files`; fails with tls_cert_invalid or tls_key_invalid naming the file
// that does not load, or tls_key_mismatch when the key is not the certificate's.
result<ssl_ctx_ptr> make_server_tls_context(const tls_files& files);

}  // namespace ordo::http
