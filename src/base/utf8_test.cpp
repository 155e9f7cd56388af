#include "base/utf8.hpp"

#include <gtest/gtest.h>

namespace ordo {
namespace {

TEST(Utf8, WellFormedTextIsValid) {
  for (std::string_view ok :
       {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"})
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
}

TEST(Utf8, StrayBytesOverlongFormsSurrogatesAndTruncationAreNot) {
  for (std::string_view bad : {
           "a\xFF"
           "b",                 // never valid
           "\xC0\xAE",          // overlong '.'
           "\xE0\x80\xAE",      // overlong, three bytes
           "\xED\xA0\x80",      // a UTF-16 surrogate
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xC3",              // truncated
           "\x80",              // a lone continuation byte
       })
    EXPECT_FALSE(is_valid_utf8(bad)) << testing::PrintToString(bad);
}

TEST(Utf8, InvalidBytesAreReplacedOneByOne) {
  EXPECT_EQ(to_valid_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(to_valid_utf8("\xC0\xAE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("x\xED\xA0\x80y\xC3")));
}

}  // namespace
}  // namespace ordo
