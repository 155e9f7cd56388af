// Black-box tests of the stream engine against a real SQLite file: offsets and the write path,
// idempotent producers, closure, create, custom write jobs and retention, and the error paths.
// The fixture is in stream_engine_test_fixture.hpp; the other parts of the engine have their
// own test files beside their sources.
#include "streams/stream_engine_test_fixture.hpp"

namespace ordo::engine_test {
namespace {

// ---- offsets and the write path --------------------------------------------------------------

TEST_F(stream_engine_test, offsets_are_assigned_densely_in_commit_order) {
  ASSERT_EQ(create("s").status, create_status::created);
  for (std::uint64_t i = 1; i <= 5; ++i) {
    append_result r = append("s", "m" + std::to_string(i));
    ASSERT_EQ(r.status, append_status::appended);
    EXPECT_EQ(r.tail, stream_position{i});
  }
  EXPECT_EQ(read_all("s"), "m1m2m3m4m5");
}

TEST_F(stream_engine_test, client_streams_lists_created_streams_by_path_without_managed_ones) {
  ASSERT_EQ(create("b/2").status, create_status::created);
  ASSERT_EQ(create("a").status, create_status::created);
  ASSERT_EQ(create("__ordo/managed").status, create_status::created);
  auto listed = engine_->client_streams();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]->config().path, "a");
  EXPECT_EQ(listed[1]->config().path, "b/2");
  EXPECT_EQ(engine_->stream_count(), listed.size());
}

TEST_F(stream_engine_test, managed_stream_prefix_option_decides_which_streams_are_clients) {
  open([](stream_engine_options& o) { o.managed_stream_prefix = "_sys/"; });
  ASSERT_EQ(create("_sys/feed").status, create_status::created);
  ASSERT_EQ(create("__ordo/x").status, create_status::created);  // a client's under this prefix
  auto listed = engine_->client_streams();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]->config().path, "__ordo/x");
  EXPECT_EQ(engine_->stream_count(), 1u);
}

TEST_F(stream_engine_test, everything_queued_is_committed_in_one_transaction) {
  ASSERT_EQ(create("s").status, create_status::created);
  std::uint64_t before = engine_->stats().transactions_committed;
  gate_.arm();
  auto blocker = append_async(data_request("s", "first"));
  gate_.wait_until_held();
  std::vector<std::future<append_result>> queued;
  for (int i = 0; i < 50; ++i)
    queued.push_back(append_async(data_request("s", "x")));
  gate_.release();
  EXPECT_EQ(blocker.get().tail, stream_position{1});
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(queued[i].get().tail, stream_position{2} + i);
  // The blocked batch, then one transaction for all fifty queued appends.
  EXPECT_EQ(engine_->stats().transactions_committed - before, 2u);
}

TEST_F(stream_engine_test, a_failing_job_fails_alone_and_its_writes_are_rolled_back) {
  ASSERT_EQ(create("a").status, create_status::created);
  ASSERT_EQ(create("b").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view path) -> status {
    if (point == "append.after_insert" && path == "b") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  gate_.arm();
  auto blocker = append_async(data_request("a", "0"));
  gate_.wait_until_held();
  auto first = append_async(data_request("a", "A"));
  auto failing_request = data_request("b", "B");
  failing_request.producer = producer_claim{"p", 0, 0};
  auto failing = append_async(std::move(failing_request));
  auto last = append_async(data_request("a", "C"));
  gate_.release();
  blocker.get();
  EXPECT_EQ(first.get().status, append_status::appended);
  append_result f = failing.get();
  EXPECT_EQ(f.status, append_status::failed);
  EXPECT_EQ(f.error.kind, failure_kind::insufficient_storage);
  append_result l = last.get();
  EXPECT_EQ(l.status, append_status::appended);
  EXPECT_EQ(l.tail, stream_position{3});  // dense: the failed job took no position
  EXPECT_EQ(read_all("a"), "0AC");
  EXPECT_EQ(engine_->find("b")->state().tail, stream_position{0});
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages +
                       " m JOIN streams s ON s.id = m.stream_id "
                       "WHERE s.path = 'b'"),
            0);
  // The failed job's producer state was rolled back with its data: the retry is new, not a dup.
  fault_ = nullptr;
  EXPECT_EQ(append_as("b", "B", "p", 0, 0).status, append_status::appended);
  EXPECT_EQ(read_all("b"), "B");
}

TEST_F(stream_engine_test, writers_are_acknowledged_only_after_commit) {
  ASSERT_EQ(create("s").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "commit") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  append_result r = append("s", "lost");
  EXPECT_EQ(r.status, append_status::failed);
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{0});  // nothing published
  fault_ = nullptr;
  EXPECT_EQ(append("s", "kept").tail, stream_position{1});
  EXPECT_EQ(read_all("s"), "kept");
}

TEST_F(stream_engine_test, a_commit_of_unknown_outcome_refuses_all_later_writes) {
  ASSERT_EQ(create("s").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "commit") {
      return make_failure(failure_kind::unavailable, "storage_io_error", "injected fsync error");
    }
    return ok_v;
  };
  EXPECT_EQ(append("s", "x").status, append_status::failed);
  fault_ = nullptr;
  EXPECT_FALSE(engine_->writable());
  append_result later = append("s", "y");
  EXPECT_EQ(later.status, append_status::failed);
  EXPECT_EQ(later.error.kind, failure_kind::unavailable);
  EXPECT_EQ(later.error.code, "storage_poisoned");
  // Reads keep working.
  EXPECT_EQ(read_all("s"), "");
}

// ---- idempotent producers --------------------------------------------------------------------

TEST_F(stream_engine_test, producer_sequences_are_validated_as_the_protocol_prescribes) {
  ASSERT_EQ(create("s").status, create_status::created);
  append_result r = append_as("s", "a", "p", 0, 0);
  EXPECT_EQ(r.status, append_status::appended);
  EXPECT_EQ(r.producer_epoch, 0u);
  EXPECT_EQ(r.producer_seq, 0u);
  EXPECT_EQ(append_as("s", "b", "p", 0, 1).status, append_status::appended);
  EXPECT_EQ(append_as("s", "c", "p", 0, 2).status, append_status::appended);

  r = append_as("s", "b", "p", 0, 1);  // an old retry
  EXPECT_EQ(r.status, append_status::duplicate);
  EXPECT_EQ(r.producer_seq, 2u);  // the highest accepted, not the request's

  r = append_as("s", "e", "p", 0, 4);
  EXPECT_EQ(r.status, append_status::producer_seq_gap);
  EXPECT_EQ(r.expected_seq, 3u);
  EXPECT_EQ(r.received_seq, 4u);

  r = append_as("s", "z", "p", 1, 3);
  EXPECT_EQ(r.status, append_status::invalid_epoch_seq);

  EXPECT_EQ(append_as("s", "d", "p", 1, 0).status, append_status::appended);
  r = append_as("s", "zombie", "p", 0, 3);
  EXPECT_EQ(r.status, append_status::stale_epoch);
  EXPECT_EQ(r.producer_epoch, 1u);

  r = append_as("s", "x", "fresh", 0, 5);
  EXPECT_EQ(r.status, append_status::producer_seq_gap);
  EXPECT_EQ(r.expected_seq, 0u);

  EXPECT_EQ(read_all("s"), "abcd");
}

TEST_F(stream_engine_test, producer_state_survives_a_restart) {
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_EQ(append_as("s", "a", "p", 3, 0).status, append_status::appended);
  EXPECT_EQ(append_as("s", "b", "p", 3, 1).status, append_status::appended);
  open();
  EXPECT_EQ(append_as("s", "b", "p", 3, 1).status, append_status::duplicate);
  EXPECT_EQ(append_as("s", "x", "p", 2, 0).status, append_status::stale_epoch);
  EXPECT_EQ(read_all("s"), "ab");
}

TEST_F(stream_engine_test, stream_seq_must_increase_bytewise) {
  ASSERT_EQ(create("s").status, create_status::created);
  auto r = data_request("s", "1");
  r.stream_seq = "2";
  EXPECT_EQ(append_async(r).get().status, append_status::appended);
  r.stream_seq = "10";  // "10" < "2" byte-wise
  EXPECT_EQ(append_async(r).get().status, append_status::stream_seq_conflict);
  r.stream_seq = "3";
  EXPECT_EQ(append_async(r).get().status, append_status::appended);
}

// ---- closure ---------------------------------------------------------------------------------

TEST_F(stream_engine_test, a_closed_stream_refuses_appends_and_closing_again_is_idempotent) {
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  auto final_append = data_request("s", "z");
  final_append.close = true;
  final_append.producer = producer_claim{"p", 0, 0};
  append_result r = append_async(final_append).get();
  EXPECT_EQ(r.status, append_status::appended);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.tail, stream_position{2});

  r = append("s", "late");
  EXPECT_EQ(r.status, append_status::stream_closed);
  EXPECT_EQ(r.tail, stream_position{2});
  EXPECT_EQ(close("s").status, append_status::closed);
  EXPECT_EQ(append_async(final_append).get().status, append_status::duplicate);
  EXPECT_TRUE(engine_->find("s")->state().closed);
  open();
  EXPECT_TRUE(engine_->find("s")->state().closed);
  EXPECT_EQ(read_all("s"), "az");
}

// ---- create ----------------------------------------------------------------------------------

TEST_F(stream_engine_test, create_is_idempotent_and_conflicts_on_a_different_configuration) {
  ASSERT_EQ(create("s", "text/plain").status, create_status::created);
  EXPECT_EQ(create("s", "TEXT/PLAIN").status, create_status::exists);
  EXPECT_EQ(create("s", "application/json").status, create_status::config_conflict);
  create_request ttl;
  ttl.path = "s";
  ttl.content_type = "text/plain";
  ttl.ttl_seconds = 60;
  EXPECT_EQ(create(ttl).status, create_status::config_conflict);
}

TEST_F(stream_engine_test, json_rows_read_back_as_one_array) {
  create_request c;
  c.path = "j";
  c.content_type = "application/json";
  c.initial_data = R"({"a":1},{"b":2})";
  ASSERT_EQ(create(c).status, create_status::created);
  append_async(data_request("j", "[3]", "application/json")).get();
  EXPECT_EQ(read_all("j"), R"([{"a":1},{"b":2},[3]])");
}

// What the HTTP layer serves without the catch-up admission: the tail and the tail cache only.
TEST_F(stream_engine_test, read_in_memory_serves_the_tail_cache_and_leaves_the_rest_to_readers) {
  ASSERT_EQ(create("m").status, create_status::created);
  ASSERT_EQ(append("m", "a").status, append_status::appended);
  ASSERT_EQ(append("m", "b").status, append_status::appended);
  auto record = engine_->find("m");
  ASSERT_TRUE(record);
  auto at_tail = engine_->read_in_memory(*record, stream_position{2});
  ASSERT_TRUE(at_tail);
  EXPECT_TRUE(at_tail->messages.empty());
  auto cached = engine_->read_in_memory(*record, stream_position{1});
  ASSERT_TRUE(cached);
  ASSERT_EQ(cached->messages.size(), 1u);
  EXPECT_EQ(*cached->messages[0], "b");

  // After a restart the cache is empty: only the reader pool can serve old offsets.
  open();
  record = engine_->find("m");
  ASSERT_TRUE(record);
  EXPECT_FALSE(engine_->read_in_memory(*record, stream_position{0}));
  EXPECT_EQ(read_all("m"), "ab");
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(stream_engine_test, a_full_write_queue_refuses_appends_with_overloaded_not_silence) {
  open([](stream_engine_options& o) {
    o.max_write_queue_jobs = 2;
    o.max_write_queue_bytes = 10;
  });
  ASSERT_EQ(create("s").status, create_status::created);
  gate_.arm();
  auto blocker = append_async(data_request("s", "0"));
  gate_.wait_until_held();
  auto a = append_async(data_request("s", "12345678"));   // 8 of the 10 bytes
  auto too_big = append_async(data_request("s", "abc"));  // 11 bytes queued: refused
  auto b = append_async(data_request("s", "x"));          // 9 bytes, second job: accepted
  auto too_many = append_async(data_request("s", "y"));   // third job: refused
  append_result refused_bytes = too_big.get();
  append_result refused_jobs = too_many.get();
  EXPECT_EQ(refused_bytes.status, append_status::overloaded);
  EXPECT_EQ(refused_bytes.error.kind, failure_kind::unavailable);
  EXPECT_EQ(refused_jobs.status, append_status::overloaded);
  gate_.release();
  blocker.get();
  EXPECT_EQ(a.get().status, append_status::appended);
  EXPECT_EQ(b.get().status, append_status::appended);
  EXPECT_EQ(read_all("s"), "012345678x");
}

TEST_F(stream_engine_test, appends_to_missing_or_mismatched_streams_are_refused) {
  EXPECT_EQ(append("missing", "x").status, append_status::not_found);
  ASSERT_EQ(create("s", "text/plain").status, create_status::created);
  EXPECT_EQ(append_async(data_request("s", "{}", "application/json")).get().status,
            append_status::content_type_mismatch);
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{0});
}

TEST_F(stream_engine_test, forks_of_missing_sources_or_beyond_the_tail_are_refused) {
  create_request f = fork_request("fork", "nothing");
  EXPECT_EQ(create(f).status, create_status::source_not_found);
  ASSERT_EQ(create("src").status, create_status::created);
  f.fork_source_path = "src";
  f.fork_offset = offset_at("src", stream_position{5});
  EXPECT_EQ(create(f).status, create_status::invalid);
  f.fork_offset = stream_offset{12345, stream_position{0}};  // minted for another stream
  EXPECT_EQ(create(f).status, create_status::invalid);
  f.fork_offset.reset();
  f.content_type = "application/json";
  EXPECT_EQ(create(f).status, create_status::config_conflict);
  EXPECT_EQ(engine_->find("fork"), nullptr);
}

TEST_F(stream_engine_test, a_failed_create_leaves_nothing_behind) {
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "create.after_insert") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  create_request c;
  c.path = "s";
  c.initial_data = "body";
  EXPECT_EQ(create(c).status, create_status::failed);
  EXPECT_EQ(engine_->find("s"), nullptr);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM streams"), 0);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages), 0);
}

// Regression: once retention removed every message, the derived tail fell back to zero and the
// next append reused position 1.
TEST_F(stream_engine_test, positions_are_never_reused_after_retention_removed_every_message) {
  ASSERT_EQ(create("feed").status, create_status::created);
  append("feed", "a");
  append("feed", "b");
  stream_id id = engine_->find("feed")->config().id;
  std::promise<std::optional<failure>> pruned;
  write_job job;
  job.run = [id](write_context& ctx) { return ctx.prune(id, stream_position{2}); };
  job.done = [&](const std::optional<failure>& f) { pruned.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  ASSERT_FALSE(pruned.get_future().get());
  EXPECT_EQ(engine_->find("feed")->state().pruned_upto, stream_position{2});
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages), 0);
  EXPECT_EQ(append("feed", "c").tail, stream_position{3});
  open();
  EXPECT_EQ(engine_->find("feed")->state().pruned_upto, stream_position{2});
  EXPECT_EQ(engine_->find("feed")->state().tail, stream_position{3});
  EXPECT_EQ(append("feed", "d").tail, stream_position{4});
}

// Regression: a write job that failed returned a bare false, and `done` was told "no failure",
// so background jobs (the reaper, change-feed retention) lost their errors without a log line.
TEST_F(stream_engine_test, a_write_job_that_fails_gets_its_failure_and_keeps_nothing) {
  ASSERT_EQ(create("s").status, create_status::created);
  stream_id id = engine_->find("s")->config().id;
  std::promise<std::optional<failure>> refused;
  write_job job;
  job.run = [id](write_context& ctx) -> status {
    if (auto appended = ctx.append(id, "half-done"); !appended) return std::move(appended).error();
    return make_failure(failure_kind::conflict, "refused_on_purpose", "the job said no");
  };
  job.done = [&](const std::optional<failure>& f) { refused.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  std::optional<failure> f = refused.get_future().get();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->code, "refused_on_purpose");
  EXPECT_EQ(engine_->find("s")->state().tail,
            stream_position{0});  // its append was rolled back and not shown
  EXPECT_EQ(append("s", "after").tail, stream_position{1});  // the position was not used up
  EXPECT_EQ(read_all("s"), "after");
}

TEST_F(stream_engine_test, a_read_meeting_a_prune_committed_but_not_yet_published_says_pruned) {
  ASSERT_EQ(create("feed").status, create_status::created);
  append("feed", "a");
  append("feed", "b");
  append("feed", "c");
  open();  // a fresh engine: reads come from the file, not from the tail cache
  auto record = engine_->find("feed");
  stream_id id = record->config().id;
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  std::promise<std::optional<failure>> pruned;
  write_job job;
  job.run = [id](write_context& ctx) { return ctx.prune(id, stream_position{2}); };
  job.done = [&](const std::optional<failure>& f) { pruned.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  flush.wait_until_held();  // committed: readers see the rows gone; published only after this
  EXPECT_EQ(record->state().pruned_upto, stream_position{0});
  std::promise<read_result> read;
  engine_->read(record, stream_position{0}, [&](read_result r) { read.set_value(std::move(r)); });
  read_result r = read.get_future().get();
  EXPECT_FALSE(r.chunk);
  EXPECT_EQ(r.error.code, "offset_pruned") << r.error.message;
  flush.release();
  EXPECT_FALSE(pruned.get_future().get());
  EXPECT_EQ(record->state().pruned_upto, stream_position{2});
}

}  // namespace
}  // namespace ordo::engine_test
