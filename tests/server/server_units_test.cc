// Unit tests of the server's pure parts: the one absl→gRPC status mapping (every code), fp16
// packing, ServerConfig validation naming the option, the flag parser (command line and --config
// files), the timer queue and job event fan-out.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "attattr/base/host_resources.h"
#include "attattr/engine/half_float.h"
#include "event_log.h"
#include "jobs/job_events.h"
#include "nlohmann/json.hpp"
#include "pool_retry.h"
#include "proto_convert.h"
#include "server_config.h"
#include "server_flags.h"
#include "spdlog/sinks/ostream_sink.h"
#include "status_convert.h"
#include "stream_slots.h"
#include "support/test_paths.h"
#include "timer_queue.h"

namespace attattr::server {
namespace {

using engine::FloatToHalf;
using engine::HalfToFloat;

TEST(StatusConvertTest, EveryCanonicalCodeMapsToTheSameGrpcCode) {
  const std::pair<absl::StatusCode, grpc::StatusCode> pairs[] = {
      {absl::StatusCode::kOk, grpc::StatusCode::OK},
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  for (const auto& [absl_code, grpc_code] : pairs) {
    EXPECT_EQ(ToGrpcCode(absl_code), grpc_code) << static_cast<int>(absl_code);
    const auto s = ToGrpcStatus(absl::Status(absl_code, "field: why"));
    EXPECT_EQ(s.error_code(), grpc_code);
    if (absl_code != absl::StatusCode::kOk) {
      EXPECT_EQ(s.error_message(), "field: why");
    }
  }
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
}

TEST(HalfPrecisionTest, ExactValuesAndRounding) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);  // largest half
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);      // overflow -> inf
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);             // rounds to zero
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie to even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  for (float v : {0.1f, -3.14159f, 1e-5f, 123.456f, 6.1e-5f}) {
    // Relative 2^-11 for normal halves; absolute 2^-25 (half the subnormal step) below 2^-14.
    const double tol = std::max(std::fabs(v) * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
    EXPECT_NEAR(HalfToFloat(FloatToHalf(v)), v, tol) << v;
  }
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half round-trips
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h);
  }
}

TEST(ServerFlagsTest, CommandLineAndConfigFile) {
  const testing::TempDir tmp("attattr-flags");
  const std::string dir = tmp.path();
  const std::string ini = dir + "/attattr.ini";
  std::ofstream(ini) << "models=/m\njob-runners=3\nmax-result-mib=8\n";
  absl::StatusOr<ServerFlags> flags =
      ParseServerFlags({"--config", ini, "--workers", "2", "--grace-seconds", "7"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->config.models_dir, "/m");
  EXPECT_EQ(flags->config.job_runners, 3);
  EXPECT_EQ(flags->config.workers, 2);
  EXPECT_EQ(flags->config.max_result_bytes, int64_t{8} << 20);
  EXPECT_EQ(flags->grace_seconds, 7);

  absl::StatusOr<ServerFlags> help = ParseServerFlags({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_TRUE(help->help_requested);
  EXPECT_NE(help->help.find("--max-job-work"), std::string::npos);

  absl::StatusOr<ServerFlags> unknown = ParseServerFlags({"--models", "/m", "--workrs", "2"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("--workrs"), std::string::npos) << unknown.status();
  EXPECT_NE(unknown.status().message().find("usage: attattr-server"), std::string::npos);

  std::ofstream(ini) << "models=/m\nworkers=lots\n";
  absl::StatusOr<ServerFlags> typed = ParseServerFlags({"--config", ini});
  EXPECT_EQ(typed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(typed.status().message().find("workers"), std::string::npos) << typed.status();
}

TEST(ServerFlagsTest, DefaultPrecisionIsFp32OrWhatTheFlagSays) {
  absl::StatusOr<ServerFlags> plain = ParseServerFlags({"--models", "/m"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->config.default_precision, engine::Precision::kFp32);
  absl::StatusOr<ServerFlags> bf16 =
      ParseServerFlags({"--models", "/m", "--default-precision", "bf16"});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->config.default_precision, engine::Precision::kBf16);
  absl::StatusOr<ServerFlags> bad =
      ParseServerFlags({"--models", "/m", "--default-precision", "fp64"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--default-precision"), std::string::npos) << bad.status();
}

// --weights bf16 makes bf16 the default precision (fp32 would be refused on every request);
// asking for fp32 beside it is a start-up error naming the flag.
TEST(ServerFlagsTest, Bf16WeightsDefaultToBf16Precision) {
  absl::StatusOr<ServerFlags> bf16 = ParseServerFlags({"--models", "/m", "--weights", "bf16"});
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->config.weights, engine::Precision::kBf16);
  EXPECT_EQ(bf16->config.default_precision, engine::Precision::kBf16);
  absl::StatusOr<ServerFlags> clash =
      ParseServerFlags({"--models", "/m", "--weights", "bf16", "--default-precision", "fp32"});
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(clash.status().message().find("--default-precision"), std::string::npos)
      << clash.status();
  absl::StatusOr<ServerFlags> bad = ParseServerFlags({"--models", "/m", "--weights", "int8"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--weights"), std::string::npos) << bad.status();
}

// Regression (seen while writing tests/fuzz/server_flags_fuzz.cc): a MiB value above 2^43
// overflowed the signed shift to bytes (undefined behaviour) instead of being refused.
TEST(ServerFlagsTest, HugeMibValuesAreRefusedNotOverflowed) {
  absl::StatusOr<ServerFlags> huge =
      ParseServerFlags({"--models", "/m", "--max-dataset-mib", "9223372036854775807"});
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("--max-dataset-mib"), std::string::npos) << huge.status();
  absl::StatusOr<ServerFlags> negative =
      ParseServerFlags({"--models", "/m", "--memory-budget-mib", "-1"});
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
}

// A database password on the command line is readable by every local user (ps, /proc): refused
// there, without repeating it; the same URI from the environment (ATTATTR_STORE) is accepted.
TEST(ServerFlagsTest, StorePasswordsStayOffTheCommandLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--models", "/m", "--store=postgresql://u:hunter2@db/jobs"},
        std::vector<std::string>{"--models", "/m", "--store",
                                 "postgres://db/jobs?password=hunter2"}}) {
    absl::StatusOr<ServerFlags> flags = ParseServerFlags(args);
    EXPECT_EQ(flags.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(flags.status().message().find("--store"), std::string::npos) << flags.status();
    EXPECT_EQ(flags.status().message().find("hunter2"), std::string::npos) << flags.status();
  }
  setenv("ATTATTR_STORE", "postgresql://u:hunter2@db/jobs", 1);
  absl::StatusOr<ServerFlags> from_env = ParseServerFlags({"--models", "/m"});
  unsetenv("ATTATTR_STORE");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->config.store, "postgresql://u:hunter2@db/jobs");
  absl::StatusOr<ServerFlags> file_store =
      ParseServerFlags({"--models", "/m", "--store-password-file", "/run/pw"});
  EXPECT_NE(file_store.status().message().find("--store-password-file"), std::string::npos)
      << file_store.status();
  absl::StatusOr<ServerFlags> connections = ParseServerFlags(
      {"--models", "/m", "--store", "postgresql://db/jobs", "--store-connections", "0"});
  EXPECT_NE(connections.status().message().find("--store-connections"), std::string::npos)
      << connections.status();
}

TEST(ServerConfigTest, ValidateNamesTheOption) {
  ServerConfig c;
  EXPECT_NE(std::string(c.Validate().message()).find("--models"), std::string::npos);
  c.models_dir = "/models";
  EXPECT_TRUE(c.Validate().ok());
  auto expect = [&](ServerConfig bad, const std::string& option) {
    auto s = bad.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(s.message()).find(option), std::string::npos) << s.message();
  };
  ServerConfig b = c;
  b.listen = "localhost";
  expect(b, "--listen");
  b = c;
  b.metrics_listen = "x:99999";
  expect(b, "--metrics-listen");
  b = c;
  b.workers = -1;
  expect(b, "--workers");
  b = c;
  b.workers = 65;
  expect(b, "--workers");
  b = c;
  b.max_steps = 2000;
  expect(b, "--max-steps");
  b = c;
  b.intra_op_threads = 1025;  // the chart's schema holds the same range
  expect(b, "--threads: must be in [0, 1024]");
  b = c;
  b.job_threads = -1;
  expect(b, "--job-threads: must be in [0, 1024]");
  b = c;
  b.cpus = 4097;  // the chart's schema holds the same range
  expect(b, "--cpus: must be in [0, 4096]");
  b = c;
  // --cpus caps the usable cores (a pod's CPU request), never raises them.
  EXPECT_EQ(b.EffectiveCpus(), attattr::UsableCpus());
  b.cpus = 1;
  EXPECT_EQ(b.EffectiveCpus(), 1);
  b.cpus = 4096;
  EXPECT_EQ(b.EffectiveCpus(), attattr::UsableCpus());
  b = c;
  b.log_format = "xml";
  expect(b, "--log-format");
  b = c;
  b.job_runners = 0;
  expect(b, "--job-runners");
  b = c;
  b.batch_max_examples = -1;
  expect(b, "--batch-max-examples");
  b = c;
  EXPECT_EQ(b.EffectiveBatchMaxExamples(), 1);  // by device: CPU
  b.device = "cuda:0";
  EXPECT_EQ(b.EffectiveBatchMaxExamples(), 8);
  b.batch_max_examples = 3;
  EXPECT_EQ(b.EffectiveBatchMaxExamples(), 3);
  b = c;
  b.batch_max_delay_us = -1;
  expect(b, "--batch-max-delay-us");
  b = c;
  b.max_queued_jobs = 0;
  expect(b, "--max-queued-jobs");
  b = c;
  b.store = "";
  expect(b, "--store");
  b = c;
  b.retention_seconds = 0;
  expect(b, "--retention-seconds");
  b = c;
  b.max_result_bytes = 1000;
  expect(b, "--max-result-mib");
  b = c;
  b.metrics_listen = "";
  EXPECT_TRUE(b.Validate().ok());
  // Regression (security review): '*' as an administrator ended tenant isolation silently.
  b = c;
  b.admin_principals = {"root", "*"};
  expect(b, "--admin-principals: '*' would make every principal an administrator");
  b = c;
  b.export_principals = {"*"};
  b.dataset_principals = {"*"};
  EXPECT_TRUE(b.Validate().ok());
  b = c;
  b.max_streams_per_principal = 0;
  expect(b, "--max-streams-per-principal: must be in [1, 100000]");
}

// Each key holds at most max_per_key slots; a slot goes back when destroyed or moved over, and
// keys do not share their bound.
TEST(StreamSlotsTest, BoundsEachKeyAndGivesSlotsBackOnDestruction) {
  StreamSlots slots(2);
  StreamSlots::Slot a = slots.TryAcquire("alice");
  StreamSlots::Slot b = slots.TryAcquire("alice");
  EXPECT_TRUE(a.held() && b.held());
  EXPECT_FALSE(slots.TryAcquire("alice").held());
  EXPECT_EQ(slots.Held("alice"), 2);
  {
    StreamSlots::Slot bob = slots.TryAcquire("bob");
    EXPECT_TRUE(bob.held());
    EXPECT_EQ(slots.Held("bob"), 1);
  }
  EXPECT_EQ(slots.Held("bob"), 0);
  StreamSlots::Slot moved = std::move(a);  // still one slot, now owned by `moved`
  EXPECT_FALSE(a.held());                  // NOLINT(bugprone-use-after-move): the point
  EXPECT_EQ(slots.Held("alice"), 2);
  moved = StreamSlots::Slot();  // assigning over a held slot gives it back
  EXPECT_EQ(slots.Held("alice"), 1);
  StreamSlots::Slot again = slots.TryAcquire("alice");
  EXPECT_TRUE(again.held());
  EXPECT_FALSE(slots.TryAcquire("alice").held());
  // Concurrent takers never exceed the bound.
  StreamSlots many(3);
  std::atomic<int> held{0}, peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        StreamSlots::Slot s = many.TryAcquire("k");
        if (!s.held()) continue;
        const int now = ++held;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        --held;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 3);
  EXPECT_EQ(many.Held("k"), 0);
}

TEST(TimerQueueTest, RunsInDeadlineOrderAndCancelIsSynchronous) {
  TimerQueue timers;
  std::mutex mu;
  std::vector<int> fired;
  const auto now = TimerQueue::Clock::now();
  timers.Schedule(now + std::chrono::milliseconds(60), [&] {
    std::lock_guard<std::mutex> lock(mu);
    fired.push_back(2);
  });
  timers.Schedule(now + std::chrono::milliseconds(20), [&] {
    std::lock_guard<std::mutex> lock(mu);
    fired.push_back(1);
  });
  const auto cancelled = timers.Schedule(now + std::chrono::milliseconds(40), [&] {
    std::lock_guard<std::mutex> lock(mu);
    fired.push_back(99);
  });
  timers.Cancel(cancelled);
  // A callback that is running when Cancel is called finishes before Cancel returns.
  std::atomic<bool> inside{false}, finished{false};
  const auto slow = timers.Schedule(now, [&] {
    inside = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  });
  while (!inside) std::this_thread::yield();
  timers.Cancel(slow);
  EXPECT_TRUE(finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

// A pool whose one worker is held until Release and whose one waiting place is taken: full.
class FullPool {
 public:
  FullPool() {
    EXPECT_TRUE(pool.TrySchedule([this] {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return released_; });
    }));
    while (pool.Queued() != 0) std::this_thread::yield();  // the worker holds the first task
    EXPECT_TRUE(pool.TrySchedule([] {}));
    EXPECT_FALSE(pool.TrySchedule([] {}));
  }
  ~FullPool() { Release(); }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  WorkerPool pool{1, 1};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

TEST(PoolRetryTest, RunsTheTaskOnceThePoolHasRoomAgain) {
  TimerQueue timers;
  FullPool full;
  PoolRetry retry(full.pool, timers, PoolRetry::Options{});
  std::atomic<int> ran{0}, gave_up{0};
  retry.Start(
      "k", [&] { ++ran; }, [&] { ++gave_up; }, [] { return false; });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // several tries, all refused
  EXPECT_EQ(ran, 0);
  full.Release();
  for (int i = 0; i < 500 && ran == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(gave_up, 0);
}

TEST(PoolRetryTest, GivesUpAfterMaxWaitOrWhenStopped) {
  TimerQueue timers;
  FullPool full;
  PoolRetry::Options options;
  options.max_wait = std::chrono::milliseconds(150);
  std::atomic<int> ran{0}, gave_up{0};
  {
    PoolRetry retry(full.pool, timers, options);
    const auto start = std::chrono::steady_clock::now();
    retry.Start(
        "k", [&] { ++ran; }, [&] { ++gave_up; }, [] { return false; });
    while (gave_up == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, options.max_wait);  // not before max_wait
    EXPECT_LT(waited, std::chrono::seconds(5));
  }
  // Stopped (the call was cancelled) while waiting: gives up at the next try, well before max_wait.
  options.max_wait = std::chrono::seconds(60);
  std::atomic<bool> stop{false};
  PoolRetry retry(full.pool, timers, options);
  retry.Start(
      "k", [&] { ++ran; }, [&] { ++gave_up; }, [&] { return stop.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(gave_up, 1);
  stop = true;
  for (int i = 0; i < 1000 && gave_up == 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(gave_up, 2);
  full.Release();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ran, 0);
}

TEST(PoolRetryTest, DestroyedWhileWaitingRunsNeitherCallback) {
  TimerQueue timers;
  FullPool full;
  std::atomic<int> calls{0};
  {
    PoolRetry retry(full.pool, timers, PoolRetry::Options{});
    retry.Start(
        "k", [&] { ++calls; }, [&] { ++calls; }, [] { return false; });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  full.Release();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(calls, 0);
}

TEST(JobEventsTest, DeliversToSubscribersOfTheJobUntilUnsubscribed) {
  JobEvents events;
  int a = 0, b = 0, stopping = 0;
  // Publication numbers as each subscriber saw them: distinct per Publish, shared by the
  // subscribers of one.
  std::vector<uint64_t> seen_a, seen_a2, seen_b;
  auto ta = events.Subscribe(
      "jobs/a", [&](JobEvents::Kind kind, const store::JobRecord& r, uint64_t publication) {
        EXPECT_EQ(r.id, "jobs/a");
        if (kind == JobEvents::Kind::kServerStopping) ++stopping;
        ++a;
        seen_a.push_back(publication);
      });
  auto ta2 =
      events.Subscribe("jobs/a", [&](JobEvents::Kind, const store::JobRecord&,
                                     uint64_t publication) { seen_a2.push_back(publication); });
  events.Subscribe("jobs/b", [&](JobEvents::Kind, const store::JobRecord&, uint64_t publication) {
    ++b;
    seen_b.push_back(publication);
  });
  store::JobRecord r;
  r.id = "jobs/a";
  events.Publish(r);
  events.Publish(r, JobEvents::Kind::kDeleted);
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 0);
  events.StopAll();
  EXPECT_EQ(stopping, 1);
  EXPECT_EQ(b, 1);
  ASSERT_EQ(seen_a.size(), 3u);
  EXPECT_EQ(seen_a, seen_a2);
  EXPECT_LT(seen_a[0], seen_a[1]);
  EXPECT_LT(seen_a[1], seen_a[2]);
  EXPECT_EQ(seen_b, (std::vector<uint64_t>{seen_a[2]}));  // StopAll is one publication
  events.Unsubscribe(ta2);
  events.Unsubscribe(ta);
  events.Publish(r);
  EXPECT_EQ(a, 3);
  EXPECT_EQ(events.SubscriberCount(), 1);
  // A callback may unsubscribe itself.
  JobEvents::Token self = 0;
  int calls = 0;
  self = events.Subscribe("jobs/c", [&](JobEvents::Kind, const store::JobRecord&, uint64_t) {
    ++calls;
    events.Unsubscribe(self);
  });
  r.id = "jobs/c";
  events.Publish(r);
  events.Publish(r);
  EXPECT_EQ(calls, 1);
}

TEST(EventLogTest, JsonLinesCarryTheFieldsAsTypedMembers) {
  std::ostringstream out;
  const EventLog log(
      MakeLogger("json", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)), "json");
  log.Info("rpc", {{"method", "GetJob"},
                   {"code", "INVALID_ARGUMENT"},
                   {"latency_ms", 0.126},
                   {"request_id", ""},
                   {"job_id", "jobs/ab"},
                   {"peer", "ipv4:127.0.0.1:1"},
                   {"error", "name: 'x' is not a job name (\"jobs/<id>\")\n\tnext"}});
  log.Debug("not shown at info");
  log.Warn("plain message", {{"attempt", 3}});
  std::istringstream lines(out.str());
  std::string line;
  std::vector<nlohmann::json> parsed;
  while (std::getline(lines, line)) parsed.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(parsed.size(), 2u) << out.str();
  const auto& rpc = parsed[0];
  EXPECT_EQ(rpc["level"], "info");
  EXPECT_EQ(rpc["method"], "GetJob");
  EXPECT_EQ(rpc["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(rpc["job_id"], "jobs/ab");
  EXPECT_DOUBLE_EQ(rpc["latency_ms"].get<double>(), 0.126);
  EXPECT_FALSE(rpc.contains("request_id"));  // empty means none
  EXPECT_EQ(rpc["error"], "name: 'x' is not a job name (\"jobs/<id>\")\n\tnext");
  EXPECT_EQ(rpc["message"].get<std::string>().rfind("rpc method=GetJob code=INVALID_ARGUMENT "
                                                    "latency_ms=0.13 request_id=- job_id=jobs/ab",
                                                    0),
            0u)
      << rpc["message"];
  EXPECT_EQ(parsed[1]["message"], "plain message attempt=3");
  EXPECT_EQ(parsed[1]["attempt"], 3);
  EXPECT_EQ(parsed[1]["level"], "warning");
}

TEST(EventLogTest, AFieldValueCannotForgeAnother) {
  std::ostringstream out;
  const EventLog log(
      MakeLogger("json", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)), "json");
  // A client-chosen request id that looks like more fields, and a forged level.
  log.Info("rpc",
           {{"request_id", "x job_id=jobs/evil code=OK\",\"level\":\"error"}, {"level", "error"}});
  const auto j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["request_id"], "x job_id=jobs/evil code=OK\",\"level\":\"error");
  EXPECT_FALSE(j.contains("job_id"));
  EXPECT_FALSE(j.contains("code"));
  EXPECT_EQ(j["level"], "info");
}

// A client's value with a newline used to split a text log line (a forged second line); a huge
// one used to be written whole.
TEST(EventLogTest, ControlCharactersAreEscapedAndLongValuesCut) {
  std::ostringstream text;
  const EventLog log(
      MakeLogger("text", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(text)), "text");
  log.Info("rpc", {{"job_id", "jobs/x\n2026-01-01 00:00:00.000 error forged"},
                   {"request_id", std::string(1 << 20, 'r')}});
  const std::string line = text.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_NE(line.find("job_id=jobs/x\\n2026"), std::string::npos) << line;
  EXPECT_LT(line.size(), 4096u);
  EXPECT_NE(line.find("(1048576 bytes)"), std::string::npos);
  std::ostringstream json;
  const EventLog jlog(
      MakeLogger("json", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(json)), "json");
  jlog.Info("rpc", {{"request_id", std::string(1 << 20, 'r')}});
  EXPECT_LT(json.str().size(), 8192u);
  EXPECT_NE(nlohmann::json::parse(json.str())["request_id"].get<std::string>().find("bytes)"),
            std::string::npos);
}

TEST(EventLogTest, TextLinesPutTheErrorLast) {
  std::ostringstream text;
  const EventLog log(
      MakeLogger("text", "info", std::make_shared<spdlog::sinks::ostream_sink_mt>(text)), "text");
  log.Info("job finished", {{"job_id", "jobs/x"}, {"error", "it broke"}, {"state", "FAILED"}});
  EXPECT_NE(text.str().find(" info job finished job_id=jobs/x state=FAILED error=it broke\n"),
            std::string::npos)
      << text.str();
}

}  // namespace
}  // namespace attattr::server
