// Compiles cleanly under -Wthread-safety -Werror: every way ordo's code takes base/
// thread_annotations.hpp's locks (check.sh).
#include <condition_variable>

#include "base/thread_annotations.hpp"

namespace {

class counter {
 public:
  void add() {
    ordo::mutex_lock lock(mu_);
    add_locked();
    changed_.notify_all();
  }
  bool wait_for_one() {
    ordo::mutex_lock lock(mu_);
    return lock.wait_for(changed_, std::chrono::milliseconds(1),
                         [&]() REQUIRES(mu_) { return count_ > 0; });
  }
  int read_twice() {
    ordo::mutex_lock lock(mu_);
    int first = count_;
    lock.unlock();
    lock.lock();
    return first + count_;
  }

 private:
  void add_locked() REQUIRES(mu_) { ++count_; }

  ordo::mutex mu_;
  std::condition_variable changed_;
  int count_ GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  counter c;
  c.add();
  return c.wait_for_one() && c.read_twice() == 2 ? 0 : 1;
}
