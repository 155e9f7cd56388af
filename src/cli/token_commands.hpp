// `ordo token create|list|revoke`: the API tokens file (auth/api_tokens.hpp), edited on this
// machine; a running server rereads the file within a second of a change.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

namespace ordo::cli {

struct token_commands;

std::shared_ptr<token_commands> add_token_commands(CLI::App& app);
// The exit code when a token subcommand was chosen.
std::optional<int> run(token_commands& commands);

}  // namespace ordo::cli
