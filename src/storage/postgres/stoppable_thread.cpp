#include "storage/postgres/stoppable_thread.hpp"

#include <poll.h>
#include <unistd.h>

#include "base/thread_name.hpp"

namespace ordo::postgres {

bool stoppable_thread::start(std::string name, std::function<void()> body) {
  if (::pipe(fds_) != 0) return false;
  thread_ = std::thread([name = std::move(name), body = std::move(body)] {
    name_this_thread(name);
    body();
  });
  return true;
}

void stoppable_thread::stop() {
  stopping_ = true;
  if (fds_[1] >= 0) (void)!::write(fds_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int& fd : fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

bool stoppable_thread::wait(std::chrono::milliseconds d) const {
  pollfd stop{fds_[0], POLLIN, 0};
  return ::poll(&stop, 1, static_cast<int>(d.count())) == 0 && !stopping_;
}

}  // namespace ordo::postgres
