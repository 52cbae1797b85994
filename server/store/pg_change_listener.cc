// PgChangeListener (see pg_change_listener.h): libpqxx's notification_receiver on a dedicated
// connection, polled with await_notification so the stop flag is seen twice a second.
#include "store/pg_change_listener.h"

#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>
#include <utility>

namespace attattr::store {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection& connection, const std::string& channel,
           const ChangeCallbacks& callbacks, const std::function<bool(int)>& is_own)
      : pqxx::notification_receiver(connection, channel), callbacks_(callbacks), is_own_(is_own) {}
  void operator()(const std::string& payload, int backend_pid) override {
    if (is_own_ && is_own_(backend_pid)) return;
    if (callbacks_.on_change) callbacks_.on_change(payload);
  }

 private:
  const ChangeCallbacks& callbacks_;
  const std::function<bool(int)>& is_own_;
};

}  // namespace

PgChangeListener::PgChangeListener(std::string conninfo, std::string channel,
                                   ChangeCallbacks callbacks,
                                   std::function<bool(int backend_pid)> is_own)
    : conninfo_(std::move(conninfo)),
      channel_(std::move(channel)),
      callbacks_(std::move(callbacks)),
      is_own_(std::move(is_own)),
      thread_([this] { Loop(); }) {}

PgChangeListener::~PgChangeListener() {
  stop_ = true;
  thread_.join();
}

void PgChangeListener::Loop() {
  auto backoff = std::chrono::milliseconds(100);
  bool interrupted = false;
  while (!stop_) {
    try {
      pqxx::connection connection(conninfo_);
      Receiver receiver(connection, channel_, callbacks_, is_own_);
      connection.await_notification(0, 0);  // sends LISTEN
      listening_ = true;
      backoff = std::chrono::milliseconds(100);
      if (interrupted && callbacks_.on_resync) callbacks_.on_resync();
      interrupted = false;
      while (!stop_) connection.await_notification(0, 500000);
    } catch (const std::exception&) {
      listening_ = false;
      interrupted = true;
      const auto until = std::chrono::steady_clock::now() + backoff;
      while (!stop_ && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    }
  }
  listening_ = false;
}

}  // namespace attattr::store
