#include "base/handoff_batch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ordo {
namespace {

// A target that records each hand-off it gets and the calls in it.
struct target {
  std::vector<std::vector<int>> handoffs;
  std::vector<int> ran;
  handoff_batch::deliver deliver() {
    return [this](std::vector<handoff_batch::call> calls) {
      handoffs.emplace_back();
      for (auto& c : calls) {
        c();
        handoffs.back().push_back(ran.back());
      }
    };
  }
};

void add(target& t, int n) {
  handoff_batch::call c = [&t, n] { t.ran.push_back(n); };
  handoff_batch* batch = handoff_batch::current();
  ASSERT_NE(batch, nullptr);
  if (!batch->add(&t, c)) batch->add_target(&t, t.deliver(), std::move(c));
}

TEST(handoff_batch, each_target_gets_one_handoff_with_its_calls_in_order_when_the_scope_closes) {
  target a, b;
  {
    handoff_batch batch;
    add(a, 1);
    add(b, 2);
    add(a, 3);
    add(a, 4);
    EXPECT_TRUE(a.handoffs.empty());  // nothing is handed off while the batch is open
    EXPECT_TRUE(b.handoffs.empty());
  }
  EXPECT_EQ(a.handoffs, (std::vector<std::vector<int>>{{1, 3, 4}}));
  EXPECT_EQ(b.handoffs, (std::vector<std::vector<int>>{{2}}));
  EXPECT_EQ(handoff_batch::current(), nullptr);
}

TEST(handoff_batch, an_inner_batch_adds_to_the_outer_one) {
  target a;
  {
    handoff_batch outer;
    add(a, 1);
    {
      handoff_batch inner;
      EXPECT_EQ(handoff_batch::current(), &outer);
      add(a, 2);
    }
    EXPECT_TRUE(a.handoffs.empty());
    add(a, 3);
  }
  EXPECT_EQ(a.handoffs, (std::vector<std::vector<int>>{{1, 2, 3}}));
}

TEST(handoff_batch, without_a_batch_there_is_none_to_add_to) {
  EXPECT_EQ(handoff_batch::current(), nullptr);
  { handoff_batch batch; }
  EXPECT_EQ(handoff_batch::current(), nullptr);
}

}  // namespace
}  // namespace ordo
