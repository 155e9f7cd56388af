// What the HTTP server's Beast translation units share (server.cpp, router.cpp,
// stream_handlers.cpp, live_readers.cpp): the Beast and Asio names, and the helpers that build
// and write an answer. Private to http/: include it only from those files. Every other file,
// and http/server.hpp above all, stays free of Beast, and the files that include it stay few:
// Beast and Asio make each of them slow to compile (their headers alone take about 10 s on a
// two-core machine, the whole file several times that).
//
// Thread safety: these helpers keep no state. An answer is built and written on the network
// thread of its connection; await_engine() is the one way back to that thread from the engine's
// writer and reader threads.
//
// g++ 12 workarounds (keep them in every file that includes this):
//   (1) g++ 12 destroys temporaries in a co_await operand twice: every co_await names its
//       non-trivial operands first (`auto op = ...; co_await std::move(op);`).
//   (2) g++ 12 relocates by-value closure parameters of coroutines bitwise, which corrupts
//       captured strings: closures built inside coroutines capture only pointers, and
//       await_engine() is deliberately not a coroutine.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/handoff_batch.hpp"
#include "base/result.hpp"
#include "http/cors.hpp"
#include "http/error_response.hpp"
#include "http/request_head.hpp"
#include "http/stream_protocol.hpp"

namespace ordo::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
inline constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

using string_response = bhttp::response<bhttp::string_body>;
using request = bhttp::request<bhttp::string_body>;

// What the server reads out of a request into the Beast-free parsers' structures; also used by
// the request_head fuzz harness, so that it reads a request exactly as the server does.
// The fields check_request_head() judges (views into `req`, valid while it lives); server.cpp.
request_head head_of(const request& req);
// The Durable Streams headers of a PUT or POST (stream_protocol.hpp); stream_handlers.cpp.
protocol_headers protocol_headers_of(const request& req);

inline constexpr std::string_view k_expose_headers =
    "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Stream-TTL, "
    "Stream-Expires-At, Stream-SSE-Data-Encoding, Producer-Epoch, Producer-Seq, "
    "Producer-Expected-Seq, Producer-Received-Seq, ETag, Location, Content-Type, Retry-After, "
    "Idempotent-Replayed";
// How long a socket gets to take an answer (or the rest of one) before the connection ends.
inline constexpr std::chrono::seconds k_write_timeout{30};

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Security and CORS headers on every response (sections 12.7, 10); CORS as --cors-origins
// says (http/cors.hpp) for the request's Origin.
template <class Message>
void add_common_headers(Message& m, const request& req) {
  m.set(bhttp::field::server, "ordo");
  m.set("X-Content-Type-Options", "nosniff");
  m.set("Cross-Origin-Resource-Policy", "cross-origin");
  const cors_policy& cors = current_cors_policy();
  if (!cors.any()) m.set(bhttp::field::vary, "Origin");
  auto origin = req.find(bhttp::field::origin);
  std::optional<std::string> origin_text;
  if (origin != req.end()) origin_text.emplace(origin->value().data(), origin->value().size());
  auto allowed = cors.allow_origin(origin_text);
  if (!allowed) return;
  m.set(bhttp::field::access_control_allow_origin, *allowed);
  if (!cors.any()) m.set(bhttp::field::access_control_allow_credentials, "true");
  m.set(bhttp::field::access_control_expose_headers, k_expose_headers);
}

inline string_response make_response(const request& req, bhttp::status status) {
  string_response res{status, req.version()};
  res.keep_alive(req.keep_alive());
  add_common_headers(res, req);
  return res;
}

// A failure's answer as error_answer_for() maps it (http/error_response.hpp); HEAD without
// the body and its Content-Type.
inline string_response error_response(const request& req, const failure& f) {
  error_answer answer = error_answer_for(f);
  auto res = make_response(req, static_cast<bhttp::status>(answer.status));
  bool head = req.method() == bhttp::verb::head;
  for (auto& [name, value] : answer.headers) {
    if (head && name == "Content-Type") continue;
    res.set(name, value);
  }
  if (!head) res.body() = std::move(answer.body);
  res.content_length(res.body().size());
  return res;
}

inline void finish(string_response& res, bool head_request) {
  if (head_request) {
    res.body().clear();
    res.content_length(0);
  } else {
    res.content_length(res.body().size());
  }
}

inline std::optional<std::string> header(const request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  return std::string(it->value());
}

// Hands `run` to `ex`: within a handoff_batch (the writer answering a batch), together with
// every other call for the same io_context, in one post; otherwise in a post of its own.
template <class Executor>
void hand_off(const Executor& ex, handoff_batch::call run) {
  handoff_batch* batch = handoff_batch::current();
  if (!batch) {
    asio::post(ex, std::move(run));
    return;
  }
  const void* target = &asio::query(ex, asio::execution::context);
  if (batch->add(target, run)) return;
  batch->add_target(
      target,
      [ex](std::vector<handoff_batch::call> calls) {
        asio::post(ex, [calls = std::move(calls)] {
          for (const auto& c : calls)
            c();
        });
      },
      std::move(run));
}

// Runs an engine operation that completes through a callback on another thread, resuming the
// calling coroutine on its own executor. Deliberately not a coroutine itself: g++ 12 relocates
// by-value closure parameters of coroutines bitwise, which corrupts captured strings.
template <class Result, class Start>
awaitable<Result> await_engine(Start start) {
  return asio::async_initiate<decltype(use_awaitable), void(Result)>(
      [start = std::move(start)](auto handler) mutable {
        using handler_type = decltype(handler);
        using executor_type = asio::associated_executor_t<handler_type>;
        // One allocation per operation: the handler, the work that keeps its io_context
        // running until it is called, and the result on its way to it.
        struct operation {
          handler_type handler;
          asio::executor_work_guard<executor_type> work;
          std::optional<Result> result;
        };
        auto ex = asio::get_associated_executor(handler);
        auto op = std::make_shared<operation>(
            operation{std::move(handler), asio::make_work_guard(ex), std::nullopt});
        start([op](Result r) mutable {
          op->result.emplace(std::move(r));
          hand_off(op->work.get_executor(), [op] {
            std::move(op->handler)(std::move(*op->result));
            op->work.reset();
          });
        });
      },
      use_awaitable);
}

}  // namespace ordo::http
