// The client side of the `ordo` command: `ordo stream …`, `ordo session …`, `ordo changes …`,
// talking to a running server (--server URL, or ORDO_URL) through the C++ client library.
//
// Exit codes (docs/CLI.md): 0 done; 1 the server refused the request (4xx); 2 bad usage;
// 3 not found or gone (404, 410); 4 the server could not be reached or is unavailable
// (connection, timeout, 5xx); 5 some messages were not acknowledged.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "base/result.hpp"

namespace ordo::cli {

// The exit code for a failed request: 3 not found or gone, 4 unreachable or unavailable, else 1
// (shared with `ordo demo`).
int exit_code_of(const failure& f);

class client_commands;

// Adds the subcommands to `app`; after parsing, run() executes the one that was chosen.
std::shared_ptr<client_commands> add_client_commands(CLI::App& app);
// The chosen client command's exit code, or nullopt when none of them was chosen.
std::optional<int> run(client_commands& commands);

}  // namespace ordo::cli
