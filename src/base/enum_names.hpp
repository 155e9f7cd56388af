// Enums whose values leave the process as text — a database column, a JSON field — have ONE
// table of names, and these functions are the only way between a value and its text, so the
// two cannot drift apart.
//
// An enum opts in with a constexpr function beside it (found by argument-dependent lookup) that
// returns its table, every value once with its own text:
//
//   enum class color { red, green };
//   constexpr std::array<enum_name<color>, 2> enum_names(color) {
//     return {{{color::red, "red"}, {color::green, "green"}}};
//   }
//
//   to_string(color::red)            "red"
//   parse_enum<color>("green")       color::green; nullopt for a text that names no value (the
//                                    caller says what that means: a 400 naming the allowed
//                                    values at the API, a damaged database in storage)
//   enum_values<color>()             every value, in the table's order
//   joined_names<color>()            "red, green": the allowed values, for error messages
//
// The table's order is the order values are listed in; texts are compared exactly (no case
// folding, no trimming).
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace ordo {

template <class E>
struct enum_name {
  E value;
  std::string_view text;
};

template <class E>
concept named_enum = std::is_enum_v<E> && requires(E e) {
  { enum_names(e).size() } -> std::convertible_to<std::size_t>;
};

template <named_enum E>
constexpr std::string_view to_string(E e) {
  for (const auto& n : enum_names(e)) {
    if (n.value == e) return n.text;
  }
  return {};  // a value outside the table: only a cast can make one
}

template <named_enum E>
constexpr std::optional<E> parse_enum(std::string_view text) {
  for (const auto& n : enum_names(E{})) {
    if (n.text == text) return n.value;
  }
  return std::nullopt;
}

template <named_enum E>
constexpr auto enum_values() {
  constexpr auto names = enum_names(E{});
  std::array<E, names.size()> values{};
  for (std::size_t i = 0; i < names.size(); ++i)
    values[i] = names[i].value;
  return values;
}

template <named_enum E>
std::string joined_names(std::string_view separator = ", ") {
  std::string out;
  for (const auto& n : enum_names(E{})) {
    if (!out.empty()) out += separator;
    out += n.text;
  }
  return out;
}

}  // namespace ordo
