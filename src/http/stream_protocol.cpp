#include "http/stream_protocol.hpp"

#include "base/utf8.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "base/rfc3339.hpp"
#include "base/strict_integer.hpp"
#include "streams/content_type.hpp"
#include "streams/json_batch.hpp"

namespace ordo::http {

namespace {

constexpr std::string_view k_default_content_type = "application/octet-stream";
// Ten years: longer TTLs are almost certainly a unit mistake.
constexpr std::uint64_t k_max_ttl_seconds = 10ull * 365 * 24 * 3600;

failure invalid(std::string code, std::string message) {
  return make_failure(failure_kind::invalid, std::move(code), std::move(message));
}

// 400 `code` for a header whose value does not parse: "{header} '{value}' {expected}".
failure invalid_header_value(std::string code, std::string_view header, std::string_view value,
                             std::string_view expected) {
  return invalid(std::move(code),
                 std::string(header) + " '" + std::string(value) + "' " + std::string(expected));
}

constexpr std::string_view k_expected_media_type =
    "is not a valid media type (expected type/subtype)";
constexpr std::string_view k_expected_safe_integer =
    "must be a whole number from 0 to 2^53-1 without leading zeros";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Turns a request body into a stored row for the stream's mode. JSON appends are validated and
// flattened one level; an empty array is refused on POST (a no-op that is likely a bug) and
// allowed on PUT (an empty stream).
result<std::optional<std::string>> body_to_row(std::string body, bool json, bool is_create) {
  if (!json) {
    if (body.empty()) return std::optional<std::string>();
    return std::optional<std::string>(std::move(body));
  }
  if (body.empty()) return std::optional<std::string>();
  auto values = parse_json_append(body, true);
  if (!values) return std::move(values).error();
  if (values->count == 0) {
    if (is_create) return std::optional<std::string>();
    return invalid("empty_json_array",
                   "an append of an empty JSON array adds nothing; send at least one value");
  }
  return std::optional<std::string>(std::move(values->joined));
}

result<std::optional<std::string>> validated_content_type(const std::optional<std::string>& v) {
  if (!v) return std::optional<std::string>();
  std::string_view t = *v;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
    t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
    t.remove_suffix(1);
  if (!normalized_media_type(t)) {
    return invalid_header_value("invalid_content_type", "Content-Type", *v, k_expected_media_type);
  }
  return std::optional<std::string>(std::string(t));
}

}  // namespace

status validate_stream_path(std::string_view path, std::string_view reserved_prefix) {
  if (path.empty()) return invalid("invalid_stream_path", "the stream path is empty");
  if (path.size() > k_max_stream_path_bytes) {
    return invalid("invalid_stream_path", "the stream path is longer than " +
                                              std::to_string(k_max_stream_path_bytes) + " bytes");
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return invalid("invalid_stream_path", "the stream path '" + std::string(path) +
                                                "' has an empty, '.' or '..' segment");
    }
    // The engine's managed-stream prefix ("__"): the protocol's subscription API lives under
    // __ds, and the streams ordo manages (session events, the change feed) under __ordo.
    if (start == 0 && !reserved_prefix.empty() && segment.starts_with(reserved_prefix)) {
      return invalid("invalid_stream_path",
                     "stream paths whose first segment starts with '" +
                         std::string(reserved_prefix) +
                         "' are reserved (for the protocol's subscriptions and the streams ordo "
                         "manages)");
    }
    start = end + 1;
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) {
      return invalid("invalid_stream_path", "the stream path contains a control character");
    }
  }
  // Paths are listed in JSON (/v1/streams) and quoted in errors that every client may read.
  if (!is_valid_utf8(path)) {
    return invalid("invalid_stream_path",
                   "the stream path is not valid UTF-8 once percent-decoded (e.g. %ff, an "
                   "overlong %c0%ae or a surrogate %ed%a0%80); encode names as UTF-8");
  }
  return ok_v;
}

bool stream_closed_flag(const std::optional<std::string>& value) {
  return value && iequals(*value, "true");
}

result<create_request> parse_create(const protocol_headers& h, std::string body,
                                    const stream_engine& engine) {
  create_request req;
  auto ct = validated_content_type(h.content_type);
  if (!ct) return std::move(ct).error();
  if (*ct) req.content_type = **ct;

  if (h.stream_ttl && h.stream_expires_at) {
    return invalid("conflicting_expiry", "send either Stream-TTL or Stream-Expires-At, not both");
  }
  if (h.stream_ttl) {
    auto ttl = parse_strict_uint(*h.stream_ttl, k_max_ttl_seconds);
    if (!ttl) {
      return invalid_header_value("invalid_ttl", "Stream-TTL", *h.stream_ttl,
                                  "must be a whole number of seconds (no sign, leading zeros or "
                                  "decimals), at most " +
                                      std::to_string(k_max_ttl_seconds));
    }
    req.ttl_seconds = static_cast<std::int64_t>(*ttl);
  }
  if (h.stream_expires_at) {
    auto at = parse_rfc3339_ms(*h.stream_expires_at);
    if (!at) {
      return invalid_header_value("invalid_expires_at", "Stream-Expires-At", *h.stream_expires_at,
                                  "is not an RFC 3339 timestamp such as 2026-01-01T00:00:00Z");
    }
    req.expires_at_ms = *at;
  }
  req.closed = stream_closed_flag(h.stream_closed);

  if (!h.forked_from && (h.fork_offset || h.fork_sub_offset)) {
    return invalid("missing_fork_source",
                   "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From");
  }
  std::string effective_type = req.content_type;
  if (h.forked_from) {
    // The path component of the source's URL, percent-decoded like a request's path (§4.2):
    // the Location a create answered names its stream here too.
    auto url = boost::urls::parse_origin_form(*h.forked_from);
    if (!url || url->has_query() || url->has_fragment()) {
      return invalid("invalid_fork_source",
                     "Stream-Forked-From must be the URL path of a stream, such as " +
                         std::string(k_stream_route_prefix) + "name (percent-encoded)");
    }
    std::string decoded = url->path();
    std::string_view source = decoded;
    if (source.substr(0, k_stream_route_prefix.size()) != k_stream_route_prefix) {
      return invalid("invalid_fork_source", "Stream-Forked-From must be a stream path such as " +
                                                std::string(k_stream_route_prefix) + "name");
    }
    std::string source_path(source.substr(k_stream_route_prefix.size()));
    if (auto s = validate_stream_path(source_path, engine.options().managed_stream_prefix); !s)
      return std::move(s).error();
    if (h.fork_offset) {
      auto offset = parse_offset_param(*h.fork_offset);
      if (!offset || offset->kind == offset_request_kind::now) {
        return invalid_header_value("invalid_fork_offset", "Stream-Fork-Offset", *h.fork_offset,
                                    "must be an offset returned by this server");
      }
      req.fork_offset = offset->kind == offset_request_kind::start ? stream_offset{} : offset->at;
    }
    if (h.fork_sub_offset) {
      auto sub = parse_strict_uint(*h.fork_sub_offset, k_max_safe_integer);
      if (!sub) {
        return invalid_header_value("invalid_fork_sub_offset", "Stream-Fork-Sub-Offset",
                                    *h.fork_sub_offset,
                                    "must be a non-negative whole number without leading zeros");
      }
      if (*sub > 0 && !req.fork_offset) {
        return invalid("invalid_fork_sub_offset",
                       "Stream-Fork-Sub-Offset needs an explicit Stream-Fork-Offset");
      }
      req.fork_sub_offset = *sub;
    }
    if (effective_type.empty()) {
      if (auto src = engine.find(source_path)) effective_type = src->config().content_type;
    }
    req.fork_source_path = std::move(source_path);
  }
  if (effective_type.empty()) effective_type = k_default_content_type;
  bool json = is_json_media_type(normalized_media_type(effective_type).value_or(""));
  auto row = body_to_row(std::move(body), json, true);
  if (!row) return std::move(row).error();
  req.initial_data = std::move(*row);
  return req;
}

result<append_request> parse_append(const protocol_headers& h, std::string body,
                                    const stream_config& stream) {
  append_request req;
  req.close = stream_closed_flag(h.stream_closed);
  if (body.empty() && !req.close) {
    return invalid("empty_body",
                   "an append needs a body; to close the stream without data send "
                   "Stream-Closed: true");
  }
  int producer_headers =
      (h.producer_id ? 1 : 0) + (h.producer_epoch ? 1 : 0) + (h.producer_seq ? 1 : 0);
  if (producer_headers != 0 && producer_headers != 3) {
    return invalid("incomplete_producer_headers",
                   "Producer-Id, Producer-Epoch and Producer-Seq must be sent together");
  }
  if (producer_headers == 3) {
    if (h.producer_id->empty()) return invalid("invalid_producer_id", "Producer-Id is empty");
    auto epoch = parse_strict_uint(*h.producer_epoch, k_max_safe_integer);
    auto seq = parse_strict_uint(*h.producer_seq, k_max_safe_integer);
    if (!epoch) {
      return invalid_header_value("invalid_producer_epoch", "Producer-Epoch", *h.producer_epoch,
                                  k_expected_safe_integer);
    }
    if (!seq) {
      return invalid_header_value("invalid_producer_seq", "Producer-Seq", *h.producer_seq,
                                  k_expected_safe_integer);
    }
    req.producer = producer_claim{*h.producer_id, *epoch, *seq};
  }
  if (h.stream_seq) {
    if (h.stream_seq->empty()) return invalid("invalid_stream_seq", "Stream-Seq is empty");
    req.stream_seq = *h.stream_seq;
  }
  if (body.empty()) return req;  // close-only: Content-Type is ignored (section 5.2)

  if (!h.content_type) {
    return invalid("missing_content_type", "an append with a body needs a Content-Type header");
  }
  auto media = normalized_media_type(*h.content_type);
  if (!media) {
    return invalid_header_value("invalid_content_type", "Content-Type", *h.content_type,
                                k_expected_media_type);
  }
  req.media_type = *media;
  // Only a body in the stream's own type is parsed; a mismatch is a 409 from the writer.
  bool json = req.media_type == stream.media_type && stream.payload == payload_mode::json;
  auto row = body_to_row(std::move(body), json, false);
  if (!row) return std::move(row).error();
  req.data = std::move(*row);
  return req;
}

result<read_query> parse_read_query(const std::vector<query_param>& params) {
  read_query q;
  int offsets = 0;
  for (const query_param& p : params) {
    if (p.key == "offset") {
      if (++offsets > 1) return invalid("invalid_offset", "send the offset parameter once");
      auto o = parse_offset_param(p.value);
      if (!o) return std::move(o).error();
      q.offset = *o;
    } else if (p.key == "live") {
      if (p.value == "long-poll") {
        q.live = live_mode::long_poll;
      } else if (p.value == "sse") {
        q.live = live_mode::sse;
      } else {
        return invalid("invalid_live_mode",
                       "live must be 'long-poll' or 'sse' (omit it for a catch-up read)");
      }
    } else if (p.key == "cursor") {
      q.cursor = p.value;
    }
  }
  if (q.live != live_mode::none && !q.offset) {
    return invalid("missing_offset",
                   "live reads need an offset: use offset=-1 for the start or offset=now");
  }
  return q;
}

bool if_none_match_matches(std::string_view header, std::string_view etag) {
  std::size_t start = 0;
  while (start < header.size()) {
    std::size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view candidate = header.substr(start, end - start);
    while (!candidate.empty() && candidate.front() == ' ')
      candidate.remove_prefix(1);
    while (!candidate.empty() && candidate.back() == ' ')
      candidate.remove_suffix(1);
    if (candidate.substr(0, 2) == "W/") candidate.remove_prefix(2);
    if (candidate == "*" || candidate == etag) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace ordo::http
