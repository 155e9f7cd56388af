// `ordo serve --config FILE`: the serve options read from a TOML file.
#pragma once

#include <CLI/CLI.hpp>
#include <istream>
#include <string>
#include <vector>

namespace ordo::cli {

// The TOML that CLI11's reader understands, checked strictly before CLI11 reads it: one
// `key = value` per line at the top level (no tables), the value a string ("..." without
// backslash escapes, or '...'), an integer or a boolean, each key once and the long name of one
// of the command's options. CLI11's own reader is lenient (a line without `=` becomes a flag, an
// unterminated string is taken literally, `#` ends a value even inside quotes), so a typo would
// otherwise be read as something else; here it stops start-up with the line and key it is on.
// Thread safety: used by one thread during start-up only.
class config_file_format : public CLI::ConfigTOML {
 public:
  // `command` is the subcommand whose options the keys name; it must outlive this object.
  explicit config_file_format(const CLI::App& command);

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  const CLI::App& command_;
};

// Reads `path` into the options of `command` that neither the command line nor their
// environment variable set (their results are already in when this runs, and CLI11 fills only
// empty options from a file), so a flag wins over its variable, which wins over the file, which
// wins over the default. Throws a CLI::ParseError whose message names the file and the key: an
// unreadable file, bad syntax, an unknown key, a value the option refuses.
void apply_config_file(CLI::App& command, const std::string& path);

}  // namespace ordo::cli
