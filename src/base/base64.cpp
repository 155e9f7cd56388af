#include "base/base64.hpp"

#include <array>
#include <cstdint>

namespace ordo {
namespace {

constexpr std::string_view k_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char k_padding = '=';
constexpr std::size_t k_bytes_per_group = 3;
constexpr std::size_t k_chars_per_group = 4;
constexpr std::uint8_t k_not_in_alphabet = 0xFF;
constexpr std::uint32_t k_sextet_mask = 0x3F;  // the 6 bits one base64 character carries

constexpr std::size_t k_byte_values = 256;

constexpr std::array<std::uint8_t, k_byte_values> make_decode_table() {
  std::array<std::uint8_t, k_byte_values> table{};
  table.fill(k_not_in_alphabet);
  for (std::size_t i = 0; i < k_alphabet.size(); ++i) {
    table[static_cast<unsigned char>(k_alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr std::array<std::uint8_t, k_byte_values> k_decode_table = make_decode_table();

std::uint32_t byte_at(std::string_view bytes, std::size_t i) {
  return static_cast<unsigned char>(bytes[i]);
}

}  // namespace

void base64_encode_append(std::string& out, std::string_view bytes) {
  out.reserve(out.size() +
              (bytes.size() + k_bytes_per_group - 1) / k_bytes_per_group * k_chars_per_group);
  std::size_t i = 0;
  for (; i + k_bytes_per_group <= bytes.size(); i += k_bytes_per_group) {
    const std::uint32_t group =
        byte_at(bytes, i) << 16 | byte_at(bytes, i + 1) << 8 | byte_at(bytes, i + 2);
    out.push_back(k_alphabet[group >> 18 & k_sextet_mask]);
    out.push_back(k_alphabet[group >> 12 & k_sextet_mask]);
    out.push_back(k_alphabet[group >> 6 & k_sextet_mask]);
    out.push_back(k_alphabet[group & k_sextet_mask]);
  }
  const std::size_t remaining = bytes.size() - i;
  if (remaining == 0) return;
  const std::uint32_t group =
      byte_at(bytes, i) << 16 | (remaining == 2 ? byte_at(bytes, i + 1) << 8 : 0);
  out.push_back(k_alphabet[group >> 18 & k_sextet_mask]);
  out.push_back(k_alphabet[group >> 12 & k_sextet_mask]);
  out.push_back(remaining == 2 ? k_alphabet[group >> 6 & k_sextet_mask] : k_padding);
  out.push_back(k_padding);
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  base64_encode_append(out, bytes);
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / k_chars_per_group * k_bytes_per_group);

  std::uint32_t group = 0;
  std::size_t chars_in_group = 0;
  std::size_t padding_seen = 0;
  for (const char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (c == k_padding) {
      // Padding only fills the last one or two positions of a group.
      if (chars_in_group < 2) return std::nullopt;
      ++padding_seen;
      group <<= 6;
      ++chars_in_group;
    } else {
      // Nothing may follow the padding.
      if (padding_seen > 0) return std::nullopt;
      const std::uint8_t value = k_decode_table[static_cast<unsigned char>(c)];
      if (value == k_not_in_alphabet) return std::nullopt;
      group = group << 6 | value;
      ++chars_in_group;
    }
    if (chars_in_group < k_chars_per_group) continue;

    const std::size_t bytes_in_group = k_bytes_per_group - padding_seen;
    // Bits below the last real byte must be zero, so each byte string has one encoding.
    if (padding_seen == 1 && (group & 0xFF) != 0) return std::nullopt;
    if (padding_seen == 2 && (group & 0xFFFF) != 0) return std::nullopt;
    out.push_back(static_cast<char>(group >> 16 & 0xFF));
    if (bytes_in_group > 1) out.push_back(static_cast<char>(group >> 8 & 0xFF));
    if (bytes_in_group > 2) out.push_back(static_cast<char>(group & 0xFF));
    group = 0;
    chars_in_group = 0;
    // A padded group ends the text; padding_seen stays set so any further character fails.
  }
  if (chars_in_group != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out = base64_encode(bytes);
  while (!out.empty() && out.back() == k_padding)
    out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // A length of 1 modulo 4 cannot come from any byte string.
  if (text.size() % k_chars_per_group == 1) return std::nullopt;
  std::string standard;
  standard.reserve(text.size() + 2);
  for (char c : text) {
    if (c == '+' || c == '/' || c == k_padding || c == '\r' || c == '\n') return std::nullopt;
    standard.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  while (standard.size() % k_chars_per_group != 0)
    standard.push_back(k_padding);
  return base64_decode(standard);
}

}  // namespace ordo
