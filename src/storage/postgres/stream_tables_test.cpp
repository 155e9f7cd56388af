#include "storage/postgres/stream_tables.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "storage/postgres/migrations.hpp"
#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

// A position past any tail: read_messages() up to it reads everything.
constexpr stream_position k_everything{static_cast<std::uint64_t>(INT64_MAX)};

stream_row new_stream(std::string path) {
  stream_row row;
  row.path = std::move(path);
  row.content_type = "application/octet-stream";
  row.incarnation = 0xfedcba9876543210ULL;  // above 2^63: stored as a negative BIGINT
  row.created_at_ms = 1000;
  row.last_access_ms = 1000;
  return row;
}

class PostgresStreamTablesTest : public testing::migrated_postgres_test {
 protected:
  // One transaction of a node's writer: lock the stream, append `messages` after its tail.
  static result<stream_position> append_in_transaction(connection& db, stream_id id,
                                                       std::vector<std::string_view> messages) {
    stream_tables t(db);
    if (auto s = t.begin(); !s) return std::move(s).error();
    auto tails = t.lock_tails({id});
    if (!tails || tails->size() != 1) {
      (void)t.rollback();
      return tails ? make_failure(failure_kind::not_found, "no_stream", "no stream")
                   : std::move(tails).error();
    }
    auto last = t.append(id, tails->front().second, messages);
    if (!last) {
      (void)t.rollback();
      return last;
    }
    if (auto s = t.commit(); !s) return std::move(s).error();
    return last;
  }
};

TEST_F(PostgresStreamTablesTest, AStreamRoundTripsEveryField) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  stream_row row = new_stream("a/b");
  row.ttl_seconds = 60;
  row.expires_at_ms = 61000;
  row.last_stream_seq = "0007";
  auto id = t.insert_stream(row);
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_TRUE(t.set_closed(*id, closed_by{"p1", 3, 9}));
  auto found = t.find_by_path("a/b");
  ASSERT_TRUE(found && *found) << (found ? "" : found.error().message);
  const stream_row& back = **found;
  EXPECT_EQ(back.id, *id);
  EXPECT_EQ(back.path, "a/b");
  EXPECT_EQ(back.state, stream_row_state::live);
  EXPECT_EQ(back.content_type, "application/octet-stream");
  EXPECT_EQ(back.incarnation, 0xfedcba9876543210ULL);
  EXPECT_EQ(back.ttl_seconds, 60);
  EXPECT_EQ(back.expires_at_ms, 61000);
  EXPECT_EQ(back.last_stream_seq, "0007");
  EXPECT_TRUE(back.closed);
  EXPECT_EQ(back.closed_by_producer, "p1");
  EXPECT_EQ(back.closed_by_epoch, 3);
  EXPECT_EQ(back.closed_by_seq, 9);
  EXPECT_FALSE(back.fork_source_id);

  // A fork starts its counter at its fork point.
  stream_row fork = new_stream("a/fork");
  fork.fork_source_id = *id;
  fork.base_seq = stream_position{5};
  fork.fork_sub_offset = 2;
  auto fork_id = t.insert_stream(fork);
  ASSERT_TRUE(fork_id) << fork_id.error().message;
  auto fork_tail = t.tail(*fork_id);
  ASSERT_TRUE(fork_tail);
  EXPECT_EQ(*fork_tail, stream_position{5});
  auto by_id = t.find_by_id(*fork_id);
  ASSERT_TRUE(by_id && *by_id);
  EXPECT_EQ((*by_id)->fork_source_id, *id);
  EXPECT_EQ((*by_id)->fork_sub_offset, 2u);
  auto children = t.has_children(*id);
  ASSERT_TRUE(children);
  EXPECT_TRUE(*children);

  auto taken = t.insert_stream(new_stream("a/b"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, k_storage_constraint);

  auto loaded = t.load_streams();
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[1].tail, stream_position{5});
}

TEST_F(PostgresStreamTablesTest, AppendsGetDensePositionsAndARollbackTakesItsPositionsBack) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  auto id = t.insert_stream(new_stream("s"));
  ASSERT_TRUE(id);
  auto last = append_in_transaction(*db, *id, {"one", "two", std::string_view("\0three", 6)});
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(*last, stream_position{3});

  // A batch that fails after appending: its positions are handed out again.
  ASSERT_TRUE(t.begin());
  auto tails = t.lock_tails({*id});
  ASSERT_TRUE(tails);
  ASSERT_TRUE(t.append(*id, tails->front().second, std::vector<std::string_view>{"lost"}));
  ASSERT_TRUE(t.upsert_producer(*id, "p", 0, 1, 5));
  ASSERT_TRUE(t.rollback());
  auto producer = t.find_producer(*id, "p");
  ASSERT_TRUE(producer);
  EXPECT_FALSE(*producer) << "producer state rolls back with the data it admitted";

  last = append_in_transaction(*db, *id, {"four"});
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, stream_position{4});
  auto read = t.read_messages(*id, stream_position{0}, k_everything, 1 << 20);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->size(), 4u);
  EXPECT_EQ((*read)[2].data, std::string("\0three", 6));
  EXPECT_EQ((*read)[3].seq, stream_position{4});
  EXPECT_EQ((*read)[3].data, "four");
  // Limits: by position, and by bytes (at least one message, however large).
  read = t.read_messages(*id, stream_position{1}, stream_position{3}, 1 << 20);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].seq, stream_position{2});
  read = t.read_messages(*id, stream_position{0}, k_everything, 1);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->size(), 1u);
}

TEST_F(PostgresStreamTablesTest, ALargeBatchGoesInSeveralStatementsInOrder) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  auto id = t.insert_stream(new_stream("bulk"));
  ASSERT_TRUE(id);
  std::vector<std::string> data;
  for (int i = 0; i < 2500; ++i)  // three statements of at most 1,000
    data.push_back("m" + std::to_string(i));
  std::vector<std::string_view> views(data.begin(), data.end());
  auto last = append_in_transaction(*db, *id, views);
  ASSERT_TRUE(last) << last.error().message;
  EXPECT_EQ(*last, stream_position{2500});
  auto read = t.read_messages(*id, stream_position{0}, k_everything, 1 << 30);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 2500u);
  for (std::size_t i = 0; i < read->size(); ++i) {
    ASSERT_EQ((*read)[i].seq, stream_position{i + 1});
    ASSERT_EQ((*read)[i].data, data[i]);
  }
}

TEST_F(PostgresStreamTablesTest, AnAppendAfterAStaleTailWritesNothing) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  auto id = t.insert_stream(new_stream("s"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(append_in_transaction(*db, *id, {"a", "b"}));
  ASSERT_TRUE(t.begin());
  auto stale = t.append(*id, stream_position{1}, std::vector<std::string_view>{"x"});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, "tail_moved");
  ASSERT_TRUE(t.rollback());
  auto tail = t.tail(*id);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, stream_position{2});
}

// The writer's path (storage/stream_store.hpp): a row read before another node changed it is
// refreshed by lock_tail(), and the append after it lands at the locked tail.
TEST_F(PostgresStreamTablesTest, LockTailRefreshesARowAnotherNodeChanged) {
  auto mine = connect();
  auto theirs = connect();
  ASSERT_TRUE(mine && theirs);
  stream_tables t(*mine);
  auto id = t.insert_stream(new_stream("s"));
  ASSERT_TRUE(id);
  auto row = t.find_by_path("s");
  ASSERT_TRUE(row && *row);
  // Another node appends twice and closes the stream after this node read the row.
  ASSERT_TRUE(append_in_transaction(*theirs, *id, {"a", "b"}));
  ASSERT_TRUE(stream_tables(*theirs).set_closed(*id, closed_by{"p", 1, 7}));
  EXPECT_FALSE((*row)->closed);

  ASSERT_TRUE(t.begin());
  auto tail = t.lock_tail(**row);
  ASSERT_TRUE(tail) << tail.error().message;
  EXPECT_EQ(*tail, stream_position{2});
  EXPECT_TRUE((*row)->closed);
  EXPECT_EQ((*row)->closed_by_seq, 7);
  ASSERT_TRUE(t.insert_message(*id, tail->next(), "c"));
  // Not at the tail: nothing is written.
  auto wrong = t.insert_message(*id, stream_position{9}, "x");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "tail_moved");
  ASSERT_TRUE(t.rollback());

  // A stream purged by another node comes back in state purging.
  ASSERT_TRUE(stream_tables(*theirs).mark_purging(*id));
  ASSERT_TRUE(stream_tables(*theirs).purge_messages(*id, 100));
  ASSERT_TRUE(stream_tables(*theirs).delete_stream(*id));
  ASSERT_TRUE(t.begin());
  tail = t.lock_tail(**row);
  ASSERT_TRUE(tail);
  EXPECT_EQ((*row)->state, stream_row_state::purging);
  ASSERT_TRUE(t.rollback());
}

TEST_F(PostgresStreamTablesTest, NodesAppendingAtOnceGetDenseDistinctPositions) {
  stream_id id;
  {
    auto db = connect();
    ASSERT_TRUE(db);
    auto created = stream_tables(*db).insert_stream(new_stream("shared"));
    ASSERT_TRUE(created);
    id = *created;
  }
  constexpr int k_nodes = 4;
  constexpr int k_batches = 40;
  std::vector<std::vector<stream_position>> got(k_nodes);
  std::vector<std::string> errors(k_nodes);
  std::vector<std::thread> nodes;
  for (int n = 0; n < k_nodes; ++n) {
    nodes.emplace_back([&, n] {
      auto db = connection::open(url());
      if (!db) {
        errors[n] = db.error().message;
        return;
      }
      for (int b = 0; b < k_batches; ++b) {
        std::string data = std::to_string(n) + ":" + std::to_string(b);
        auto last = append_in_transaction(*db, id, {data, data});
        if (!last) {
          errors[n] = last.error().message;
          return;
        }
        got[n].push_back(*last);
      }
    });
  }
  for (auto& t : nodes)
    t.join();
  std::vector<std::uint64_t> all;
  for (int n = 0; n < k_nodes; ++n) {
    ASSERT_EQ(errors[n], "");
    for (std::size_t i = 1; i < got[n].size(); ++i)
      EXPECT_LT(got[n][i - 1], got[n][i]) << "a node's own batches in its order";
    for (auto p : got[n])
      all.push_back(p.value());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(k_nodes * k_batches));
  for (std::size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(all[i], 2 * (i + 1)) << "each batch of two ends on an even position, none twice";
  auto db = connect();
  ASSERT_TRUE(db);
  auto read = stream_tables(*db).read_messages(id, stream_position{0}, k_everything, 1 << 30);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), static_cast<std::size_t>(2 * k_nodes * k_batches));
  for (std::size_t i = 0; i < read->size(); ++i) {
    EXPECT_EQ((*read)[i].seq, stream_position{i + 1});
    if (i % 2 == 1) {
      EXPECT_EQ((*read)[i].data, (*read)[i - 1].data) << "a batch is contiguous";
    }
  }
}

TEST_F(PostgresStreamTablesTest, ReadersNeverSeeAGap) {
  stream_id id;
  {
    auto db = connect();
    ASSERT_TRUE(db);
    auto created = stream_tables(*db).insert_stream(new_stream("watched"));
    ASSERT_TRUE(created);
    id = *created;
  }
  std::atomic<bool> done = false;
  std::vector<std::thread> writers;
  for (int n = 0; n < 3; ++n) {
    writers.emplace_back([&] {
      auto db = connection::open(url());
      if (!db) return;
      for (int b = 0; b < 60; ++b)
        (void)append_in_transaction(*db, id, {"x"});
    });
  }
  std::thread watcher_done([&] {
    for (auto& w : writers)
      w.join();
    done = true;
  });
  auto db = connect();
  ASSERT_TRUE(db);
  stream_tables t(*db);
  int reads = 0;
  while (!done) {
    auto read = t.read_messages(id, stream_position{0}, k_everything, 1 << 30);
    ASSERT_TRUE(read) << read.error().message;
    for (std::size_t i = 0; i < read->size(); ++i)
      ASSERT_EQ((*read)[i].seq, stream_position{i + 1}) << "a gap at read " << reads;
    ++reads;
  }
  watcher_done.join();
  auto tail = t.tail(id);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, stream_position{180});
}

TEST_F(PostgresStreamTablesTest, LockingTheSameStreamsInAnyOrderNeverDeadlocks) {
  stream_id a, b;
  {
    auto db = connect();
    ASSERT_TRUE(db);
    stream_tables t(*db);
    auto ra = t.insert_stream(new_stream("a"));
    auto rb = t.insert_stream(new_stream("b"));
    ASSERT_TRUE(ra && rb);
    a = *ra;
    b = *rb;
  }
  std::vector<std::string> errors(2);
  std::vector<std::thread> nodes;
  for (int n = 0; n < 2; ++n) {
    nodes.emplace_back([&, n] {
      auto db = connection::open(url());
      if (!db) {
        errors[n] = db.error().message;
        return;
      }
      stream_tables t(*db);
      for (int i = 0; i < 50; ++i) {
        // One node names them a, b; the other b, a.
        std::vector<stream_id> order = n == 0 ? std::vector{a, b} : std::vector{b, a};
        if (auto s = t.begin(); !s) {
          errors[n] = s.error().message;
          return;
        }
        auto tails = t.lock_tails(order);
        if (!tails) {
          errors[n] = tails.error().message;
          (void)t.rollback();
          return;
        }
        for (auto [id, tail] : *tails) {
          if (auto s = t.append(id, tail, std::vector<std::string_view>{"m"}); !s) {
            errors[n] = s.error().message;
            (void)t.rollback();
            return;
          }
        }
        if (auto s = t.commit(); !s) {
          errors[n] = s.error().message;
          return;
        }
      }
    });
  }
  for (auto& t : nodes)
    t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  auto db = connect();
  ASSERT_TRUE(db);
  stream_tables t(*db);
  EXPECT_EQ(*t.tail(a), stream_position{100});
  EXPECT_EQ(*t.tail(b), stream_position{100});
}

TEST_F(PostgresStreamTablesTest, LockStreamsLocksEachPathItsStreamAndTheSourcesItForkedFrom) {
  auto db = connect();
  ASSERT_TRUE(db);
  stream_tables t(*db);
  // A path a text[] literal must quote, forked from a fork of a root; and a stream not named.
  const std::string weird = "we\"ird\\path,{x}";
  auto root = t.insert_stream(new_stream("root"));
  ASSERT_TRUE(root);
  stream_row mid = new_stream("mid");
  mid.fork_source_id = *root;
  auto middle = t.insert_stream(mid);
  ASSERT_TRUE(middle);
  stream_row leaf = new_stream(weird);
  leaf.fork_source_id = *middle;
  auto tip = t.insert_stream(leaf);
  ASSERT_TRUE(tip) << tip.error().message;
  auto other = t.insert_stream(new_stream("other"));
  ASSERT_TRUE(other);

  ASSERT_TRUE(t.begin());
  storage::stream_locks locks;
  locks.paths = {weird, "not-yet"};
  ASSERT_TRUE(t.lock_streams(locks));

  // Another node finds the three rows and both paths locked, and the other stream free.
  auto node = connect();
  ASSERT_TRUE(node);
  for (stream_id id : {*root, *middle, *tip, *other}) {
    auto r = node->query("SELECT id FROM streams WHERE id = $1 FOR UPDATE NOWAIT",
                         {param::integer(id.value())});
    EXPECT_EQ(static_cast<bool>(r), id == *other) << id.value();
  }
  for (const std::string& path : {weird, std::string("not-yet"), std::string("free")}) {
    auto got = node->query_int64("SELECT pg_try_advisory_xact_lock(1869767791, hashtext($1))::int",
                                 {path});
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->value_or(-1), path == "free" ? 1 : 0) << path;
  }
  ASSERT_TRUE(t.rollback());
}

// The write-behind (stream_tables.hpp): jobs that only append hold their writes until the batch
// commits; a job rolled back takes back exactly what it held; any other job first sends it all.
TEST_F(PostgresStreamTablesTest, HeldAppendsCommitTogetherAndARolledBackJobLeavesNothing) {
  auto db = connect();
  ASSERT_TRUE(db);
  stream_tables t(*db);
  auto a = t.insert_stream(new_stream("held-a"));
  auto b = t.insert_stream(new_stream("held-b"));
  ASSERT_TRUE(a && b);
  auto other = connect();
  ASSERT_TRUE(other);
  auto count = [&](std::string_view sql) {
    auto n = other->query_int64(sql);
    return n ? n->value_or(-1) : -2;
  };

  ASSERT_TRUE(t.begin());
  storage::stream_locks locks;
  locks.ids = {*a, *b};
  ASSERT_TRUE(t.lock_streams(locks));
  // Job 1 appends to a and admits a producer; job 2 appends to a and b, closes b, sets a
  // producer forward, and is rolled back.
  auto job = [&](stream_id id, std::string data, std::int64_t producer_seq) {
    stream_row row;
    row.id = id;
    auto tail = t.lock_tail(row);
    ASSERT_TRUE(tail);
    ASSERT_TRUE(t.insert_message(id, tail->next(), data));
    ASSERT_TRUE(t.upsert_producer(id, "p", 1, producer_seq, 5));
  };
  ASSERT_TRUE(t.savepoint_for_appends());
  job(*a, "one", 0);
  ASSERT_TRUE(t.release_savepoint());
  ASSERT_TRUE(t.savepoint_for_appends());
  job(*a, "two", 1);
  job(*b, "three", 0);
  ASSERT_TRUE(t.set_closed(*b, std::nullopt));
  ASSERT_TRUE(t.set_last_stream_seq(*a, "z"));
  // Inside the job, reads see what it holds.
  EXPECT_EQ(*t.tail(*a), stream_position{2});
  auto p = t.find_producer(*a, "p");
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->last_seq, 1);
  ASSERT_TRUE(t.rollback_to_savepoint());
  ASSERT_TRUE(t.release_savepoint());
  EXPECT_EQ(*t.tail(*a), stream_position{1});
  EXPECT_EQ(*t.tail(*b), stream_position{0});
  p = t.find_producer(*a, "p");
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->last_seq, 0);
  EXPECT_FALSE(t.find_producer(*b, "p")->has_value());
  // Nothing has been sent yet.
  EXPECT_EQ(count("SELECT count(*) FROM messages"), 0);

  // A job that is not only appends sends what is held first, and sees it in the database.
  ASSERT_TRUE(t.savepoint());
  auto read = t.read_messages(*a, stream_position{0}, k_everything, SIZE_MAX);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().data, "one");
  ASSERT_TRUE(t.release_savepoint());
  ASSERT_TRUE(t.savepoint_for_appends());
  job(*b, "four", 0);
  ASSERT_TRUE(t.release_savepoint());
  ASSERT_TRUE(t.commit());

  EXPECT_EQ(count("SELECT count(*) FROM messages"), 2);
  EXPECT_EQ(count("SELECT tail_seq FROM streams WHERE path = 'held-a'"), 1);
  EXPECT_EQ(count("SELECT tail_seq FROM streams WHERE path = 'held-b'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM streams WHERE closed OR last_stream_seq IS NOT NULL"), 0);
  EXPECT_EQ(count("SELECT sum(last_seq) FROM producers"), 0);
}

TEST_F(PostgresStreamTablesTest, AHeldJobThatWroteCannotRunAStatementThatNeedsItsWritesSent) {
  auto db = connect();
  ASSERT_TRUE(db);
  stream_tables t(*db);
  auto a = t.insert_stream(new_stream("held"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(t.begin());
  storage::stream_locks locks;
  locks.ids = {*a};
  ASSERT_TRUE(t.lock_streams(locks));
  ASSERT_TRUE(t.savepoint_for_appends());
  ASSERT_TRUE(t.insert_message(*a, stream_position{1}, "m"));
  auto refused = t.has_children(*a);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "held_job_went_direct");
  ASSERT_TRUE(t.rollback());
}

TEST_F(PostgresStreamTablesTest, ADeletedStreamFreesItsPathAtOnceAndItsDataInBatches) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  auto id = t.insert_stream(new_stream("gone"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(append_in_transaction(*db, *id, {"1", "2", "3", "4", "5"}));
  ASSERT_TRUE(t.upsert_producer(*id, "p", 1, 2, 3));
  ASSERT_TRUE(t.mark_purging(*id));
  auto reused = t.insert_stream(new_stream("gone"));
  ASSERT_TRUE(reused) << reused.error().message;
  EXPECT_NE(*reused, *id);
  auto purging = t.purging_streams();
  ASSERT_TRUE(purging);
  EXPECT_EQ(*purging, std::vector<stream_id>{*id});
  auto loaded = t.load_streams();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->size(), 1u) << "a purging stream is not loaded";
  auto first = t.purge_messages(*id, 3);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 3);
  auto second = t.purge_messages(*id, 3);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 2);
  ASSERT_TRUE(t.delete_stream(*id));
  auto after = t.find_by_id(*id);
  ASSERT_TRUE(after);
  EXPECT_FALSE(*after);
  auto producer = t.find_producer(*id, "p");
  ASSERT_TRUE(producer);
  EXPECT_FALSE(*producer);
}

TEST_F(PostgresStreamTablesTest, RetentionPrunesAndRecordsWhereItStopped) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  stream_tables t(*db);
  auto id = t.insert_stream(new_stream("feed"));
  ASSERT_TRUE(id);
  ASSERT_TRUE(append_in_transaction(*db, *id, {"1", "2", "3", "4"}));
  ASSERT_TRUE(t.prune_upto(*id, stream_position{2}));
  ASSERT_TRUE(t.prune_upto(*id, stream_position{1}));  // never backwards
  auto row = t.find_by_id(*id);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->pruned_upto, stream_position{2});
  auto read = t.read_messages(*id, stream_position{0}, k_everything, 1 << 20);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].seq, stream_position{3});
}

TEST_F(PostgresStreamTablesTest, NodesStartingAtOnceAgreeOnTheDatabaseEpoch) {
  std::vector<std::uint64_t> epochs(4);
  std::vector<std::thread> nodes;
  for (int n = 0; n < 4; ++n) {
    nodes.emplace_back([&, n] {
      auto db = connection::open(url());
      if (!db) return;
      auto e = load_or_create_database_epoch(*db);
      if (e) epochs[n] = *e;
    });
  }
  for (auto& t : nodes)
    t.join();
  EXPECT_NE(epochs[0], 0u);
  for (auto e : epochs)
    EXPECT_EQ(e, epochs[0]);
  auto db = connect();
  ASSERT_TRUE(db);
  auto again = load_or_create_database_epoch(*db);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, epochs[0]);
}

}  // namespace
}  // namespace ordo::postgres
