// How a caller steers a long engine call: a should-stop check polled between batches (cancellation,
// deadlines) and a progress sink. The engine never knows who asked (an RPC, the CLI, a test).
// Both callbacks are invoked on the calling thread; either may be empty.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace attattr::engine {

struct Progress {
  std::string stage;  // e.g. "attribution"
  int64_t done = 0;   // items finished in this stage
  int64_t total = 0;  // items in this stage
};

struct RunControl {
  // Returns true to stop; the engine then returns absl::CancelledError at the next batch boundary.
  std::function<bool()> should_stop;
  // Called after each batch.
  std::function<void(const Progress&)> on_progress;

  bool ShouldStop() const { return should_stop && should_stop(); }
  void Report(const Progress& p) const {
    if (on_progress) on_progress(p);
  }
};

}  // namespace attattr::engine
