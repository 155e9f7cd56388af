// `ordo demo`: a simulated coding agent that drives one realistic session against a running
// server, so the dashboard has something alive to show: a user request, assistant messages
// streamed in place, tool calls that start and complete, an approval request that blocks until
// approved, and a pull request whose CI fails, is fixed and passes. Commands sent to the session
// meanwhile (from the dashboard or `ordo session send`) are picked up and answered. At the end
// the execution finishes and the session is suspended (waiting for the next request).
#pragma once

#include <chrono>
#include <string>

namespace ordo::cli {

struct demo_flags {
  std::string server = "http://127.0.0.1:4437";
  std::string cacert;  // for an https:// server: the CA file trusted instead of the system's
  std::string project = "demo";
  // Pause between steps, between the chunks of a streamed message, and how long the approval
  // request stays pending.
  std::string step_delay = "700ms";
  std::string chunk_delay = "120ms";
  std::string approval_delay = "10s";
};

// The exit codes of the client commands (docs/CLI.md): 0 done, 1 refused, 3 not found,
// 4 unreachable or unavailable.
int demo(const demo_flags& flags);

}  // namespace ordo::cli
