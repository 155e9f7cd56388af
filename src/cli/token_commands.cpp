#include "cli/token_commands.hpp"

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "auth/api_tokens.hpp"
#include "base/duration.hpp"
#include "base/rfc3339.hpp"

namespace ordo::cli {

namespace json = boost::json;

struct token_commands {
  CLI::App* token = nullptr;
  CLI::App* create = nullptr;
  CLI::App* list = nullptr;
  CLI::App* revoke = nullptr;
  std::string file;
  std::vector<std::string> scopes;
  std::string expires = "90d";
  std::string name;
  std::string id;
  bool json = false;
};

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int do_create(const token_commands& c) {
  std::string scopes;
  for (const auto& s : c.scopes)
    scopes += (scopes.empty() ? "" : " ") + s;
  std::optional<std::chrono::milliseconds> lifetime;
  if (c.expires != "never") {
    auto d = parse_duration(c.expires);
    if (!d || d->count() <= 0) {
      std::fprintf(stderr, "ordo token create: --expires takes a duration such as 30d, or never\n");
      return 2;
    }
    lifetime = *d;
  }
  auto m = auth::create_api_token(c.file, scopes, lifetime, c.name, wall_ms());
  if (!m) {
    std::fprintf(stderr, "ordo token create: %s\n", m.error().message.c_str());
    return 1;
  }
  if (c.json) {
    json::object o{
        {"token", m->token},
        {"id", m->entry.id},
        {"scopes", scopes},
        {"expires", m->entry.expires_ms ? json::value(format_rfc3339_ms(*m->entry.expires_ms))
                                        : json::value(nullptr)}};
    std::cout << json::serialize(o) << "\n";
  } else {
    // The token on stdout alone, so that `$(ordo token create ...)` captures it; the rest on
    // stderr.
    std::cout << m->token << "\n";
    std::fprintf(stderr,
                 "ordo: token %s created in %s; it is shown only now (the file keeps its "
                 "SHA-256)\n",
                 m->entry.id.c_str(), c.file.c_str());
  }
  return 0;
}

int do_list(const token_commands& c) {
  auto set = auth::load_api_tokens(c.file, false);
  if (!set) {
    std::fprintf(stderr, "ordo token list: %s\n", set.error().message.c_str());
    return 1;
  }
  auto now = wall_ms();
  for (const auto& e : set->entries) {
    std::string scopes;
    for (const auto& s : e.scopes)
      scopes += (scopes.empty() ? "" : " ") + s.to_string();
    std::string expires = e.expires_ms ? format_rfc3339_ms(*e.expires_ms) : "never";
    bool expired = e.expires_ms && now >= *e.expires_ms;
    if (c.json) {
      json::object o{{"id", e.id},           {"name", e.name},     {"scopes", scopes},
                     {"created", e.created}, {"expires", expires}, {"expired", expired}};
      std::cout << json::serialize(o) << "\n";
    } else {
      std::cout << e.id << "  " << (e.name.empty() ? "-" : e.name) << "  " << scopes << "  expires "
                << expires << (expired ? " (expired)" : "") << "\n";
    }
  }
  return 0;
}

int do_revoke(const token_commands& c) {
  auto removed = auth::revoke_api_token(c.file, c.id);
  if (!removed) {
    std::fprintf(stderr, "ordo token revoke: %s\n", removed.error().message.c_str());
    return removed.error().kind == failure_kind::not_found ? 3 : 1;
  }
  std::fprintf(stderr,
               "ordo: token %s revoked; a running server stops accepting it within a second\n",
               removed->id.c_str());
  return 0;
}

}  // namespace

std::shared_ptr<token_commands> add_token_commands(CLI::App& app) {
  auto c = std::make_shared<token_commands>();
  c->token = app.add_subcommand("token", "Create, list and revoke API tokens (--auth tokens)");
  c->token->require_subcommand(1);
  auto file_option = [&](CLI::App* cmd) {
    cmd->add_option("--tokens-file", c->file, "The API tokens file the server reads")
        ->envname("ORDO_AUTH_TOKENS_FILE")
        ->required();
  };
  c->create = c->token->add_subcommand(
      "create", "Mint a token: prints it once, stores only its SHA-256 in the tokens file");
  file_option(c->create);
  c->create
      ->add_option("--scope", c->scopes,
                   "A scope (repeatable): admin, streams:read|write|admin:GLOB, "
                   "sessions:read|write:PROJECT, agent:SESSION, metrics:read")
      ->required();
  c->create->add_option("--expires", c->expires, "Lifetime, e.g. 30d or 12h; never for none")
      ->capture_default_str();
  c->create->add_option("--name", c->name, "A note saying what the token is for");
  c->create->add_flag("--json", c->json, "Print one JSON object");
  c->list = c->token->add_subcommand("list", "List the tokens (ids, scopes, expiry; no secrets)");
  file_option(c->list);
  c->list->add_flag("--json", c->json, "One JSON object per token");
  c->revoke = c->token->add_subcommand("revoke", "Remove a token by its id");
  file_option(c->revoke);
  c->revoke->add_option("id", c->id, "The token's id (ordo token list)")->required();
  return c;
}

std::optional<int> run(token_commands& c) {
  if (!c.token->parsed()) return std::nullopt;
  if (c.create->parsed()) return do_create(c);
  if (c.list->parsed()) return do_list(c);
  return do_revoke(c);
}

}  // namespace ordo::cli
