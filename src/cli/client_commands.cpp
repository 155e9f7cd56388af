// The client commands' entry points: the exit code of a failure, the wiring of every group's
// subcommands into CLI11 and the dispatch to the chosen one. The groups are in stream_commands.cpp
// and session_commands.cpp (client_commands_internal.hpp).
#include "cli/client_commands.hpp"

#include <cstdio>
#include <fstream>
#include <random>

#include "cli/client_commands_internal.hpp"

namespace ordo::cli {

std::string random_hex(int bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(rng() & 0xff));
    out += buf;
  }
  return out;
}

int exit_code_of(const failure& f) {
  switch (f.kind) {
    case failure_kind::not_found:
    case failure_kind::gone:
      return k_exit_not_found;
    case failure_kind::unavailable:
    case failure_kind::internal:
    case failure_kind::insufficient_storage:
      return k_exit_unavailable;
    default:
      return k_exit_refused;
  }
}

int client_commands::run_chosen() {
  for (const auto& [cmd, flags] : commons) {
    if (cmd->parsed()) common = *flags;
  }
  if (common.token.empty() && !common.token_file.empty()) {
    std::ifstream in(common.token_file);
    std::getline(in, common.token);
    while (!common.token.empty() && (common.token.back() == '\r' || common.token.back() == ' '))
      common.token.pop_back();
  }
  if (create->parsed()) return do_create();
  if (append->parsed()) return do_append();
  if (read->parsed()) return do_read(false);
  if (tail->parsed()) return do_read(true);
  if (head->parsed()) return do_head();
  if (close->parsed()) return do_close();
  if (remove->parsed()) return do_remove();
  if (session_list->parsed()) return do_session_list();
  if (session_show->parsed()) return do_session_show();
  if (session_send->parsed()) return do_session_send();
  if (session_tail->parsed()) return do_session_tail();
  if (changes_tail->parsed()) return do_changes_tail();
  return 2;
}

void add_common_flags(client_commands& c, CLI::App* cmd) {
  auto& flags = c.commons[cmd];
  flags = std::make_unique<common_flags>();
  cmd->add_option("--server", flags->server, "The ordo server's URL")
      ->envname("ORDO_URL")
      ->capture_default_str();
  cmd->add_option("--cacert", flags->cacert,
                  "For an https:// server: trust the CA certificates in this PEM file instead "
                  "of the system's")
      ->envname("ORDO_CACERT")
      ->type_name("FILE");
  cmd->add_flag("--json", flags->json, "Print JSON (one object per line) for scripts");
  cmd->add_option("--token", flags->token,
                  "Bearer token for a server with authentication (prefer --token-file or "
                  "ORDO_TOKEN: a command line is visible to other users)")
      ->envname("ORDO_TOKEN");
  cmd->add_option("--token-file", flags->token_file, "File holding the bearer token")
      ->envname("ORDO_TOKEN_FILE")
      ->check(CLI::ExistingFile);
}

std::shared_ptr<client_commands> add_client_commands(CLI::App& app) {
  auto c = std::make_shared<client_commands>();
  add_stream_commands(app, c);
  add_session_commands(app, c);
  return c;
}

std::optional<int> run(client_commands& commands) {
  if (!commands.stream->parsed() && !commands.session->parsed() && !commands.changes->parsed()) {
    return std::nullopt;
  }
  return commands.run_chosen();
}

}  // namespace ordo::cli
