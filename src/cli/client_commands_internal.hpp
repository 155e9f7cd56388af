// Internal to the client commands: the client_commands class (every subcommand's flags, and its
// handler, defined in the file of its group: stream_commands.cpp for `ordo stream …`,
// session_commands.cpp for `ordo session …` and `ordo changes …`), the exit codes and what the
// groups share. client_commands.cpp wires them into CLI11 and runs the chosen one.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "cli/client_commands.hpp"
#include "client/client.hpp"
#include "client/reader.hpp"

namespace ordo::cli {

namespace json = boost::json;

// The exit codes client_commands.hpp lists (2, bad usage, is answered by CLI11 and run_chosen()).
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_refused = 1;
inline constexpr int k_exit_not_found = 3;
inline constexpr int k_exit_unavailable = 4;
inline constexpr int k_exit_not_acknowledged = 5;

// `bytes` random bytes as hex: a fresh producer id or Idempotency-Key.
std::string random_hex(int bytes);

struct common_flags {
  std::string server = "http://127.0.0.1:4437";
  std::string cacert;  // --cacert: the CA file trusted for https://
  bool json = false;
  // A bearer token (API token or JWT), given itself or as a file holding it (safer: a command
  // line is visible to every user of the machine).
  std::string token;
  std::string token_file;
};

class client_commands {
 public:
  // Each subcommand has its own --server, --cacert and --json (an option bound to a variable
  // another subcommand also binds would have its environment default applied over the flag given).
  std::map<CLI::App*, std::unique_ptr<common_flags>> commons;
  common_flags common;  // the chosen subcommand's
  // ordo stream …
  CLI::App* stream = nullptr;
  CLI::App *create = nullptr, *append = nullptr, *read = nullptr, *tail = nullptr, *head = nullptr,
           *close = nullptr, *remove = nullptr;
  std::string path, data, content_type, offset = "-1", live = "auto", producer_id, expires_at;
  std::optional<std::int64_t> ttl;
  std::optional<std::uint64_t> epoch;
  bool closed = false, lines = false, follow = false, has_data = false;
  std::size_t batch_messages = 10'000;
  std::string linger = "5ms";
  // ordo session …
  CLI::App* session = nullptr;
  CLI::App *session_list = nullptr, *session_show = nullptr, *session_tail = nullptr,
           *session_send = nullptr;
  std::string session_id, project, state, text, command_type = "user_message", key;
  // ordo changes …
  CLI::App* changes = nullptr;
  CLI::App* changes_tail = nullptr;

  int run_chosen();

 private:
  client::client_options options() const {
    client::client_options o;
    o.url = common.server;
    if (!common.token.empty()) o.headers.emplace_back("Authorization", "Bearer " + common.token);
    o.tls.ca_file = common.cacert;
    return o;
  }
  int fail(failure f) const {
    if (f.kind == failure_kind::unauthenticated) {
      f.message += " (give one with --token, --token-file, ORDO_TOKEN or ORDO_TOKEN_FILE)";
    }
    if (common.json) {
      json::object e{{"code", f.code}, {"message", f.message}};
      std::cout << json::serialize(json::object{{"error", e}}) << "\n";
    } else {
      std::cerr << "ordo: " << f.code << ": " << f.message << "\n";
    }
    return exit_code_of(f);
  }
  std::unique_ptr<client::stream_client> connect(int& code) const {
    auto c = client::stream_client::connect(options());
    if (!c) {
      code = fail(c.error());
      return nullptr;
    }
    return std::move(*c);
  }
  void print_info(const client::stream_info& i) const;
  int do_create();
  int do_append();
  int do_read(bool tail_mode);
  int do_head();
  int do_close();
  int do_remove();
  int follow_target(const std::string& target, const std::string& from, client::live_mode mode,
                    bool follow_live, std::uint64_t total);
  // GETs a JSON object. With --json it prints the answer as it is and returns nullopt with
  // code 0; on failure it prints the error and returns nullopt with the exit code.
  std::optional<json::object> get_object(client::stream_client& c, const std::string& target,
                                         int& code);
  int do_session_list();
  int do_session_show();
  int do_session_send();
  int do_session_tail();
  int do_changes_tail();
};

// Adds --server and --json to `cmd`, bound to flags of its own.
void add_common_flags(client_commands& c, CLI::App* cmd);
// Adds `ordo stream …` (stream_commands.cpp).
void add_stream_commands(CLI::App& app, const std::shared_ptr<client_commands>& c);
// Adds `ordo session …` and `ordo changes …` (session_commands.cpp).
void add_session_commands(CLI::App& app, const std::shared_ptr<client_commands>& c);

}  // namespace ordo::cli
