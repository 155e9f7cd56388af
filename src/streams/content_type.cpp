#include "streams/content_type.hpp"

namespace ordo {
namespace {

constexpr std::string_view k_json_media_type = "application/json";
constexpr std::string_view k_text_type_prefix = "text/";

// RFC 9110 section 5.6.2: tchar.
bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_ows_char(char c) {
  return c == ' ' || c == '\t';
}

// RFC 9110 section 5.6.4: qdtext (HTAB, SP, %x21, %x23-5B, %x5D-7E, obs-text).
bool is_qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) ||
         (c >= 0x5D && c <= 0x7E) || c >= 0x80;
}

// The second character of a quoted-pair: HTAB, SP, VCHAR or obs-text.
bool is_quoted_pair_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

// A cursor over the header value. A failed consume_* may leave the cursor part-way through;
// that is fine because any failure rejects the whole value.
class media_type_reader {
 public:
  explicit media_type_reader(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }

  void skip_ows() {
    while (pos_ < text_.size() && is_ows_char(text_[pos_]))
      ++pos_;
  }

  bool consume(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // One or more token characters.
  std::optional<std::string_view> consume_token() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_token_char(text_[pos_]))
      ++pos_;
    if (pos_ == start) return std::nullopt;
    return text_.substr(start, pos_ - start);
  }

  bool consume_quoted_string() {
    if (!consume('"')) return false;
    while (pos_ < text_.size()) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c == '\\') {
        if (pos_ >= text_.size()) return false;
        if (!is_quoted_pair_char(static_cast<unsigned char>(text_[pos_++]))) return false;
      } else if (!is_qdtext(c)) {
        return false;
      }
    }
    return false;  // unterminated
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

std::string to_lower_ascii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

}  // namespace

std::optional<std::string> normalized_media_type(std::string_view header_value) {
  media_type_reader reader(header_value);
  reader.skip_ows();
  const auto type = reader.consume_token();
  if (!type || !reader.consume('/')) return std::nullopt;
  const auto subtype = reader.consume_token();
  if (!subtype) return std::nullopt;

  reader.skip_ows();
  while (!reader.at_end()) {
    if (!reader.consume(';')) return std::nullopt;
    reader.skip_ows();
    if (!reader.consume_token() || !reader.consume('=')) return std::nullopt;
    if (!reader.consume_token() && !reader.consume_quoted_string()) return std::nullopt;
    reader.skip_ows();
  }

  std::string normalized = to_lower_ascii(*type);
  normalized.push_back('/');
  normalized += to_lower_ascii(*subtype);
  return normalized;
}

bool is_json_media_type(std::string_view normalized) {
  return normalized == k_json_media_type;
}

bool is_sse_text_media_type(std::string_view normalized) {
  return is_json_media_type(normalized) ||
         normalized.substr(0, k_text_type_prefix.size()) == k_text_type_prefix;
}

}  // namespace ordo
