#include "base/thread_name.hpp"

#include <pthread.h>

namespace ordo {

void name_this_thread(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace ordo
