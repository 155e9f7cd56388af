#include "base/base64.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ordo {
namespace {

// RFC 4648 section 10 test vectors.
struct vector {
  const char* bytes;
  const char* encoded;
};
constexpr vector k_rfc4648_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

std::string all_byte_values() {
  std::string bytes;
  for (int b = 0; b < 256; ++b)
    bytes.push_back(static_cast<char>(b));
  return bytes;
}

TEST(base64, encodes_the_rfc4648_vectors) {
  for (const vector& v : k_rfc4648_vectors)
    EXPECT_EQ(base64_encode(v.bytes), v.encoded);
}

TEST(base64, decodes_the_rfc4648_vectors) {
  for (const vector& v : k_rfc4648_vectors)
    EXPECT_EQ(base64_decode(v.encoded), v.bytes);
}

TEST(base64, empty_input_encodes_and_decodes_to_empty) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_decode(""), std::string());
}

TEST(base64, encode_append_keeps_what_was_already_in_the_buffer) {
  std::string out = "data:";
  base64_encode_append(out, "foobar");
  base64_encode_append(out, "f");
  EXPECT_EQ(out, "data:Zm9vYmFyZg==");
}

TEST(base64, uses_plus_and_slash_for_the_last_two_symbols) {
  EXPECT_EQ(base64_encode(std::string("\xFB\xEF\xFF", 3)), "++//");
  EXPECT_EQ(base64_decode("++//"), std::string("\xFB\xEF\xFF", 3));
}

TEST(base64, every_byte_value_round_trips) {
  const std::string bytes = all_byte_values();
  const std::string encoded = base64_encode(bytes);
  EXPECT_EQ(encoded.size(), (bytes.size() + 2) / 3 * 4);
  EXPECT_EQ(base64_decode(encoded), bytes);
}

TEST(base64, every_single_byte_and_every_length_round_trips) {
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(base64_decode(base64_encode(one)), one) << b;
  }
  const std::string bytes = all_byte_values();
  for (std::size_t length = 0; length <= bytes.size(); ++length) {
    const std::string prefix = bytes.substr(256 - length);
    ASSERT_EQ(base64_decode(base64_encode(prefix)), prefix) << length;
  }
}

TEST(base64, embedded_nul_bytes_are_preserved) {
  const std::string bytes("\0a\0", 3);
  EXPECT_EQ(base64_encode(bytes), "AGEA");
  EXPECT_EQ(base64_decode("AGEA"), bytes);
}

TEST(base64, decode_skips_line_breaks) {
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy"), "foobar");
  EXPECT_EQ(base64_decode("Zm\n9vY\rmE=\n"), "fooba");
  EXPECT_EQ(base64_decode("\r\n"), std::string());
}

// --- Error paths -------------------------------------------------------------------------------

TEST(base64, characters_outside_the_alphabet_are_rejected) {
  EXPECT_EQ(base64_decode("Zm9v YmFy"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9v\tYmFy"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9-"), std::nullopt);  // base64url symbols are not accepted
  EXPECT_EQ(base64_decode("Zm9_"), std::nullopt);
  EXPECT_EQ(base64_decode(std::string("Zm9\0", 4)), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9\xC3"), std::nullopt);
}

TEST(base64, missing_padding_is_rejected) {
  EXPECT_EQ(base64_decode("Zg"), std::nullopt);
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);
  EXPECT_EQ(base64_decode("Zm8"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9vY"), std::nullopt);
}

TEST(base64, misplaced_or_excess_padding_is_rejected) {
  EXPECT_EQ(base64_decode("===="), std::nullopt);
  EXPECT_EQ(base64_decode("Z==="), std::nullopt);
  EXPECT_EQ(base64_decode("Zg=a"), std::nullopt);
  EXPECT_EQ(base64_decode("Zg==Zg=="), std::nullopt);
  EXPECT_EQ(base64_decode("Zm8=="), std::nullopt);
  EXPECT_EQ(base64_decode("Zg==="), std::nullopt);
  EXPECT_EQ(base64_decode("="), std::nullopt);
}

TEST(base64, non_zero_bits_after_the_last_byte_are_rejected) {
  EXPECT_EQ(base64_decode("Zh=="), std::nullopt);  // "Zg==" is the only encoding of "f"
  EXPECT_EQ(base64_decode("Zm9="), std::nullopt);  // "Zm8=" is the only encoding of "fo"
}

TEST(base64url, encodes_without_padding_in_the_url_alphabet) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), std::string("foobar"));
}

TEST(base64url, refuses_padding_the_standard_alphabet_and_impossible_lengths) {
  EXPECT_EQ(base64url_decode("Zg=="), std::nullopt);
  EXPECT_EQ(base64url_decode("+/8"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vY"), std::nullopt);  // 5 characters: 1 modulo 4
  EXPECT_EQ(base64url_decode("Zh"), std::nullopt);     // non-zero bits after "f"
  EXPECT_EQ(base64url_decode("Zg\n"), std::nullopt);
}

}  // namespace
}  // namespace ordo
