// Names the calling thread for `top -H`, `perf report --sort comm` and /proc/PID/task/*/comm, so
// an operator (and issue 19's cost table) can tell the network threads, the writer, the WAL
// syncer and the reader pool apart.
#pragma once

#include <string>

namespace ordo {

// Linux keeps at most 15 characters; longer names are cut. Failure is ignored: a name is a help,
// never a requirement.
void name_this_thread(const std::string& name);

}  // namespace ordo
