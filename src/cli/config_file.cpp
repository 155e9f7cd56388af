// Reading `ordo serve --config FILE`. CLI11 2.1.2 reads a config file set with set_config() only
// for the top-level app, and before the environment, so a file would beat an ORDO_* variable.
// ordo reads it after the whole command line is parsed instead: by then the flags and the
// variables have filled their options, and App::parse_from_stream() (CLI11's own config path,
// _parse_single_config) adds a file's value only to an option that is still empty.
#include "cli/config_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace ordo::cli {

namespace {

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return std::string(text.substr(first, last - first + 1));
}

// Where the value starting at text[0] ends (one past it), or npos when it is not a string
// without escapes or '#', an integer or a boolean. Sets `problem` to say why.
std::size_t value_end(std::string_view text, std::string& problem) {
  if (text.empty()) {
    problem = "has no value";
    return std::string_view::npos;
  }
  const char quote = text.front();
  if (quote == '"' || quote == '\'') {
    if (text.starts_with("\"\"\"") || text.starts_with("'''")) {
      problem = "multi-line strings are not supported";
      return std::string_view::npos;
    }
    const auto close = text.find(quote, 1);
    if (close == std::string_view::npos) {
      problem = "has a string without its closing quote";
      return std::string_view::npos;
    }
    const std::string_view inside = text.substr(1, close - 1);
    if (inside.find('#') != std::string_view::npos ||
        (quote == '"' && inside.find('\\') != std::string_view::npos)) {
      problem = "'#' and backslash escapes are not supported inside a string";
      return std::string_view::npos;
    }
    return close + 1;
  }
  for (std::string_view word : {"true", "false"}) {
    if (text.starts_with(word) && (text.size() == word.size() || !is_key_char(text[word.size()]))) {
      return word.size();
    }
  }
  std::size_t i = (text.front() == '+' || text.front() == '-') ? 1 : 0;
  const std::size_t digits = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9')
    ++i;
  if (i > digits && (i == text.size() || text[i] == ' ' || text[i] == '\t' || text[i] == '#')) {
    return i;
  }
  problem = "must be a string in quotes, an integer, true or false";
  return std::string_view::npos;
}

}  // namespace

config_file_format::config_file_format(const CLI::App& command) : command_(command) {}

std::vector<CLI::ConfigItem> config_file_format::from_config(std::istream& input) const {
  std::string text;
  std::map<std::string, int> line_of_key;
  int number = 0;
  for (std::string line; std::getline(input, line);) {
    ++number;
    text += line;
    text += '\n';
    const std::string stripped = trim(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    const auto at = [number](const std::string& what) {
      return CLI::ConfigError(what + " (line " + std::to_string(number) + ")");
    };
    if (stripped.front() == '[') {
      throw at("tables such as " + stripped + " are not used; put every key at the top level");
    }
    const auto equals = stripped.find('=');
    if (equals == std::string::npos) throw at("expected key = value");
    const std::string key = trim(std::string_view(stripped).substr(0, equals));
    if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_char)) {
      throw at("'" + key + "' is not a key (keys are option names such as port or data-dir)");
    }
    const CLI::Option* option = command_.get_option_no_throw("--" + key);
    // --help is an option too, but not a setting.
    if (option == nullptr || option == command_.get_help_ptr()) {
      throw at("unknown key '" + key + "'");
    }
    if (!option->get_configurable()) throw at("'" + key + "' cannot be set in a config file");
    if (auto [it, inserted] = line_of_key.emplace(key, number); !inserted) {
      throw at("'" + key + "' is set twice (first on line " + std::to_string(it->second) + ")");
    }
    const std::string rest = trim(std::string_view(stripped).substr(equals + 1));
    std::string problem;
    const std::size_t end = value_end(rest, problem);
    if (end == std::string::npos) throw at("'" + key + "' " + problem);
    const std::string after = trim(std::string_view(rest).substr(end));
    if (!after.empty() && after.front() != '#') {
      throw at("'" + key + "' has more than one value: " + rest);
    }
  }
  if (input.bad()) throw CLI::FileError("cannot read it: " + std::string(std::strerror(errno)));
  std::istringstream checked(text);
  return CLI::ConfigTOML::from_config(checked);
}

void apply_config_file(CLI::App& command, const std::string& path) {
  const std::string prefix = "config file " + path + ": ";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw CLI::FileError(prefix + "is a directory");
  std::ifstream input(path);
  if (!input) {
    throw CLI::FileError(prefix + "cannot open it: " + std::string(std::strerror(errno)));
  }
  command.config_formatter(std::make_shared<config_file_format>(command));
  command.allow_config_extras(CLI::config_extras_mode::error);
  try {
    command.parse_from_stream(input);
  } catch (const CLI::ParseError& e) {
    // CLI11's own messages name the option ("--port: Value 70000 not in range ...") but not
    // where the value came from.
    throw CLI::ConfigError(prefix + e.what());
  }
}

}  // namespace ordo::cli
