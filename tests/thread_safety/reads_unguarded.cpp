// Must not compile under -Wthread-safety -Werror: reads a guarded member without its lock
// (check.sh expects the error to name `count_`).
#include "base/thread_annotations.hpp"

namespace {

class counter {
 public:
  int read() { return count_; }

 private:
  ordo::mutex mu_;
  int count_ GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  counter c;
  return c.read();
}
