#include "client/client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>

namespace ordo::client {

namespace json = boost::json;

namespace {

constexpr std::string_view k_json_media_type = "application/json";
// How much longer than a plain request a long-poll may take.
constexpr std::chrono::milliseconds k_long_poll_allowance{60'000};

failure_kind kind_of_status(int status) {
  switch (status) {
    case 400:
      return failure_kind::invalid;
    case 401:
      return failure_kind::unauthenticated;
    case 403:
      return failure_kind::forbidden;
    case 404:
      return failure_kind::not_found;
    case 409:
      return failure_kind::conflict;
    case 410:
      return failure_kind::gone;
    case 412:
      return failure_kind::precondition_failed;
    case 413:
      return failure_kind::too_large;
    case 507:
      return failure_kind::insufficient_storage;
    default:
      if (status == 429 || status == 503) return failure_kind::unavailable;
      if (status >= 500) return failure_kind::internal;
      return failure_kind::invalid;
  }
}

}  // namespace

bool is_json_content_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view media = content_type.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  std::string lower(media);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == k_json_media_type || (lower.size() > 5 && lower.ends_with("+json"));
}

namespace {

std::optional<std::int64_t> parse_int(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || p != text->data() + text->size()) return std::nullopt;
  return v;
}

stream_info info_from(const http_response& r) {
  stream_info i;
  i.content_type = r.header("Content-Type").value_or("");
  i.next_offset = r.header("Stream-Next-Offset").value_or("");
  i.closed = r.header("Stream-Closed") == "true";
  i.ttl_seconds = parse_int(r.header("Stream-TTL"));
  i.expires_at = r.header("Stream-Expires-At");
  return i;
}

char hex_digit(int v) {
  return "0123456789ABCDEF"[v & 15];
}

}  // namespace

std::chrono::milliseconds retry_policy::delay(int attempt, std::mt19937_64& rng) const {
  auto cap = max_delay.count();
  auto base = initial_delay.count();
  for (int i = 0; i < attempt && base < cap; ++i)
    base *= 2;
  base = std::min<std::int64_t>(base, cap);
  std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(base, 0));
  return std::chrono::milliseconds(jitter(rng));
}

std::chrono::milliseconds retry_policy::wait_before(int attempt, const failure& f,
                                                    std::mt19937_64& rng) const {
  auto wait = delay(attempt, rng);
  for (const auto& [k, v] : f.details) {
    if (k != "retry_after") continue;
    std::int64_t seconds = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
    if (ec == std::errc() && p == v.data() + v.size() && seconds > 0) {
      wait = std::max<std::chrono::milliseconds>(
          wait, std::min<std::chrono::seconds>(std::chrono::seconds(seconds), k_max_retry_after));
    }
  }
  return wait;
}

bool retry_policy::exhausted(int attempts, std::chrono::steady_clock::duration elapsed) const {
  return (max_attempts > 0 && attempts >= max_attempts) ||
         (max_elapsed.count() > 0 && elapsed >= max_elapsed);
}

bool is_retryable(const failure& f) {
  if (f.code == k_cancelled || f.code == k_tls_verify_failed) return false;
  return f.kind == failure_kind::unavailable || f.kind == failure_kind::internal;
}

failure failure_from_response(const http_response& r) {
  failure f = make_failure(kind_of_status(r.status), "http_" + std::to_string(r.status),
                           "the server answered " + std::to_string(r.status));
  if (r.status == 401) {
    // A HEAD answer has no body to say why: say what 401 means.
    f.code = "unauthenticated";
    f.message = "the server requires a valid bearer token";
  }
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (auto* e = v.as_object().if_contains("error"); e && e->is_object()) {
      if (auto* c = e->as_object().if_contains("code"); c && c->is_string()) {
        f.code = std::string(c->as_string());
      }
      if (auto* m = e->as_object().if_contains("message"); m && m->is_string()) {
        f.message = std::string(m->as_string());
      }
    }
  } else if (!r.body.empty() && r.body.size() < 512) {
    f.message += ": " + r.body;
  }
  if (auto retry_after = r.header("Retry-After")) f.with("retry_after", *retry_after);
  return f;
}

result<std::vector<std::string>> split_json_array(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_array()) {
    return make_failure(failure_kind::internal, "invalid_response",
                        "a JSON stream's body is not a JSON array");
  }
  std::vector<std::string> out;
  out.reserve(v.as_array().size());
  for (const auto& element : v.as_array())
    out.push_back(json::serialize(element));
  return out;
}

std::string stream_client::stream_target(const std::string& path) {
  std::string out = "/v1/stream/";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex_digit(c >> 4);
      out += hex_digit(c);
    }
  }
  return out;
}

stream_client::stream_client(client_options options, server_address server)
    : options_(std::move(options)),
      server_(std::move(server)),
      connection_(std::make_unique<http_connection>(server_, options_.tls)) {}

stream_client::~stream_client() = default;

result<std::unique_ptr<stream_client>> stream_client::connect(client_options options) {
  auto server = parse_server_url(options.url);
  if (!server) return std::move(server).error();
  return std::unique_ptr<stream_client>(new stream_client(std::move(options), std::move(*server)));
}

void stream_client::cancel() {
  connection_->cancel();
}

void stream_client::add_default_headers(http_request& request) const {
  for (const auto& h : options_.headers)
    request.headers.push_back(h);
}

result<http_response> stream_client::send(http_request request,
                                          std::optional<std::chrono::milliseconds> timeout) {
  add_default_headers(request);
  return connection_->send(request, timeout.value_or(options_.request_timeout));
}

result<http_response> stream_client::stream(
    http_request request, const std::function<bool(const http_response&)>& on_head,
    const std::function<bool(std::string_view)>& on_body, std::chrono::milliseconds idle_timeout) {
  add_default_headers(request);
  return connection_->stream(request, on_head, on_body, idle_timeout);
}

result<stream_info> stream_client::create(const std::string& path, const create_options& o) {
  http_request r;
  r.method = "PUT";
  r.target = stream_target(path);
  r.headers.emplace_back("Content-Type", o.content_type);
  if (o.ttl_seconds) r.headers.emplace_back("Stream-TTL", std::to_string(*o.ttl_seconds));
  if (o.expires_at) r.headers.emplace_back("Stream-Expires-At", *o.expires_at);
  if (o.closed) r.headers.emplace_back("Stream-Closed", "true");
  if (o.initial_data) r.body = *o.initial_data;
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  if (res->status != 201 && res->status != 200) return failure_from_response(*res);
  return info_from(*res);
}

result<append_ack> stream_client::append(const std::string& path, std::string data,
                                         const append_options& o) {
  std::string content_type;
  if (o.content_type) {
    content_type = *o.content_type;
  } else {
    auto info = head(path);
    if (!info) return std::move(info).error();
    content_type = info->content_type;
  }
  http_request r;
  r.method = "POST";
  r.target = stream_target(path);
  r.idempotent = false;  // a plain append sent twice is stored twice (a producer's is not)
  r.headers.emplace_back("Content-Type", content_type);
  if (o.stream_seq) r.headers.emplace_back("Stream-Seq", *o.stream_seq);
  if (o.close) r.headers.emplace_back("Stream-Closed", "true");
  r.body = std::move(data);
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  if (res->status != 204 && res->status != 200) return failure_from_response(*res);
  return append_ack{res->header("Stream-Next-Offset").value_or(""),
                    res->header("Stream-Closed") == "true"};
}

result<read_page> stream_client::read_page_from(const http_response& r, bool allow_no_content) {
  if (r.status == 204 && allow_no_content) {
    read_page p;
    p.next_offset = r.header("Stream-Next-Offset").value_or("");
    p.cursor = r.header("Stream-Cursor");
    p.up_to_date = true;
    p.closed = r.header("Stream-Closed") == "true";
    p.timed_out = true;
    return p;
  }
  if (r.status != 200) return failure_from_response(r);
  read_page p;
  p.next_offset = r.header("Stream-Next-Offset").value_or("");
  p.cursor = r.header("Stream-Cursor");
  p.up_to_date = r.header("Stream-Up-To-Date") == "true";
  p.closed = r.header("Stream-Closed") == "true";
  p.json = is_json_content_type(r.header("Content-Type").value_or(""));
  if (p.json) {
    auto values = split_json_array(r.body);
    if (!values) return std::move(values).error();
    p.messages = std::move(*values);
  } else if (!r.body.empty()) {
    p.messages.push_back(r.body);
  }
  return p;
}

result<read_page> stream_client::read(const std::string& path, const std::string& offset) {
  return read_target(stream_target(path), offset);
}

result<read_page> stream_client::long_poll(const std::string& path, const std::string& offset,
                                           const std::optional<std::string>& cursor) {
  return long_poll_target(stream_target(path), offset, cursor);
}

result<read_page> stream_client::read_target(const std::string& target, const std::string& offset) {
  http_request r;
  r.target = target + "?offset=" + offset;
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  return read_page_from(*res, false);
}

result<read_page> stream_client::long_poll_target(const std::string& target,
                                                  const std::string& offset,
                                                  const std::optional<std::string>& cursor) {
  http_request r;
  r.target = target + "?offset=" + offset + "&live=long-poll";
  if (cursor) r.target += "&cursor=" + *cursor;
  // The server holds a long-poll up to its own timeout (30 s by default) before answering.
  auto res = send(std::move(r), options_.request_timeout + k_long_poll_allowance);
  if (!res) return std::move(res).error();
  return read_page_from(*res, true);
}

result<stream_info> stream_client::head(const std::string& path) {
  http_request r;
  r.method = "HEAD";
  r.target = stream_target(path);
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  if (res->status == 404) {
    return make_failure(failure_kind::not_found, "stream_not_found",
                        "no stream exists at '" + path + "'");
  }
  if (res->status != 200) return failure_from_response(*res);
  return info_from(*res);
}

result<append_ack> stream_client::close(const std::string& path) {
  http_request r;
  r.method = "POST";
  r.target = stream_target(path);
  r.headers.emplace_back("Stream-Closed", "true");
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  if (res->status != 204 && res->status != 200) return failure_from_response(*res);
  return append_ack{res->header("Stream-Next-Offset").value_or(""), true};
}

status stream_client::remove(const std::string& path) {
  http_request r;
  r.method = "DELETE";
  r.target = stream_target(path);
  auto res = send(std::move(r));
  if (!res) return std::move(res).error();
  if (res->status != 204 && res->status != 200) return failure_from_response(*res);
  return ok_v;
}

}  // namespace ordo::client
