// Harness: the producer headers (Producer-Id, Producer-Epoch, Producer-Seq) and the other append
// headers, through parse_append (http/stream_protocol.hpp), which the server calls for every
// POST. Invariants: the three producer headers are accepted all together or not at all; an
// accepted epoch or seq is a strict decimal integer up to 2^53-1 that re-serialises to the exact
// header text; an accepted append with a body has a Content-Type; a refusal is a 400 naming a
// code, never an exception.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>

#include "base/strict_integer.hpp"
#include "fuzz/check.hpp"
#include "http/stream_protocol.hpp"

using ordo::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::uint8_t flags = in.ConsumeIntegral<std::uint8_t>();
  ordo::http::protocol_headers h;
  if (flags & 1) h.producer_id = in.ConsumeRandomLengthString(64);
  if (flags & 2) h.producer_epoch = in.ConsumeRandomLengthString(32);
  if (flags & 4) h.producer_seq = in.ConsumeRandomLengthString(32);
  if (flags & 8) h.stream_seq = in.ConsumeRandomLengthString(32);
  if (flags & 16) h.stream_closed = in.ConsumeRandomLengthString(8);
  if (flags & 32) h.content_type = in.ConsumeRandomLengthString(64);
  ordo::stream_config stream;
  if (flags & 64) {
    stream.content_type = "application/json";
    stream.media_type = "application/json";
    stream.payload = ordo::payload_mode::json;
  } else {
    stream.content_type = "application/octet-stream";
    stream.media_type = "application/octet-stream";
  }
  std::string body = in.ConsumeRemainingBytesAsString();
  const bool had_body = !body.empty();

  auto req = ordo::http::parse_append(h, std::move(body), stream);
  const int producer_headers =
      (h.producer_id ? 1 : 0) + (h.producer_epoch ? 1 : 0) + (h.producer_seq ? 1 : 0);
  if (!req) {
    check(req.error().kind == ordo::failure_kind::invalid, "a refusal is invalid (400)");
    check(!req.error().code.empty(), "a refusal names its code");
    return 0;
  }
  check(producer_headers == 0 || producer_headers == 3, "producer headers all or none");
  check(req->close == ordo::http::stream_closed_flag(h.stream_closed), "Stream-Closed flag");
  if (producer_headers == 3) {
    check(req->producer.has_value(), "a claim when all three are sent");
    check(req->producer->id == *h.producer_id && !req->producer->id.empty(), "Producer-Id kept");
    check(req->producer->epoch <= ordo::k_max_safe_integer, "epoch is a safe integer");
    check(req->producer->seq <= ordo::k_max_safe_integer, "seq is a safe integer");
    check(std::to_string(req->producer->epoch) == *h.producer_epoch, "epoch re-serialises");
    check(std::to_string(req->producer->seq) == *h.producer_seq, "seq re-serialises");
  } else {
    check(!req->producer.has_value(), "no claim without the headers");
  }
  if (h.stream_seq) check(req->stream_seq == *h.stream_seq && !h.stream_seq->empty(), "Stream-Seq");
  if (had_body) {
    check(h.content_type.has_value() && !req->media_type.empty(), "a body has a media type");
    check(req->data.has_value(), "a body is stored");
  } else {
    check(req->close && !req->data, "no body only to close");
  }
  return 0;
}
