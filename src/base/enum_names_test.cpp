#include "base/enum_names.hpp"

#include <gtest/gtest.h>

namespace ordo {
namespace {

enum class fruit { apple, pear, quince };

constexpr std::array<enum_name<fruit>, 3> enum_names(fruit) {
  return {{{fruit::apple, "apple"}, {fruit::pear, "pear"}, {fruit::quince, "quince"}}};
}

enum class unnamed { a, b };

TEST(enum_names, every_value_round_trips_through_its_text) {
  for (fruit f : enum_values<fruit>()) {
    EXPECT_EQ(parse_enum<fruit>(to_string(f)), f) << to_string(f);
  }
  EXPECT_EQ(to_string(fruit::pear), "pear");
  static_assert(parse_enum<fruit>("quince") == fruit::quince, "usable in constant expressions");
}

TEST(enum_names, values_and_names_are_listed_in_the_tables_order) {
  EXPECT_EQ(enum_values<fruit>(), (std::array{fruit::apple, fruit::pear, fruit::quince}));
  EXPECT_EQ(joined_names<fruit>(), "apple, pear, quince");
  EXPECT_EQ(joined_names<fruit>("|"), "apple|pear|quince");
}

TEST(enum_names, only_an_enum_with_a_table_opts_in) {
  static_assert(named_enum<fruit>);
  static_assert(!named_enum<unnamed>);
  static_assert(!named_enum<int>);
  SUCCEED();
}

// ---- error paths -----------------------------------------------------------------------------

TEST(enum_names, a_text_that_names_no_value_is_refused_exactly) {
  EXPECT_FALSE(parse_enum<fruit>("plum"));
  EXPECT_FALSE(parse_enum<fruit>("")) << "empty";
  EXPECT_FALSE(parse_enum<fruit>("Apple")) << "no case folding";
  EXPECT_FALSE(parse_enum<fruit>(" apple")) << "no trimming";
  EXPECT_FALSE(parse_enum<fruit>(std::string_view("apple\0", 6))) << "no trailing bytes";
}

TEST(enum_names, a_value_outside_the_table_has_no_text) {
  EXPECT_EQ(to_string(static_cast<fruit>(9)), "");
}

}  // namespace
}  // namespace ordo
