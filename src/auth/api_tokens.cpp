#include "auth/api_tokens.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "base/base64.hpp"
#include "base/rfc3339.hpp"

namespace ordo::auth {

namespace json = boost::json;

namespace {

constexpr std::size_t k_id_bytes = 6;       // 12 hex digits
constexpr std::size_t k_secret_bytes = 32;  // 43 base64url characters
constexpr std::size_t k_sha256_hex_digits = 64;

failure bad_line(const std::string& path, std::size_t line, std::string why) {
  return make_failure(failure_kind::invalid, "invalid_tokens_file",
                      "'" + path + "' line " + std::to_string(line) + ": " + std::move(why));
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(k_digits[bytes[i] >> 4]);
    out.push_back(k_digits[bytes[i] & 0xf]);
  }
  return out;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

result<std::string> random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return make_failure(failure_kind::internal, "random_failed",
                        "OpenSSL could not produce random bytes");
  }
  return out;
}

// Replaces the file's content with `text`: a new file beside it (mode 0600), synced, renamed.
result<bool> write_tokens_file(const std::string& path, const std::string& text) {
  std::string partial = path + ".partial";
  int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_failure(failure_kind::unavailable, "tokens_file_unwritable",
                        "cannot write '" + partial + "': " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  bool ok = done == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return make_failure(failure_kind::unavailable, "tokens_file_unwritable",
                        "cannot write '" + path + "': " + std::strerror(errno));
  }
  return true;
}

result<std::string> read_text(const std::string& path, bool missing_ok) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (missing_ok) return std::string();
    return make_failure(failure_kind::invalid, "invalid_tokens_file",
                        "'" + path + "' does not exist (create a token with `ordo token create`)");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in) {
    return make_failure(failure_kind::invalid, "invalid_tokens_file",
                        "'" + path + "' cannot be read");
  }
  return s.str();
}

}  // namespace

std::string sha256_hex(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr);
  return hex(digest, len);
}

bool looks_like_api_token(std::string_view token) {
  return token.rfind(k_api_token_prefix, 0) == 0;
}

const api_token_entry* api_token_set::find(std::string_view token) const {
  auto it = by_hash.find(sha256_hex(token));
  return it == by_hash.end() ? nullptr : &entries[it->second];
}

std::string api_token_line(const api_token_entry& e) {
  json::object o;
  o["id"] = e.id;
  o["sha256"] = e.sha256_hex;
  std::string scopes;
  for (const scope& s : e.scopes)
    scopes += (scopes.empty() ? "" : " ") + s.to_string();
  o["scopes"] = scopes;
  o["name"] = e.name;
  o["created"] = e.created;
  o["expires"] =
      e.expires_ms ? json::value(format_rfc3339_ms(*e.expires_ms)) : json::value(nullptr);
  return json::serialize(o);
}

result<api_token_set> parse_api_tokens(std::string_view text, const std::string& path) {
  api_token_set set;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return bad_line(path, line_no, "is not a JSON object");
    const json::object& o = v.as_object();
    auto text_of = [&](std::string_view key) -> std::optional<std::string> {
      auto* f = o.if_contains(key);
      if (!f || !f->is_string()) return std::nullopt;
      return std::string(f->as_string());
    };
    api_token_entry e;
    auto id = text_of("id");
    auto hash = text_of("sha256");
    auto scopes = text_of("scopes");
    if (!id || id->empty()) return bad_line(path, line_no, "has no id");
    if (!hash || hash->size() != k_sha256_hex_digits || !is_hex(*hash)) {
      return bad_line(path, line_no, "has no sha256 of 64 lowercase hex digits");
    }
    if (!scopes) return bad_line(path, line_no, "has no scopes");
    auto parsed = parse_scopes(*scopes, true);
    if (!parsed) return bad_line(path, line_no, parsed.error().message);
    if (parsed->empty()) return bad_line(path, line_no, "grants no scope");
    e.id = std::move(*id);
    e.sha256_hex = std::move(*hash);
    e.scopes = std::move(*parsed);
    e.name = text_of("name").value_or("");
    e.created = text_of("created").value_or("");
    if (auto* exp = o.if_contains("expires"); exp && !exp->is_null()) {
      if (!exp->is_string()) return bad_line(path, line_no, "has an expires that is not a date");
      auto ms = parse_rfc3339_ms(exp->as_string());
      if (!ms) return bad_line(path, line_no, "expires: " + ms.error().message);
      e.expires_ms = *ms;
    }
    if (set.by_hash.count(e.sha256_hex)) return bad_line(path, line_no, "repeats a token's hash");
    set.by_hash.emplace(e.sha256_hex, set.entries.size());
    set.entries.push_back(std::move(e));
  }
  return set;
}

result<api_token_set> load_api_tokens(const std::string& path, bool missing_ok) {
  auto text = read_text(path, missing_ok);
  if (!text) return std::move(text).error();
  return parse_api_tokens(*text, path);
}

result<minted_token> create_api_token(const std::string& path, const std::string& scopes,
                                      std::optional<std::chrono::milliseconds> lifetime,
                                      const std::string& name, std::int64_t now_ms) {
  auto parsed = parse_scopes(scopes, true);
  if (!parsed) return std::move(parsed).error();
  if (parsed->empty()) {
    return make_failure(failure_kind::invalid, "invalid_scope", "a token needs at least one scope");
  }
  auto text = read_text(path, true);
  if (!text) return std::move(text).error();
  auto existing = parse_api_tokens(*text, path);
  if (!existing) return std::move(existing).error();
  auto id_bytes = random_bytes(k_id_bytes);
  auto secret = random_bytes(k_secret_bytes);
  if (!id_bytes) return std::move(id_bytes).error();
  if (!secret) return std::move(secret).error();
  minted_token m;
  m.entry.id = hex(reinterpret_cast<const unsigned char*>(id_bytes->data()), id_bytes->size());
  m.token = std::string(k_api_token_prefix) + m.entry.id + "_" + base64url_encode(*secret);
  m.entry.sha256_hex = sha256_hex(m.token);
  m.entry.scopes = std::move(*parsed);
  m.entry.name = name;
  m.entry.created = format_rfc3339_ms(now_ms);
  if (lifetime) m.entry.expires_ms = now_ms + lifetime->count();
  std::string out = *text;
  if (!out.empty() && out.back() != '\n') out.push_back('\n');
  out += api_token_line(m.entry) + "\n";
  auto written = write_tokens_file(path, out);
  if (!written) return std::move(written).error();
  return m;
}

result<api_token_entry> revoke_api_token(const std::string& path, const std::string& id) {
  auto text = read_text(path, false);
  if (!text) return std::move(text).error();
  auto set = parse_api_tokens(*text, path);
  if (!set) return std::move(set).error();
  std::optional<api_token_entry> removed;
  // Keep every other line as it is (comments included); drop the one whose id matches.
  std::string out;
  std::size_t start = 0;
  while (start < text->size()) {
    std::size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    start = end + 1;
    auto one = parse_api_tokens(line, path);
    if (one && one->entries.size() == 1 && one->entries[0].id == id) {
      removed = one->entries[0];
      continue;
    }
    out += line + "\n";
  }
  if (!removed) {
    return make_failure(failure_kind::not_found, "token_not_found",
                        "no token with id '" + id + "' in '" + path + "'");
  }
  auto written = write_tokens_file(path, out);
  if (!written) return std::move(written).error();
  return *removed;
}

}  // namespace ordo::auth
