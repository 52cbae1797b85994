// Unit tests for server/metrics/metrics.h: metric types, labels, name rules, exposition text,
// histogram buckets and concurrent updates. No network, no files (except /proc for the collector).
// Thread-safety: the concurrency test drives one registry from several threads.
#include "metrics/metrics.h"

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "metrics/gpu_memory_collector.h"
#include "metrics/process_collector.h"

namespace attattr::metrics {
namespace {

TEST(CounterTest, IncrementsAndIgnoresNegative) {
  Counter counter;
  EXPECT_EQ(counter.Value(), 0);
  counter.Increment();
  counter.Increment(2.5);
  counter.Increment(-10);
  counter.Increment(std::nan(""));
  EXPECT_DOUBLE_EQ(counter.Value(), 3.5);
}

TEST(GaugeTest, SetIncrementDecrement) {
  Gauge gauge;
  gauge.Set(10);
  gauge.Increment();
  gauge.Increment(4);
  gauge.Decrement(2.5);
  gauge.Decrement();
  EXPECT_DOUBLE_EQ(gauge.Value(), 11.5);
  gauge.SetToCurrentTime();
  EXPECT_GT(gauge.Value(), 1.6e9);
}

TEST(HistogramTest, BucketsAreUpperInclusiveAndCumulative) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 7.0}) h.Observe(v);
  const HistogramSnapshot s = h.Snapshot();
  ASSERT_EQ(s.buckets.size(), 3u);
  EXPECT_EQ(s.buckets[0], std::make_pair(1.0, uint64_t{2}));  // 0.5, 1.0 (le is inclusive)
  EXPECT_EQ(s.buckets[1], std::make_pair(2.0, uint64_t{4}));
  EXPECT_EQ(s.buckets[2], std::make_pair(5.0, uint64_t{5}));
  EXPECT_EQ(s.count, 6u);  // the +Inf bucket
  EXPECT_DOUBLE_EQ(s.sum, 15.0);
}

TEST(HistogramTest, ConstructorNormalisesBounds) {
  Histogram h({5, 1, 1, std::numeric_limits<double>::infinity(), 2});
  EXPECT_EQ(h.bounds(), (BucketBoundaries{1, 2, 5}));
}

TEST(HistogramTest, BucketHelpers) {
  EXPECT_EQ(LinearBuckets(1, 2, 3), (BucketBoundaries{1, 3, 5}));
  EXPECT_EQ(ExponentialBuckets(1, 10, 3), (BucketBoundaries{1, 10, 100}));
}

TEST(NameTest, MetricNames) {
  EXPECT_TRUE(ValidateMetricName("a").ok());
  EXPECT_TRUE(ValidateMetricName("job:rate_5m").ok());
  EXPECT_TRUE(ValidateMetricName("_x9").ok());
  for (const char* bad : {"", "9abc", "a-b", "a b", "é"}) {
    absl::Status status = ValidateMetricName(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find(std::string("'") + bad + "'"), std::string::npos)
        << status.message();
  }
}

TEST(NameTest, LabelNames) {
  EXPECT_TRUE(ValidateLabelName("method").ok());
  EXPECT_TRUE(ValidateLabelName("_a").ok());
  for (const char* bad : {"", "a:b", "1a", "__name__", "__x"}) {
    EXPECT_EQ(ValidateLabelName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RegistryTest, RefusesBadNamesNamingThem) {
  Registry registry;
  absl::StatusOr<Family<Counter>*> bad = registry.AddCounter("bad-name", "h");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad-name"), std::string::npos);

  absl::StatusOr<Family<Gauge>*> bad_const = registry.AddGauge("g", "h", {{"__secret", "x"}});
  ASSERT_EQ(bad_const.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_const.status().message().find("__secret"), std::string::npos);

  Family<Counter>* family = *registry.AddCounter("requests_total", "h", {{"service", "a"}});
  absl::StatusOr<Counter*> series = family->TryAdd({{"bad label", "x"}});
  ASSERT_EQ(series.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(series.status().message().find("bad label"), std::string::npos);
  EXPECT_EQ(family->TryAdd({{"service", "b"}}).status().code(),
            absl::StatusCode::kInvalidArgument);  // clashes with a constant label

  Family<Histogram>* hist = *registry.AddHistogram("latency_seconds", "h");
  EXPECT_EQ(hist->TryAdd({{"le", "1"}}, BucketBoundaries{1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hist->TryAdd({}, BucketBoundaries{2, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hist->TryAdd({}, BucketBoundaries{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RegistryTest, SameNameSameTypeMergesOtherTypeFails) {
  Registry registry;
  Family<Counter>* a = *registry.AddCounter("x_total", "h");
  Family<Counter>& b = BuildCounter().Name("x_total").Help("h").Register(registry);
  EXPECT_EQ(a, &b);
  absl::StatusOr<Family<Gauge>*> gauge = registry.AddGauge("x_total", "h");
  EXPECT_EQ(gauge.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(gauge.status().message().find("x_total"), std::string::npos);
  EXPECT_EQ(registry.AddCounter("x_total", "h", {{"a", "b"}}).status().code(),
            absl::StatusCode::kAlreadyExists);
  // Histogram series names.
  ASSERT_TRUE(registry.AddHistogram("lat", "h").ok());
  EXPECT_EQ(registry.AddCounter("lat_count", "h").status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddGauge("q_sum", "h").ok());
  EXPECT_EQ(registry.AddHistogram("q", "h").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(FamilyTest, SameLabelsSameObject) {
  Registry registry;
  Family<Counter>& family = BuildCounter().Name("rpcs_total").Help("RPCs").Register(registry);
  Counter& a = family.Add({{"method", "Submit"}, {"code", "OK"}});
  Counter& b = family.Add({{"code", "OK"}, {"method", "Submit"}});
  Counter& c = family.Add({{"method", "Get"}, {"code", "OK"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  // Many more series must not move the first one.
  for (int i = 0; i < 1000; ++i) family.Add({{"method", std::to_string(i)}});
  EXPECT_EQ(&a, &family.Add({{"method", "Submit"}, {"code", "OK"}}));
  EXPECT_TRUE(family.Has({{"method", "Get"}, {"code", "OK"}}));
  family.Remove(&c);
  EXPECT_FALSE(family.Has({{"method", "Get"}, {"code", "OK"}}));
}

TEST(FormatTest, Values) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-7), "-7");
  EXPECT_EQ(FormatValue(1e6), "1000000");
  EXPECT_EQ(FormatValue(12345678901234.0), "12345678901234");
  EXPECT_EQ(FormatValue(0.5), "0.5");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(2.5e-05), "2.5e-05");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");  // shortest round trip
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(FormatTest, Escaping) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");  // quotes stay in HELP
}

TEST(ExpositionTest, ExactTextForSmallRegistry) {
  Registry registry;
  Family<Histogram>& latency = BuildHistogram()
                                   .Name("attattr_queue_duration_seconds")
                                   .Help("Time jobs wait in the queue.")
                                   .Register(registry);
  Family<Counter>& rpcs = BuildCounter()
                              .Name("attattr_rpcs_total")
                              .Help("RPCs by method and code.\nSecond \\ line.")
                              .Labels({{"service", "attattr"}})
                              .Register(registry);
  Family<Gauge>& depth =
      BuildGauge().Name("attattr_queue_depth").Help("Jobs waiting.").Register(registry);
  BuildGauge().Name("attattr_empty").Help("No series.").Register(registry);

  rpcs.Add({{"method", "Submit"}, {"code", "OK"}}).Increment(3);
  rpcs.Add({{"method", "Get"}, {"code", "say \"hi\"\n\\"}}).Increment();
  depth.Add({}).Set(-2.5);
  Histogram& h = latency.Add({{"kind", "attribution"}}, BucketBoundaries{0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(3);

  const std::string expected =
      "# HELP attattr_empty No series.\n"
      "# TYPE attattr_empty gauge\n"
      "# HELP attattr_queue_depth Jobs waiting.\n"
      "# TYPE attattr_queue_depth gauge\n"
      "attattr_queue_depth -2.5\n"
      "# HELP attattr_queue_duration_seconds Time jobs wait in the queue.\n"
      "# TYPE attattr_queue_duration_seconds histogram\n"
      "attattr_queue_duration_seconds_bucket{kind=\"attribution\",le=\"0.1\"} 1\n"
      "attattr_queue_duration_seconds_bucket{kind=\"attribution\",le=\"1\"} 2\n"
      "attattr_queue_duration_seconds_bucket{kind=\"attribution\",le=\"+Inf\"} 3\n"
      "attattr_queue_duration_seconds_sum{kind=\"attribution\"} 3.55\n"
      "attattr_queue_duration_seconds_count{kind=\"attribution\"} 3\n"
      "# HELP attattr_rpcs_total RPCs by method and code.\\nSecond \\\\ line.\n"
      "# TYPE attattr_rpcs_total counter\n"
      "attattr_rpcs_total{code=\"OK\",method=\"Submit\",service=\"attattr\"} 3\n"
      "attattr_rpcs_total{code=\"say \\\"hi\\\"\\n\\\\\",method=\"Get\",service=\"attattr\"} 1\n";
  EXPECT_EQ(SerializeText(registry.Collect()), expected);
}

TEST(RegistryTest, CollectCallbacksRunAtScrapeAndCanBeRemoved) {
  Registry registry;
  Gauge& depth = BuildGauge().Name("depth").Help("h").Register(registry).Add({});
  int calls = 0;
  const Registry::CallbackId id = registry.AddCollectCallback([&] { depth.Set(++calls * 10); });
  EXPECT_EQ(registry.Collect()[0].metrics[0].value, 10);
  EXPECT_EQ(registry.Collect()[0].metrics[0].value, 20);
  registry.RemoveCollectCallback(id);
  EXPECT_EQ(registry.Collect()[0].metrics[0].value, 20);
  EXPECT_EQ(calls, 2);
}

TEST(RegistryTest, RemoveFamily) {
  Registry registry;
  Family<Gauge>* g = *registry.AddGauge("g", "h");
  EXPECT_TRUE(registry.Remove(*g));
  EXPECT_TRUE(registry.Collect().empty());
  EXPECT_TRUE(registry.AddCounter("g", "h").ok());  // the name is free again
}

TEST(ConcurrencyTest, ManyThreadsUpdateAndScrape) {
  Registry registry;
  Family<Counter>& counters = BuildCounter().Name("c_total").Help("h").Register(registry);
  Family<Histogram>& hist = BuildHistogram().Name("h").Help("h").Register(registry);
  Gauge& gauge = BuildGauge().Name("g").Help("h").Register(registry).Add({});
  constexpr int kThreads = 8;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        counters.Add({{"shared", "yes"}}).Increment();
        counters.Add({{"thread", std::to_string(t)}}).Increment(0.5);
        hist.Add({}, BucketBoundaries{0.5}).Observe(i % 2);
        gauge.Increment();
        gauge.Decrement(0.5);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) SerializeText(registry.Collect());
  });
  for (std::thread& thread : threads) thread.join();
  scraper.join();
  EXPECT_EQ(counters.Add({{"shared", "yes"}}).Value(), kThreads * kIterations);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(counters.Add({{"thread", std::to_string(t)}}).Value(), kIterations * 0.5);
  }
  const HistogramSnapshot s = hist.Add({}, BucketBoundaries{0.5}).Snapshot();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kIterations);
  EXPECT_EQ(s.buckets[0].second, uint64_t{kThreads} * kIterations / 2);
  EXPECT_EQ(s.sum, kThreads * kIterations / 2);
  EXPECT_EQ(gauge.Value(), kThreads * kIterations * 0.5);
}

TEST(ProcessCollectorTest, ReportsThisProcess) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<ProcessCollector>> collector =
      ProcessCollector::Register(&registry);
  ASSERT_TRUE(collector.ok()) << collector.status();
  std::map<std::string, double> values;
  for (const MetricFamilySnapshot& family : registry.Collect()) {
    ASSERT_EQ(family.metrics.size(), 1u) << family.name;
    values[family.name] = family.metrics[0].value;
  }
  EXPECT_GT(values["process_resident_memory_bytes"], 1e5);
  EXPECT_GE(values["process_virtual_memory_bytes"], values["process_resident_memory_bytes"]);
  EXPECT_GE(values["process_cpu_seconds_total"], 0);
  EXPECT_GT(values["process_open_fds"], 2);
  EXPECT_GT(values["process_max_fds"], 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(values["process_start_time_seconds"], now + 1);
  EXPECT_GT(values["process_start_time_seconds"], now - 3600);
  EXPECT_EQ(ProcessCollector::Register(&registry).status().code(),
            absl::StatusCode::kAlreadyExists);  // one per registry
  collector->reset();
  EXPECT_TRUE(registry.Collect().empty());  // families removed with the collector
}

// With an NVIDIA driver (libnvidia-ml.so.1 loadable) every GPU gets used/total gauges at scrape
// time; without one nothing is registered. The test checks whichever machine it runs on.
TEST(GpuMemoryCollectorTest, ReportsEveryGpuOrRegistersNothing) {
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  const bool has_driver = nvml != nullptr;
  if (nvml != nullptr) dlclose(nvml);
  Registry registry;
  auto collector = GpuMemoryCollector::Register(&registry);
  ASSERT_TRUE(collector.ok()) << collector.status();
  const std::string text = SerializeText(registry.Collect());
  if (!has_driver || *collector == nullptr) {
    EXPECT_EQ(*collector, nullptr);
    EXPECT_FALSE(registry.Contains("attattr_device_memory_used_bytes"));
    EXPECT_EQ(text.find("attattr_device_memory"), std::string::npos) << text;
    return;
  }
  EXPECT_GE((*collector)->device_count(), 1);
  EXPECT_NE(text.find("attattr_device_memory_total_bytes{device=\"cuda:0\"} "), std::string::npos)
      << text;
  EXPECT_NE(text.find("attattr_device_memory_used_bytes{device=\"cuda:0\"} "), std::string::npos)
      << text;
  EXPECT_EQ(GpuMemoryCollector::Register(&registry).status().code(),
            absl::StatusCode::kAlreadyExists);
  collector->reset();
  EXPECT_FALSE(registry.Contains("attattr_device_memory_used_bytes"));
}

}  // namespace
}  // namespace attattr::metrics
