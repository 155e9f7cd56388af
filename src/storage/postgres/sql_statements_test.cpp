// The session tables' SQL on PostgreSQL: SQLite's parameters numbered as PostgreSQL's, densely.
// (The tables themselves run on both storages in storage/sqlite/session_tables*_test.cpp.)
#include "storage/postgres/sql_statements.hpp"

#include <gtest/gtest.h>

namespace ordo::postgres {
namespace {

TEST(PostgresSqlStatements, ParametersAreNumberedInOrder) {
  auto n = numbered_parameters("SELECT a FROM t WHERE b = ? AND c = ?");
  EXPECT_EQ(n.text, "SELECT a FROM t WHERE b = $1 AND c = $2");
  EXPECT_EQ(n.used, (std::vector<int>{1, 2}));
}

TEST(PostgresSqlStatements, NumberedParametersMayRepeatAndSkip) {
  // ?2 and ?3 left out of the text (a filter not asked for): $2 is SQLite's ?4.
  auto n = numbered_parameters("SELECT a FROM t WHERE s = ?1 ORDER BY seq LIMIT ?4");
  EXPECT_EQ(n.text, "SELECT a FROM t WHERE s = $1 ORDER BY seq LIMIT $2");
  EXPECT_EQ(n.used, (std::vector<int>{1, 4}));
  n = numbered_parameters("SELECT ?2, ?1, ?2");
  EXPECT_EQ(n.text, "SELECT $1, $2, $1");
  EXPECT_EQ(n.used, (std::vector<int>{2, 1}));
  // A plain ? after ?N is the number after the largest so far, as in SQLite.
  n = numbered_parameters("SELECT ?3, ?");
  EXPECT_EQ(n.used, (std::vector<int>{3, 4}));
}

TEST(PostgresSqlStatements, QuestionMarksInsideQuotesAreText) {
  auto n = numbered_parameters("SELECT 'why?' || ? FROM \"odd?name\" WHERE x = ?");
  EXPECT_EQ(n.text, "SELECT 'why?' || $1 FROM \"odd?name\" WHERE x = $2");
}

}  // namespace
}  // namespace ordo::postgres
