// Must not compile under -Wthread-safety -Werror: calls a function that REQUIRES the lock
// without holding it, and reads after unlock() (check.sh expects errors naming both).
#include "base/thread_annotations.hpp"

namespace {

class counter {
 public:
  void add() { add_locked(); }
  int read_after_unlock() {
    ordo::mutex_lock lock(mu_);
    lock.unlock();
    return count_;
  }

 private:
  void add_locked() REQUIRES(mu_) { ++count_; }

  ordo::mutex mu_;
  int count_ GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  counter c;
  c.add();
  return c.read_after_unlock();
}
