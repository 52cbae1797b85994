// PgChangeListener: one thread LISTENing on a PostgreSQL channel over a connection of its own,
// calling back for each notification other processes send (those whose backend `is_own` says are
// this process's are skipped). When the connection breaks it reconnects with backoff (0.1 s
// doubling to 5 s) and calls on_resync once it listens again, since notifications sent meanwhile
// are lost. Stops (joins its thread) on destruction, within about half a second.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "store/job_store.h"

namespace attattr::store {

class PgChangeListener {
 public:
  PgChangeListener(std::string conninfo, std::string channel, ChangeCallbacks callbacks,
                   std::function<bool(int backend_pid)> is_own);
  ~PgChangeListener();
  PgChangeListener(const PgChangeListener&) = delete;
  PgChangeListener& operator=(const PgChangeListener&) = delete;

  // True while the listening connection is up.
  bool listening() const { return listening_.load(); }

 private:
  void Loop();

  const std::string conninfo_;
  const std::string channel_;
  const ChangeCallbacks callbacks_;
  const std::function<bool(int)> is_own_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> listening_{false};
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace attattr::store
