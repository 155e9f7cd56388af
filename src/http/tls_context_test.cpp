// make_server_tls_context against real PEM files made by the openssl command: what loads, and
// each refusal naming its file.
#include "http/tls_context.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ordo::http {
namespace {

namespace fs = std::filesystem;

class TlsContext : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ordo-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    make_pair("a");
    make_pair("b");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A self-signed certificate and its key: NAME.pem, NAME.key.
  void make_pair(const std::string& name) {
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-days 1 -subj /CN=localhost -keyout " +
        path(name + ".key") + " -out " + path(name + ".pem") + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(TlsContext, AMatchingCertificateAndKeyLoad) {
  auto ctx = make_server_tls_context({path("a.pem"), path("a.key")});
  ASSERT_TRUE(ctx) << ctx.error().message;
  EXPECT_NE(ctx->get(), nullptr);
}

TEST_F(TlsContext, AMissingCertificateIsRefusedNamingTheFile) {
  auto ctx = make_server_tls_context({path("missing.pem"), path("a.key")});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, "tls_cert_invalid");
  EXPECT_NE(ctx.error().message.find(path("missing.pem")), std::string::npos);
}

TEST_F(TlsContext, AFileThatIsNotPemIsRefusedNamingTheFile) {
  std::ofstream(path("junk.pem")) << "not a certificate\n";
  auto cert = make_server_tls_context({path("junk.pem"), path("a.key")});
  ASSERT_FALSE(cert);
  EXPECT_EQ(cert.error().code, "tls_cert_invalid");
  EXPECT_NE(cert.error().message.find(path("junk.pem")), std::string::npos);
  auto key = make_server_tls_context({path("a.pem"), path("junk.pem")});
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, "tls_key_invalid");
  EXPECT_NE(key.error().message.find(path("junk.pem")), std::string::npos);
}

TEST_F(TlsContext, AKeyOfAnotherCertificateIsRefusedNamingBothFiles) {
  auto ctx = make_server_tls_context({path("a.pem"), path("b.key")});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, "tls_key_mismatch");
  EXPECT_NE(ctx.error().message.find(path("a.pem")), std::string::npos);
  EXPECT_NE(ctx.error().message.find(path("b.key")), std::string::npos);
}

TEST_F(TlsContext, AnEncryptedKeyIsRefusedWithoutAskingForAPassPhrase) {
  std::string cmd = "openssl pkey -in " + path("a.key") + " -aes256 -passout pass:secret -out " +
                    path("encrypted.key") + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto ctx = make_server_tls_context({path("a.pem"), path("encrypted.key")});
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().code, "tls_key_invalid");
}

}  // namespace
}  // namespace ordo::http
