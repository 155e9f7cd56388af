#include "storage/postgres/connection.hpp"

#include <gtest/gtest.h>

#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

TEST(PostgresUrl, RedactedHidesEveryFormOfPassword) {
  EXPECT_EQ(redacted("postgres://ordo:s3cret@db.example:5432/ordo"),
            "postgres://ordo:***@db.example:5432/ordo");
  EXPECT_EQ(redacted("postgresql://ordo:p@ss@host/db?sslmode=require"),
            "postgresql://ordo:***@host/db?sslmode=require");
  EXPECT_EQ(redacted("postgresql://host/db?user=ordo&password=s3cret&sslmode=require"),
            "postgresql://host/db?user=ordo&password=***&sslmode=require");
  EXPECT_EQ(redacted("host=db user=ordo password=s3cret dbname=ordo"),
            "host=db user=ordo password=*** dbname=ordo");
  // Nothing to hide.
  EXPECT_EQ(redacted("postgresql://ordo@/ordo?host=/tmp/x"), "postgresql://ordo@/ordo?host=/tmp/x");
  EXPECT_EQ(redacted("postgres://host:5432/db"), "postgres://host:5432/db");
}

TEST(PostgresUrl, RecognisesBothSchemes) {
  EXPECT_TRUE(is_postgres_url("postgres://h/db"));
  EXPECT_TRUE(is_postgres_url("postgresql://h/db"));
  EXPECT_FALSE(is_postgres_url("./data"));
  EXPECT_FALSE(is_postgres_url("sqlite:///x"));
}

TEST(PostgresFailure, SqlstatesMapToWhatTheCallerShouldDo) {
  EXPECT_EQ(storage_failure("08006", "x", "y").code, k_storage_unavailable);
  EXPECT_EQ(storage_failure("57P01", "x", "y").code, k_storage_unavailable);
  EXPECT_EQ(storage_failure("", "x", "server closed the connection").code, k_storage_unavailable);
  EXPECT_EQ(storage_failure("40001", "x", "y").code, k_storage_busy);
  EXPECT_EQ(storage_failure("40P01", "x", "y").kind, failure_kind::unavailable);
  EXPECT_EQ(storage_failure("53100", "x", "y").kind, failure_kind::insufficient_storage);
  EXPECT_EQ(storage_failure("25006", "x", "y").code, k_storage_readonly);
  EXPECT_EQ(storage_failure("23505", "x", "y").code, k_storage_constraint);
  EXPECT_EQ(storage_failure("42P01", "x", "y").code, k_storage_error);
  EXPECT_NE(storage_failure("42P01", "ctx", "detail").message.find("SQLSTATE 42P01"),
            std::string::npos);
}

TEST(PostgresConnection, AnUnreachableServerIsUnavailableAndItsPasswordIsNotShown) {
  auto c = connection::open(
      "postgresql://ordo:hunter2@/postgres?host=/nonexistent-ordo-socket-dir&port=1",
      {.connect_timeout = std::chrono::seconds(2)});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, k_storage_unavailable);
  EXPECT_EQ(c.error().message.find("hunter2"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("ordo:***@"), std::string::npos) << c.error().message;
}

using PostgresConnectionTest = testing::postgres_test;

TEST_F(PostgresConnectionTest, QueriesTakeTextParametersAndNulls) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT, data BYTEA)"));
  ASSERT_TRUE(db->query("INSERT INTO t VALUES ($1, $2, $3)", {"7", "a 'quoted' note", "\\x00ff"}));
  ASSERT_TRUE(db->query("INSERT INTO t VALUES ($1, $2, NULL)", {"8", std::nullopt}));
  auto r = db->query("SELECT id, note, data FROM t ORDER BY id");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2);
  EXPECT_EQ(r->columns(), 3);
  EXPECT_EQ(r->column_name(1), "note");
  EXPECT_EQ(r->int64(0, 0), 7);
  EXPECT_EQ(r->text(0, 1), "a 'quoted' note");
  EXPECT_EQ(r->text(0, 2), "\\x00ff");
  EXPECT_TRUE(r->is_null(1, 1));
  EXPECT_EQ(r->optional_text(1, 1), std::nullopt);
  EXPECT_EQ(r->optional_int64(1, 0), 8);
  EXPECT_EQ(r->bytes(0, 2), std::string("\x00\xff", 2));
  // Bytes go as they are, NULs and all.
  const std::string raw("\0\xff\n a\\x", 7);
  ASSERT_TRUE(
      db->query("INSERT INTO t VALUES ($1, NULL, $2)", {param::integer(9), param::bytes(raw)}));
  auto back = db->query("SELECT data, length(data) FROM t WHERE id = 9");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->bytes(0, 0), raw);
  EXPECT_EQ(back->int64(0, 1), 7);
  auto n = db->query_int64("SELECT count(*) FROM t WHERE id > $1", {"7"});
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  auto none = db->query_int64("SELECT id FROM t WHERE id < 0");
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, std::nullopt);
  EXPECT_GE(db->server_version(), 150000);
}

TEST_F(PostgresConnectionTest, ErrorsCarryTheirKind) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (id BIGINT PRIMARY KEY)"));
  ASSERT_TRUE(db->query("INSERT INTO t VALUES (1)"));
  auto duplicate = db->query("INSERT INTO t VALUES (1)");
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, k_storage_constraint);
  auto typo = db->exec("SELEKT 1");
  ASSERT_FALSE(typo);
  EXPECT_EQ(typo.error().code, k_storage_error);
  // The connection is still usable after either.
  EXPECT_TRUE(db->query("SELECT 1"));
}

TEST_F(PostgresConnectionTest, AReadOnlyConnectionReadsAndIsRefusedWrites) {
  {
    auto rw = connect();
    ASSERT_TRUE(rw) << rw.error().message;
    ASSERT_TRUE(rw->exec("CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1)"));
  }
  auto ro = connect({.read_only = true});
  ASSERT_TRUE(ro) << ro.error().message;
  EXPECT_TRUE(ro->read_only());
  auto n = ro->query_int64("SELECT count(*) FROM t");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 1);
  auto write = ro->query("INSERT INTO t VALUES (2)");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, k_storage_readonly);
  auto ddl = ro->exec("CREATE TABLE u (id BIGINT)");
  ASSERT_FALSE(ddl);
  EXPECT_EQ(ddl.error().code, k_storage_readonly);
}

TEST_F(PostgresConnectionTest, TheUrlsOwnSettingsAreKeptAndReadOnlyStillHolds) {
  {
    auto rw = connect();
    ASSERT_TRUE(rw) << rw.error().message;
    ASSERT_TRUE(rw->exec("CREATE SCHEMA other; CREATE TABLE other.t (id BIGINT)"));
  }
  const std::string with_options =
      url() + "&application_name=operator-tool&options=-c%20search_path%3Dother";
  auto ro = connection::open(with_options, {.read_only = true});
  ASSERT_TRUE(ro) << ro.error().message;
  auto schema = ro->query("SELECT current_schema(), current_setting('application_name')");
  ASSERT_TRUE(schema) << schema.error().message;
  EXPECT_EQ(schema->text(0, 0), "other");
  EXPECT_EQ(schema->text(0, 1), "operator-tool");
  auto write = ro->query("INSERT INTO t VALUES (1)");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, k_storage_readonly);
}

TEST_F(PostgresConnectionTest, ALostConnectionIsUnavailable) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  auto pid = db->query_int64("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid && *pid);
  auto admin = connect();
  ASSERT_TRUE(admin) << admin.error().message;
  ASSERT_TRUE(admin->query("SELECT pg_terminate_backend($1)", {std::to_string(**pid)}));
  auto after = db->query("SELECT 1");
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, k_storage_unavailable) << after.error().message;
}

TEST_F(PostgresConnectionTest, ACommitWhoseConnectionIsLostHasAnUnknownOutcome) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (id BIGINT PRIMARY KEY)"));
  ASSERT_TRUE(db->exec("BEGIN; INSERT INTO t VALUES (1)"));
  auto pid = db->query_int64("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid && *pid);
  auto admin = connect();
  ASSERT_TRUE(admin) << admin.error().message;
  ASSERT_TRUE(admin->query("SELECT pg_terminate_backend($1)", {std::to_string(**pid)}));
  auto committed = db->commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, k_commit_unknown) << committed.error().message;
  EXPECT_EQ(committed.error().kind, failure_kind::unavailable);
}

TEST_F(PostgresConnectionTest, ACommitThatFailsWithAReasonIsKnownToHaveFailed) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(
      db->exec("CREATE TABLE t (id BIGINT PRIMARY KEY DEFERRABLE INITIALLY DEFERRED);"
               "INSERT INTO t VALUES (1)"));
  ASSERT_TRUE(db->exec("BEGIN; INSERT INTO t VALUES (1)"));  // checked at COMMIT
  auto committed = db->commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, k_storage_constraint);
  auto n = db->query_int64("SELECT count(*) FROM t");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
}

}  // namespace
}  // namespace ordo::postgres
