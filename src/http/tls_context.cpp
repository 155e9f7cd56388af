#include "http/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace ordo::http {

namespace {

// TLS 1.2's suites, in the server's order of preference: forward secrecy and AEAD only.
constexpr const char* k_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The newest error on this thread's OpenSSL queue, which it empties.
std::string openssl_error() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error())
    last = e;
  if (last == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(last, text, sizeof text);
  return text;
}

// An encrypted key would make OpenSSL ask for its pass phrase on the terminal: refuse it.
int no_pass_phrase(char*, int, int, void*) {
  return 0;
}

}  // namespace

void ssl_ctx_free::operator()(ssl_ctx_st* ctx) const {
  SSL_CTX_free(ctx);
}

result<ssl_ctx_ptr> make_server_tls_context(const tls_files& files) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return make_failure(failure_kind::internal, "tls_unavailable",
                        "cannot create a TLS context: " + openssl_error());
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // Idle connections (parked SSE readers) give their read and write buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, k_tls12_ciphers) != 1) {
    return make_failure(failure_kind::internal, "tls_unavailable",
                        "OpenSSL refused the TLS 1.2 cipher list: " + openssl_error());
  }
  SSL_CTX_set_default_passwd_cb(c, no_pass_phrase);
  if (SSL_CTX_use_certificate_chain_file(c, files.cert_file.c_str()) != 1) {
    return make_failure(failure_kind::invalid, "tls_cert_invalid",
                        "cannot load the TLS certificate (chain, PEM) from --tls-cert '" +
                            files.cert_file + "': " + openssl_error());
  }
  // OpenSSL checks the key against the certificate as it loads it: a mismatch fails here.
  bool loaded = SSL_CTX_use_PrivateKey_file(c, files.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
    return make_failure(failure_kind::invalid, "tls_key_invalid",
                        "cannot load the TLS private key (PEM, unencrypted) from --tls-key '" +
                            files.key_file + "': " + openssl_error());
  }
  if (!loaded || SSL_CTX_check_private_key(c) != 1) {
    return make_failure(failure_kind::invalid, "tls_key_mismatch",
                        "the TLS private key in --tls-key '" + files.key_file +
                            "' does not belong to the certificate in --tls-cert '" +
                            files.cert_file + "': " + openssl_error());
  }
  return ctx;
}

}  // namespace ordo::http
