// `ordo stream …`: create, append (an idempotent producer), read, tail, head, close and delete a
// stream; follow_target(), which every following command shares, prints what a reader reads.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include "base/base64.hpp"
#include "base/duration.hpp"
#include "base/utf8.hpp"
#include "cli/client_commands_internal.hpp"
#include "client/producer.hpp"

namespace ordo::cli {

using namespace std::chrono_literals;
using client::live_mode;
using client::read_event;

namespace {

// The position part of an offset ("{prefix}_{position}"), for progress.
std::uint64_t position_of(const std::string& offset) {
  auto u = offset.rfind('_');
  if (u == std::string::npos) return 0;
  try {
    return std::stoull(offset.substr(u + 1));
  } catch (...) {
    return 0;
  }
}

// A progress line on stderr, only when stderr is a terminal and stdout is not (so it never
// mixes with the data).
class progress {
 public:
  explicit progress(std::string what, std::uint64_t total = 0)
      : what_(std::move(what)), total_(total), on_(::isatty(2) && !::isatty(1)) {}
  ~progress() { finish(); }
  void update(std::uint64_t done, std::uint64_t messages, std::uint64_t bytes) {
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < 100ms) return;
    last_ = now;
    std::string bar;
    if (total_ > 0) {
      int filled = static_cast<int>(30.0 * std::min<double>(1.0, double(done) / double(total_)));
      bar = "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] " +
            std::to_string(std::min<std::uint64_t>(100, done * 100 / total_)) + "%  ";
    }
    std::fprintf(stderr, "\r%s%s: %llu messages, %.1f MB ", bar.c_str(), what_.c_str(),
                 static_cast<unsigned long long>(messages), double(bytes) / 1e6);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
    shown_ = false;
  }

 private:
  std::string what_;
  std::uint64_t total_;
  bool on_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

void client_commands::print_info(const client::stream_info& i) const {
  if (common.json) {
    json::object o{
        {"content_type", i.content_type}, {"next_offset", i.next_offset}, {"closed", i.closed}};
    if (i.ttl_seconds) o["ttl_seconds"] = *i.ttl_seconds;
    if (i.expires_at) o["expires_at"] = *i.expires_at;
    std::cout << json::serialize(o) << "\n";
    return;
  }
  std::cout << "content type  " << i.content_type << "\n"
            << "next offset   " << i.next_offset << "\n"
            << "closed        " << (i.closed ? "yes" : "no") << "\n";
  if (i.ttl_seconds) std::cout << "ttl           " << *i.ttl_seconds << " s\n";
  if (i.expires_at) std::cout << "expires at    " << *i.expires_at << "\n";
}

int client_commands::do_create() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  client::create_options o;
  if (!content_type.empty()) o.content_type = content_type;
  o.ttl_seconds = ttl;
  if (!expires_at.empty()) o.expires_at = expires_at;
  o.closed = closed;
  if (has_data) o.initial_data = data;
  auto r = c->create(path, o);
  if (!r) return fail(r.error());
  print_info(*r);
  return k_exit_ok;
}

int client_commands::do_append() {
  client::producer_options o;
  o.path = path;
  o.producer_id = producer_id.empty() ? "ordo-cli-" + random_hex(8) : producer_id;
  o.epoch = epoch;
  o.content_type = content_type;
  o.max_batch_messages = batch_messages;
  o.linger = *parse_duration(linger);
  auto p = client::producer::start(options(), o);
  if (!p) return fail(p.error());
  std::vector<client::ticket> tickets;
  std::uint64_t bytes = 0;
  progress bar("appended");
  auto add = [&](std::string message) -> std::optional<int> {
    bytes += message.size();
    auto t = (*p)->append(std::move(message));
    if (!t) return fail(t.error());
    tickets.push_back(*t);
    bar.update(0, tickets.size(), bytes);
    return std::nullopt;
  };
  if (has_data) {
    if (auto rc = add(data)) return *rc;
  } else if (lines) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (auto rc = add(std::move(line))) return *rc;
    }
  } else {
    std::stringstream all;
    all << std::cin.rdbuf();
    if (auto rc = add(all.str())) return *rc;
  }
  auto timeout = std::chrono::milliseconds(60'000);
  auto closed_status = (*p)->close(timeout);
  bar.finish();
  std::uint64_t acked = 0, failed = 0;
  std::string last_offset;
  std::optional<failure> first_error;
  for (const auto& t : tickets) {
    if (t->state() == client::message_state::acknowledged) {
      ++acked;
      last_offset = t->offset();
    } else {
      ++failed;
      if (!first_error) first_error = t->error();
    }
  }
  if (common.json) {
    json::object out{{"acknowledged", acked}, {"failed", failed}, {"next_offset", last_offset}};
    if (first_error)
      out["error"] = json::object{{"code", first_error->code}, {"message", first_error->message}};
    std::cout << json::serialize(out) << "\n";
  } else if (failed == 0) {
    std::cout << last_offset << "\n";
  } else {
    std::cerr << "ordo: " << failed << " of " << tickets.size()
              << " messages were not acknowledged; first error: " << first_error->code << ": "
              << first_error->message << "\n";
  }
  if (failed == 0) return k_exit_ok;
  if (failed == tickets.size() && first_error) return exit_code_of(*first_error);
  return k_exit_not_acknowledged;
}

int client_commands::follow_target(const std::string& target, const std::string& from,
                                   live_mode mode, bool follow_live, std::uint64_t total) {
  client::reader_options o;
  o.target = target;
  o.offset = from;
  o.live = follow_live ? mode : live_mode::none;
  auto r = client::reader::open(options(), o);
  if (!r) return fail(r.error());
  std::uint64_t messages = 0, bytes = 0;
  progress bar("read", total);
  auto outcome = (*r)->run([&](const read_event& e) {
    if (e.what == read_event::kind::resync) {
      std::cerr << "ordo: " << e.error.code << ": " << e.error.message
                << "; reading again from the start\n";
      return true;
    }
    if (e.what == read_event::kind::up_to_date) {
      bar.finish();
      return true;
    }
    if (e.what != read_event::kind::messages) return true;
    for (const auto& m : e.messages) {
      ++messages;
      bytes += m.size();
      if (common.json) {
        json::object line{{"offset", e.offset}};
        if (e.json) {
          line["message"] = json::parse(m);
        } else if (is_valid_utf8(m)) {
          line["message"] = m;
        } else {
          line["message_base64"] = base64_encode(m);
        }
        std::cout << json::serialize(line) << "\n";
      } else if (e.json) {
        std::cout << m << "\n";  // one JSON value per line
      } else {
        std::cout << m;  // bytes as they are
      }
    }
    std::cout.flush();
    bar.update(position_of(e.offset), messages, bytes);
    return true;
  });
  bar.finish();
  if (!outcome) return fail(outcome.error());
  return k_exit_ok;
}

int client_commands::do_read(bool tail_mode) {
  live_mode mode = live == "sse"         ? live_mode::sse
                   : live == "long-poll" ? live_mode::long_poll
                                         : live_mode::automatic;
  std::uint64_t total = 0;
  if (!tail_mode && !follow) {
    int code = 0;
    auto c = connect(code);
    if (!c) return code;
    auto info = c->head(path);
    if (!info) return fail(info.error());
    total = position_of(info->next_offset);
  }
  std::string from = tail_mode && tail->count("--offset") == 0 ? "now" : offset;
  return follow_target(client::stream_client::stream_target(path), from, mode, tail_mode || follow,
                       total);
}

int client_commands::do_head() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  auto r = c->head(path);
  if (!r) return fail(r.error());
  print_info(*r);
  return k_exit_ok;
}

int client_commands::do_close() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  auto r = c->close(path);
  if (!r) return fail(r.error());
  if (common.json) {
    std::cout << json::serialize(json::object{{"next_offset", r->next_offset}, {"closed", true}})
              << "\n";
  } else {
    std::cout << r->next_offset << "\n";
  }
  return k_exit_ok;
}

int client_commands::do_remove() {
  int code = 0;
  auto c = connect(code);
  if (!c) return code;
  if (auto r = c->remove(path); !r) return fail(r.error());
  if (common.json) std::cout << json::serialize(json::object{{"deleted", path}}) << "\n";
  return k_exit_ok;
}

void add_stream_commands(CLI::App& app, const std::shared_ptr<client_commands>& c) {
  auto path = [&](CLI::App* cmd) {
    cmd->add_option("path", c->path, "The stream's path (what follows /v1/stream/)")->required();
    add_common_flags(*c, cmd);
  };

  c->stream = app.add_subcommand("stream", "Create, write, read and follow streams on a server");
  c->stream->require_subcommand(1);
  c->create = c->stream->add_subcommand("create", "Create a stream");
  path(c->create);
  c->create->add_option("--content-type", c->content_type, "Its content type")
      ->default_str("application/octet-stream");
  c->create->add_option("--ttl", c->ttl, "Seconds without a read or write before it expires");
  c->create->add_option("--expires-at", c->expires_at, "When it expires (RFC 3339)");
  c->create->add_flag("--closed", c->closed, "Create it closed");
  c->create->add_option("--data", c->data, "Its first message")->each([c](const std::string&) {
    c->has_data = true;
  });

  c->append = c->stream->add_subcommand(
      "append",
      "Append messages exactly once (an idempotent producer: batched, retried until "
      "acknowledged): DATA, each line of stdin (--lines), or all of stdin");
  path(c->append);
  c->append->add_option("data", c->data, "The message")->each([c](const std::string&) {
    c->has_data = true;
  });
  c->append->add_flag("--lines", c->lines, "Each line of stdin is one message");
  c->append->add_option("--content-type", c->content_type, "Default: the stream's");
  c->append->add_option("--producer", c->producer_id,
                        "A stable producer id (default: a new one each run)");
  c->append->add_option("--batch-messages", c->batch_messages, "Most messages in one request")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  c->append->add_option("--linger", c->linger, "How long a batch waits for more messages")
      ->check([](const std::string& text) {
        auto d = parse_duration(text);
        return d ? std::string() : d.error().message;
      })
      ->capture_default_str();
  c->append->add_option("--epoch", c->epoch,
                        "The producer's epoch (default: a fresh one claimed at start)");

  for (auto** cmd : {&c->read, &c->tail}) {
    bool is_tail = cmd == &c->tail;
    *cmd = c->stream->add_subcommand(is_tail ? "tail" : "read",
                                     is_tail ? "Follow a stream live from its tail (or --offset)"
                                             : "Read a stream from an offset to its tail");
    path(*cmd);
    (*cmd)
        ->add_option("--offset", c->offset, "Where to start: -1 (the start), now, or an offset")
        ->capture_default_str();
    (*cmd)
        ->add_option("--live", c->live,
                     "How to follow: auto (SSE, else long-poll), sse, "
                     "long-poll")
        ->check(CLI::IsMember({"auto", "sse", "long-poll"}))
        ->capture_default_str();
    if (!is_tail) (*cmd)->add_flag("--follow,-f", c->follow, "Keep following after the tail");
  }
  c->head = c->stream->add_subcommand("head", "Show a stream's metadata");
  path(c->head);
  c->close = c->stream->add_subcommand("close", "Close a stream (no more appends)");
  path(c->close);
  c->remove = c->stream->add_subcommand("delete", "Delete a stream");
  path(c->remove);
}

}  // namespace ordo::cli
