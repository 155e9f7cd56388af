#include "http/stream_protocol.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <future>
#include <random>

namespace ordo::http {
namespace {

namespace fs = std::filesystem;

// The failure a refused result carries, for EXPECT_* on kind and code.
template <class T>
failure failure_of(const result<T>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? failure{} : r.error();
}

void expect_invalid(const failure& f, std::string_view code) {
  EXPECT_EQ(f.kind, failure_kind::invalid) << f.code;
  EXPECT_EQ(f.code, code) << f.message;
  EXPECT_FALSE(f.message.empty());
}

const std::string k_token = "00000000000000ab_0000000000000005";

// ---- validate_stream_path --------------------------------------------------------------------

TEST(stream_protocol, validate_stream_path_accepts_names_and_nested_segments) {
  for (std::string_view p : {"a", "orders", "team/orders/2026", "a.b", "a..b", "x/__y", "_a",
                             "caf\xc3\xa9", "with space"}) {
    EXPECT_TRUE(validate_stream_path(p, "__").ok()) << p;
  }
}

TEST(stream_protocol, validate_stream_path_accepts_exactly_the_maximum_length) {
  EXPECT_TRUE(validate_stream_path(std::string(k_max_stream_path_bytes, 'a'), "__").ok());
}

TEST(stream_protocol, validate_stream_path_refuses_empty_and_too_long_paths) {
  expect_invalid(failure_of(validate_stream_path("", "__")), "invalid_stream_path");
  expect_invalid(
      failure_of(validate_stream_path(std::string(k_max_stream_path_bytes + 1, 'a'), "__")),
      "invalid_stream_path");
}

TEST(stream_protocol, validate_stream_path_refuses_empty_dot_and_dot_dot_segments) {
  for (std::string_view p : {"/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a/..", "./a"}) {
    expect_invalid(failure_of(validate_stream_path(p, "__")), "invalid_stream_path");
  }
}

TEST(stream_protocol, validate_stream_path_reserves_a_first_segment_starting_with_two_underscores) {
  for (std::string_view p : {"__ds", "__ordo/changes", "__x", "__"}) {
    expect_invalid(failure_of(validate_stream_path(p, "__")), "invalid_stream_path");
  }
}

TEST(stream_protocol, validate_stream_path_reserves_the_engines_prefix_whatever_it_is) {
  // The prefix comes from the engine's managed_stream_prefix, not a constant of this file.
  EXPECT_TRUE(validate_stream_path("__chat", "sys.").ok());
  EXPECT_TRUE(validate_stream_path("a/sys.b", "sys.").ok());
  auto f = failure_of(validate_stream_path("sys.events", "sys."));
  expect_invalid(f, "invalid_stream_path");
  EXPECT_NE(f.message.find("'sys.'"), std::string::npos) << f.message;
}

TEST(stream_protocol, validate_stream_path_refuses_control_characters) {
  for (std::string p : {std::string("a\nb"), std::string("a\tb"), std::string("a\x7f"),
                        std::string("a\0b", 3), std::string("\x1f")}) {
    expect_invalid(failure_of(validate_stream_path(p, "__")), "invalid_stream_path");
  }
}

TEST(stream_protocol, validate_stream_path_refuses_invalid_utf8) {
  for (std::string_view p : {"a\xff", "\xc0\xae", "\xed\xa0\x80", "\xc3"}) {
    expect_invalid(failure_of(validate_stream_path(p, "__")), "invalid_stream_path");
  }
}

// ---- stream_closed_flag ----------------------------------------------------------------------

TEST(stream_protocol, stream_closed_flag_is_true_only_for_true_in_any_case) {
  EXPECT_TRUE(stream_closed_flag(std::string("true")));
  EXPECT_TRUE(stream_closed_flag(std::string("TRUE")));
  EXPECT_TRUE(stream_closed_flag(std::string("True")));
  EXPECT_FALSE(stream_closed_flag(std::nullopt));
  EXPECT_FALSE(stream_closed_flag(std::string("false")));
  EXPECT_FALSE(stream_closed_flag(std::string("")));
  EXPECT_FALSE(stream_closed_flag(std::string("1")));
  EXPECT_FALSE(stream_closed_flag(std::string("yes")));
  EXPECT_FALSE(stream_closed_flag(std::string("truex")));
}

// ---- parse_create ----------------------------------------------------------------------------

class parse_create_test : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::critical);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ordo-protocol-test-" + std::to_string(rd()));
    fs::create_directories(dir_);
    stream_engine_options o;
    o.database.path = (dir_ / "ordo.db").string();
    auto e = stream_engine::open(o);
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
  }
  void TearDown() override {
    engine_.reset();
    fs::remove_all(dir_);
  }

  void create_source(const std::string& path, const std::string& content_type) {
    create_request r;
    r.path = path;
    r.content_type = content_type;
    r.now_ms = 1;
    std::promise<create_result> p;
    engine_->create(std::move(r), [&](create_result x) { p.set_value(std::move(x)); });
    ASSERT_EQ(p.get_future().get().status, create_status::created);
  }

  result<create_request> parse(const protocol_headers& h, std::string body = "") {
    return parse_create(h, std::move(body), *engine_);
  }

  // Each of `values`, sent as the header `field` on top of `base`, is refused with 400 `code`.
  void expect_each_refused(std::optional<std::string> protocol_headers::*field,
                           std::initializer_list<std::string> values, std::string_view code,
                           const protocol_headers& base = {}) {
    for (const std::string& v : values) {
      SCOPED_TRACE("'" + v + "'");
      protocol_headers h = base;
      h.*field = v;
      expect_invalid(failure_of(parse(h)), code);
    }
  }

  fs::path dir_;
  std::unique_ptr<stream_engine> engine_;
};

TEST_F(parse_create_test, no_headers_and_no_body_is_a_default_empty_open_stream) {
  auto r = parse({});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content_type, "");
  EXPECT_FALSE(r->ttl_seconds);
  EXPECT_FALSE(r->expires_at_ms);
  EXPECT_FALSE(r->closed);
  EXPECT_FALSE(r->initial_data);
  EXPECT_FALSE(r->fork_source_path);
}

TEST_F(parse_create_test, the_content_type_is_kept_without_surrounding_whitespace) {
  protocol_headers h;
  h.content_type = "  text/plain; charset=utf-8\t";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content_type, "text/plain; charset=utf-8");
}

TEST_F(parse_create_test, a_body_of_a_byte_stream_is_the_first_message_as_sent) {
  auto r = parse({}, "[not json");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->initial_data);
  EXPECT_EQ(*r->initial_data, "[not json");
}

TEST_F(parse_create_test, a_json_body_is_validated_and_flattened_one_level) {
  protocol_headers h;
  h.content_type = "application/json";
  auto r = parse(h, "[ {\"a\": 1}, 2 ]");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->initial_data);
  EXPECT_EQ(*r->initial_data, "{\"a\":1},2");
}

TEST_F(parse_create_test, an_empty_json_array_creates_an_empty_stream) {
  protocol_headers h;
  h.content_type = "Application/JSON; charset=utf-8";
  auto r = parse(h, "[]");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->initial_data);
}

TEST_F(parse_create_test, ttl_expiry_and_closed_are_parsed) {
  protocol_headers h;
  h.stream_ttl = "3600";
  h.stream_closed = "true";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->ttl_seconds, 3600);
  EXPECT_TRUE(r->closed);

  protocol_headers e;
  e.stream_expires_at = "2026-01-01T00:00:00Z";
  auto at = parse(e);
  ASSERT_TRUE(at) << at.error().message;
  EXPECT_EQ(at->expires_at_ms, 1767225600000);
}

TEST_F(parse_create_test, a_ttl_from_zero_to_ten_years_is_accepted) {
  for (std::string v : {"0", "1", "315360000"}) {
    protocol_headers h;
    h.stream_ttl = v;
    auto r = parse(h);
    ASSERT_TRUE(r) << v;
    EXPECT_EQ(r->ttl_seconds, std::stoll(v));
  }
}

TEST_F(parse_create_test, an_expiry_with_a_utc_offset_is_accepted) {
  protocol_headers h;
  h.stream_expires_at = "2026-01-01T01:00:00+01:00";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->expires_at_ms, 1767225600000);
}

TEST_F(parse_create_test, a_fork_names_its_source_offset_and_sub_offset) {
  protocol_headers h;
  h.content_type = "text/plain";
  h.forked_from = "/v1/stream/team/src";
  h.fork_offset = k_token;
  h.fork_sub_offset = "3";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fork_source_path, "team/src");
  ASSERT_TRUE(r->fork_offset);
  EXPECT_EQ(r->fork_offset->prefix, 0xabu);
  EXPECT_EQ(r->fork_offset->position, stream_position{5});
  EXPECT_EQ(r->fork_sub_offset, 3u);
}

TEST_F(parse_create_test, the_fork_source_is_percent_decoded_like_a_request_path) {
  protocol_headers h;
  h.forked_from = "/v1/stream/caf%C3%A9/a%20b";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fork_source_path, "caf\xc3\xa9/a b");
}

TEST_F(parse_create_test, the_start_sentinel_and_the_zero_offset_fork_before_any_data) {
  for (std::string v : {std::string("-1"), std::string(k_zero_offset)}) {
    protocol_headers h;
    h.forked_from = "/v1/stream/src";
    h.fork_offset = v;
    auto r = parse(h);
    ASSERT_TRUE(r) << v;
    ASSERT_TRUE(r->fork_offset);
    EXPECT_TRUE(r->fork_offset->is_zero());
  }
}

TEST_F(parse_create_test, a_zero_sub_offset_needs_no_fork_offset) {
  protocol_headers h;
  h.forked_from = "/v1/stream/src";
  h.fork_sub_offset = "0";
  auto r = parse(h);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->fork_offset);
  EXPECT_EQ(r->fork_sub_offset, 0u);
}

TEST_F(parse_create_test, a_fork_without_content_type_validates_its_body_in_the_sources_type) {
  create_source("json-src", "application/json");
  protocol_headers h;
  h.forked_from = "/v1/stream/json-src";
  auto r = parse(h, "[1, 2]");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content_type, "");  // the engine applies the source's type
  EXPECT_EQ(r->initial_data, "1,2");

  auto bad = parse(h, "{");
  expect_invalid(failure_of(bad), "invalid_json");
}

TEST_F(parse_create_test, a_fork_of_an_unknown_source_is_left_to_the_engine) {
  protocol_headers h;
  h.forked_from = "/v1/stream/nowhere";
  auto r = parse(h, "{");  // default type: bytes, not validated
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fork_source_path, "nowhere");
  EXPECT_EQ(r->initial_data, "{");
}

// ---- parse_create: refusals ------------------------------------------------------------------

TEST_F(parse_create_test, refuses_a_malformed_content_type) {
  expect_each_refused(&protocol_headers::content_type,
                      {"", "text", "text/", "/plain", "text/plain;", "text plain"},
                      "invalid_content_type");
}

TEST_F(parse_create_test, refuses_both_ttl_and_expiry) {
  protocol_headers h;
  h.stream_ttl = "60";
  h.stream_expires_at = "2026-01-01T00:00:00Z";
  expect_invalid(failure_of(parse(h)), "conflicting_expiry");
}

TEST_F(parse_create_test, refuses_a_ttl_with_sign_leading_zeros_decimals_or_beyond_ten_years) {
  expect_each_refused(
      &protocol_headers::stream_ttl,
      {"", "-1", "+1", "01", "1.5", "1e3", "abc", " 1", "315360001", "99999999999999999999"},
      "invalid_ttl");
}

TEST_F(parse_create_test, refuses_an_expiry_that_is_not_rfc3339) {
  expect_each_refused(&protocol_headers::stream_expires_at,
                      {"", "tomorrow", "2026-01-01", "2026-13-01T00:00:00Z", "1767225600"},
                      "invalid_expires_at");
}

TEST_F(parse_create_test, refuses_fork_offsets_without_a_fork_source) {
  protocol_headers h;
  h.fork_offset = k_token;
  expect_invalid(failure_of(parse(h)), "missing_fork_source");
  protocol_headers s;
  s.fork_sub_offset = "0";
  expect_invalid(failure_of(parse(s)), "missing_fork_source");
}

TEST_F(parse_create_test, refuses_a_fork_source_that_is_not_a_stream_url_path) {
  expect_each_refused(&protocol_headers::forked_from,
                      {"", "src", "/v1/streams/src", "/v2/stream/src", "http://h/v1/stream/src",
                       "/v1/stream/src?x=1", "/v1/stream/src#f"},
                      "invalid_fork_source");
}

TEST_F(parse_create_test, refuses_a_fork_source_whose_path_is_invalid) {
  expect_each_refused(
      &protocol_headers::forked_from,
      {"/v1/stream/", "/v1/stream/a//b", "/v1/stream/__ordo/changes", "/v1/stream/a%ff"},
      "invalid_stream_path");
}

TEST_F(parse_create_test, refuses_a_fork_offset_not_issued_by_a_server) {
  protocol_headers fork;
  fork.forked_from = "/v1/stream/src";
  expect_each_refused(&protocol_headers::fork_offset,
                      {"now", "", "5", "00000000000000ab-0000000000000005", "xyz"},
                      "invalid_fork_offset", fork);
}

TEST_F(parse_create_test, refuses_a_malformed_fork_sub_offset) {
  protocol_headers fork;
  fork.forked_from = "/v1/stream/src";
  fork.fork_offset = k_token;
  expect_each_refused(&protocol_headers::fork_sub_offset,
                      {"", "-1", "01", "1.0", "x", "9007199254740992"}, "invalid_fork_sub_offset",
                      fork);
}

TEST_F(parse_create_test, refuses_a_positive_sub_offset_without_a_fork_offset) {
  protocol_headers h;
  h.forked_from = "/v1/stream/src";
  h.fork_sub_offset = "1";
  expect_invalid(failure_of(parse(h)), "invalid_fork_sub_offset");
}

TEST_F(parse_create_test, refuses_an_invalid_json_body) {
  protocol_headers h;
  h.content_type = "application/json";
  for (std::string body : {"{", "[1,]", "nul", "\"\xff\""}) {
    expect_invalid(failure_of(parse(h, body)), "invalid_json");
  }
}

// ---- parse_append ----------------------------------------------------------------------------

stream_config text_stream() {
  stream_config c;
  c.content_type = "text/plain";
  c.media_type = "text/plain";
  c.payload = payload_mode::bytes;
  return c;
}

stream_config json_stream() {
  stream_config c;
  c.content_type = "application/json";
  c.media_type = "application/json";
  c.payload = payload_mode::json;
  return c;
}

protocol_headers typed(std::string content_type) {
  protocol_headers h;
  h.content_type = std::move(content_type);
  return h;
}

TEST(stream_protocol, parse_append_takes_a_body_with_its_normalized_media_type) {
  auto r = parse_append(typed("Text/Plain; charset=utf-8"), "hello", text_stream());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->media_type, "text/plain");
  EXPECT_EQ(r->data, "hello");
  EXPECT_FALSE(r->close);
  EXPECT_FALSE(r->producer);
  EXPECT_FALSE(r->stream_seq);
}

TEST(stream_protocol, parse_append_flattens_a_json_body_for_a_json_stream) {
  auto r = parse_append(typed("application/json"), "[ {\"a\" : 1} , [2] ]", json_stream());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->data, "{\"a\":1},[2]");
}

TEST(stream_protocol, parse_append_leaves_a_body_of_another_type_to_the_writer) {
  // Not parsed: the mismatch is the writer's 409, not a 400 for the body.
  auto r = parse_append(typed("text/plain"), "{", json_stream());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->media_type, "text/plain");
  EXPECT_EQ(r->data, "{");
}

TEST(stream_protocol, parse_append_closes_with_or_without_a_body) {
  protocol_headers h;
  h.stream_closed = "true";
  auto only = parse_append(h, "", text_stream());
  ASSERT_TRUE(only) << only.error().message;
  EXPECT_TRUE(only->close);
  EXPECT_FALSE(only->data);
  EXPECT_EQ(only->media_type, "");

  h.content_type = "not a media type";  // ignored for a close-only request
  EXPECT_TRUE(parse_append(h, "", text_stream()).ok());

  h.content_type = "text/plain";
  auto with = parse_append(h, "last", text_stream());
  ASSERT_TRUE(with) << with.error().message;
  EXPECT_TRUE(with->close);
  EXPECT_EQ(with->data, "last");
}

TEST(stream_protocol, parse_append_takes_producer_headers_and_stream_seq) {
  protocol_headers h = typed("text/plain");
  h.producer_id = "writer-1";
  h.producer_epoch = "2";
  h.producer_seq = "9007199254740991";
  h.stream_seq = "0001";
  auto r = parse_append(h, "x", text_stream());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->producer);
  EXPECT_EQ(r->producer->id, "writer-1");
  EXPECT_EQ(r->producer->epoch, 2u);
  EXPECT_EQ(r->producer->seq, 9007199254740991u);
  EXPECT_EQ(r->stream_seq, "0001");
}

// ---- parse_append: refusals ------------------------------------------------------------------

TEST(stream_protocol, parse_append_refuses_an_empty_body_without_stream_closed) {
  expect_invalid(failure_of(parse_append(typed("text/plain"), "", text_stream())), "empty_body");
  protocol_headers h = typed("text/plain");
  h.stream_closed = "false";
  expect_invalid(failure_of(parse_append(h, "", text_stream())), "empty_body");
}

TEST(stream_protocol, parse_append_refuses_a_body_without_content_type) {
  expect_invalid(failure_of(parse_append({}, "x", text_stream())), "missing_content_type");
}

TEST(stream_protocol, parse_append_refuses_a_malformed_content_type) {
  for (std::string v : {"", "text", "text/", "text/plain;"}) {
    expect_invalid(failure_of(parse_append(typed(v), "x", text_stream())), "invalid_content_type");
  }
}

TEST(stream_protocol, parse_append_refuses_some_but_not_all_producer_headers) {
  for (int mask = 1; mask < 7; ++mask) {
    protocol_headers h = typed("text/plain");
    if (mask & 1) h.producer_id = "w";
    if (mask & 2) h.producer_epoch = "0";
    if (mask & 4) h.producer_seq = "0";
    expect_invalid(failure_of(parse_append(h, "x", text_stream())), "incomplete_producer_headers");
  }
}

TEST(stream_protocol, parse_append_refuses_malformed_producer_values) {
  auto producer = [](std::string id, std::string epoch, std::string seq) {
    protocol_headers h = typed("text/plain");
    h.producer_id = std::move(id);
    h.producer_epoch = std::move(epoch);
    h.producer_seq = std::move(seq);
    return parse_append(h, "x", text_stream());
  };
  expect_invalid(failure_of(producer("", "0", "0")), "invalid_producer_id");
  for (std::string bad : {"", "-1", "01", "1.0", "x", "9007199254740992"}) {
    expect_invalid(failure_of(producer("w", bad, "0")), "invalid_producer_epoch");
    expect_invalid(failure_of(producer("w", "0", bad)), "invalid_producer_seq");
  }
}

TEST(stream_protocol, parse_append_refuses_an_empty_stream_seq) {
  protocol_headers h = typed("text/plain");
  h.stream_seq = "";
  expect_invalid(failure_of(parse_append(h, "x", text_stream())), "invalid_stream_seq");
}

TEST(stream_protocol, parse_append_refuses_invalid_json_and_an_empty_array_on_a_json_stream) {
  expect_invalid(failure_of(parse_append(typed("application/json"), "{", json_stream())),
                 "invalid_json");
  expect_invalid(failure_of(parse_append(typed("application/json"), "[]", json_stream())),
                 "empty_json_array");
  expect_invalid(failure_of(parse_append(typed("application/json"), " [ ] ", json_stream())),
                 "empty_json_array");
}

// ---- parse_read_query ------------------------------------------------------------------------

query_param param(std::string key, std::string value) {
  return query_param{std::move(key), std::move(value), true};
}

TEST(stream_protocol, parse_read_query_without_parameters_is_a_catch_up_read_from_nowhere) {
  auto q = parse_read_query({});
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_FALSE(q->offset);
  EXPECT_EQ(q->live, live_mode::none);
  EXPECT_FALSE(q->cursor);
}

TEST(stream_protocol, parse_read_query_reads_the_offset_sentinels_and_tokens) {
  auto start = parse_read_query({param("offset", "-1")});
  ASSERT_TRUE(start);
  EXPECT_EQ(start->offset->kind, offset_request_kind::start);
  auto now = parse_read_query({param("offset", "now")});
  ASSERT_TRUE(now);
  EXPECT_EQ(now->offset->kind, offset_request_kind::now);
  auto zero = parse_read_query({param("offset", std::string(k_zero_offset))});
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->offset->kind, offset_request_kind::start);
  auto at = parse_read_query({param("offset", k_token)});
  ASSERT_TRUE(at);
  EXPECT_EQ(at->offset->kind, offset_request_kind::at);
  EXPECT_EQ(at->offset->at.prefix, 0xabu);
  EXPECT_EQ(at->offset->at.position, stream_position{5});
}

TEST(stream_protocol, parse_read_query_reads_live_modes_and_the_cursor) {
  auto lp =
      parse_read_query({param("offset", "now"), param("live", "long-poll"), param("cursor", "c1")});
  ASSERT_TRUE(lp) << lp.error().message;
  EXPECT_EQ(lp->live, live_mode::long_poll);
  EXPECT_EQ(lp->cursor, "c1");
  auto sse = parse_read_query({param("live", "sse"), param("offset", "-1")});
  ASSERT_TRUE(sse) << sse.error().message;
  EXPECT_EQ(sse->live, live_mode::sse);
}

TEST(stream_protocol, parse_read_query_ignores_unknown_parameters) {
  auto q = parse_read_query({param("offset", "-1"), param("x", "y"), {"flag", "", false}});
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->live, live_mode::none);
}

TEST(stream_protocol, parse_read_query_refuses_a_malformed_or_repeated_offset) {
  for (std::string v : {"", "0", "-2", "NOW", "00000000000000ab_000000000000005",
                        "00000000000000AB_0000000000000005x"}) {
    expect_invalid(failure_of(parse_read_query({param("offset", v)})), "invalid_offset");
  }
  expect_invalid(failure_of(parse_read_query({param("offset", "-1"), param("offset", "-1")})),
                 "invalid_offset");
}

TEST(stream_protocol, parse_read_query_refuses_an_unknown_live_mode) {
  for (std::string v : {"", "longpoll", "SSE", "true", "long_poll"}) {
    expect_invalid(failure_of(parse_read_query({param("offset", "-1"), param("live", v)})),
                   "invalid_live_mode");
  }
}

TEST(stream_protocol, parse_read_query_refuses_a_live_read_without_an_offset) {
  expect_invalid(failure_of(parse_read_query({param("live", "long-poll")})), "missing_offset");
  expect_invalid(failure_of(parse_read_query({param("live", "sse"), param("cursor", "c")})),
                 "missing_offset");
}

// ---- if_none_match_matches -------------------------------------------------------------------

TEST(stream_protocol, if_none_match_matches_the_tag_in_a_list_weak_or_star) {
  const std::string_view etag = "\"ab:0:5\"";
  EXPECT_TRUE(if_none_match_matches("\"ab:0:5\"", etag));
  EXPECT_TRUE(if_none_match_matches("W/\"ab:0:5\"", etag));
  EXPECT_TRUE(if_none_match_matches("\"x\", \"ab:0:5\"", etag));
  EXPECT_TRUE(if_none_match_matches("\"x\",\"ab:0:5\" ", etag));
  EXPECT_TRUE(if_none_match_matches("*", etag));
  EXPECT_TRUE(if_none_match_matches(" * ", etag));
}

TEST(stream_protocol, if_none_match_does_not_match_other_tags) {
  const std::string_view etag = "\"ab:0:5\"";
  EXPECT_FALSE(if_none_match_matches("", etag));
  EXPECT_FALSE(if_none_match_matches("\"ab:0:6\"", etag));
  EXPECT_FALSE(if_none_match_matches("ab:0:5", etag));
  EXPECT_FALSE(if_none_match_matches("\"AB:0:5\"", etag));
  EXPECT_FALSE(if_none_match_matches("\"ab:0:5:c\"", etag));
  EXPECT_FALSE(if_none_match_matches("\"x\", \"y\"", etag));
}

}  // namespace
}  // namespace ordo::http
