// session_tables' pull requests against a real SQLite file: a PR, its checks and its comments
// round-trip. Error paths: an unknown stored fact or check status reads as a damaged database.
#include "storage/sqlite/session_tables_test_fixture.hpp"

namespace ordo::sqlite::tables_test {
namespace {

TEST_P(session_tables_test, a_pull_request_its_checks_and_comments_round_trip) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  const std::string url = "https://example.com/pr/1";
  ASSERT_TRUE(tables_->insert_pr(pr("https://example.com/pr/2", "s1", 200)));
  ASSERT_TRUE(tables_->insert_pr(pr(url, "s1", 100)));
  pr_row p = pr(url, "s1", 100);
  p.number = 1;
  p.title = "Fix";
  p.state = pr_state::merged;
  p.review_decision = review_decision::approved;
  p.mergeability = mergeability::mergeable;
  p.ci_state = ci_state::passing;
  p.head_commit = "abc";
  p.revision = 3;
  p.next_check_seq = 3;
  p.updated_at_ms = 500;
  ASSERT_TRUE(tables_->update_pr(p));
  auto read = tables_->pr(url);
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->number, 1);
  EXPECT_EQ((*read)->title, "Fix");
  EXPECT_EQ((*read)->state, pr_state::merged);
  EXPECT_EQ((*read)->review_decision, review_decision::approved);
  EXPECT_EQ((*read)->mergeability, mergeability::mergeable);
  EXPECT_EQ((*read)->ci_state, ci_state::passing);
  EXPECT_EQ((*read)->head_commit, "abc");
  EXPECT_EQ((*read)->revision, 3);
  EXPECT_EQ((*read)->next_check_seq, 3);
  EXPECT_EQ((*read)->created_at_ms, 100);
  auto of_session = tables_->prs_of_session("s1");
  ASSERT_TRUE(of_session);
  ASSERT_EQ(of_session->size(), 2u);
  EXPECT_EQ((*of_session)[0].url, url) << "ordered by creation time";

  // Checks: listed in the order first seen, whatever their names.
  check_row zed{url,          "zed",        "abc",        1, check_status::queued,
                std::nullopt, std::nullopt, std::nullopt, 1, 1};
  check_row alpha{url, "alpha",      "abc", 2, check_status::in_progress, "https://ci/2",
                  10,  std::nullopt, 2,     2};
  ASSERT_TRUE(tables_->insert_check(zed));
  ASSERT_TRUE(tables_->insert_check(alpha));
  zed.status = check_status::success;
  zed.completed_at_ms = 20;
  zed.updated_at_ms = 20;
  ASSERT_TRUE(tables_->update_check(zed));
  auto c = tables_->check(url, "zed", "abc");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, check_status::success);
  EXPECT_EQ((*c)->completed_at_ms, 20);
  EXPECT_FALSE((*c)->url);
  auto other_commit = tables_->check(url, "zed", "def");
  ASSERT_TRUE(other_commit);
  EXPECT_FALSE(*other_commit);
  auto checks = tables_->checks_of_pr(url);
  ASSERT_TRUE(checks);
  ASSERT_EQ(checks->size(), 2u);
  EXPECT_EQ((*checks)[0].name, "zed");
  EXPECT_EQ((*checks)[1].name, "alpha");
  EXPECT_EQ((*checks)[1].url, "https://ci/2");

  // Comments: insert, update, delete.
  comment_row later{url, "c2", "bob", "second", std::nullopt, std::nullopt, false, 60, 60};
  comment_row earlier{url, "c1", std::nullopt, "first", "src/a.cpp", 12, false, 50, 50};
  ASSERT_TRUE(tables_->insert_comment(later));
  ASSERT_TRUE(tables_->insert_comment(earlier));
  earlier.resolved = true;
  earlier.body = "first, edited";
  earlier.updated_at_ms = 70;
  ASSERT_TRUE(tables_->update_comment(earlier));
  auto comments = tables_->comments_of_pr(url);
  ASSERT_TRUE(comments);
  ASSERT_EQ(comments->size(), 2u);
  EXPECT_EQ((*comments)[0].comment_id, "c1");
  EXPECT_TRUE((*comments)[0].resolved);
  EXPECT_EQ((*comments)[0].body, "first, edited");
  EXPECT_EQ((*comments)[0].path, "src/a.cpp");
  EXPECT_EQ((*comments)[0].line, 12);
  EXPECT_FALSE((*comments)[0].author);
  EXPECT_EQ((*comments)[1].author, "bob");
  ASSERT_TRUE(tables_->delete_comment(url, "c2"));
  comments = tables_->comments_of_pr(url);
  ASSERT_TRUE(comments);
  ASSERT_EQ(comments->size(), 1u);
  EXPECT_EQ((*comments)[0].comment_id, "c1");

  auto missing = tables_->pr("https://example.com/none");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_P(session_tables_test, a_pr_fact_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  int n = 0;
  for (const auto& [column, text] : {std::pair<std::string, std::string>{"state", "draft"},
                                     {"review_decision", "meh"},
                                     {"mergeability", "maybe"},
                                     {"ci_state", "green"}}) {
    std::string url = "https://example.com/pr/" + std::to_string(++n);
    ASSERT_TRUE(tables_->insert_pr(pr(url, "s1", n)));
    write_behind_ordos_back("UPDATE prs SET " + column + " = '" + text + "' WHERE url = '" + url +
                            "'");
    EXPECT_TRUE(damaged(tables_->pr(url), "prs." + column + " holds '" + text + "'"));
  }
  EXPECT_TRUE(damaged(tables_->prs_of_session("s1"), "prs.state"));
}

TEST_P(session_tables_test, a_check_status_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  const std::string url = "https://example.com/pr/1";
  ASSERT_TRUE(tables_->insert_pr(pr(url, "s1", 1)));
  ASSERT_TRUE(tables_->insert_check({url, "build", "abc", 1, check_status::queued, std::nullopt,
                                     std::nullopt, std::nullopt, 1, 1}));
  write_behind_ordos_back("UPDATE pr_checks SET status = 'flaky'");
  EXPECT_TRUE(damaged(tables_->check(url, "build", "abc"), "pr_checks.status holds 'flaky'"));
  EXPECT_TRUE(damaged(tables_->checks_of_pr(url), "pr_checks.status"));
}

}  // namespace
}  // namespace ordo::sqlite::tables_test
