// `ordo serve`: its options (each also an ORDO_* variable and a key of the --config file) and
// the server's life: open the engine and the session service, bind, run until a signal, stop in
// order. A flag wins over its variable, which wins over the file, which wins over the default.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

namespace ordo::cli {

struct serve_command;

std::shared_ptr<serve_command> add_serve_command(CLI::App& app);
// After app.parse(): reads --config into the options the command line and the environment left
// unset, after checking every key and value of the file (also one a flag overrides). Throws
// CLI::ParseError, as parse() does, naming the file and the key.
void apply_serve_config(serve_command& command);
// The exit code when `serve` was chosen.
std::optional<int> run(serve_command& command);

}  // namespace ordo::cli
