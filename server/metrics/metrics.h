// Prometheus metrics shaped like prometheus-cpp: a Registry of metric families (Counter, Gauge,
// Histogram) with constant and per-series labels, collect callbacks run at scrape time, and the
// text exposition format 0.0.4. It does no I/O (metrics_http.h serves it) and has no summaries.
// Thread-safety: every class here is safe to use from many threads at once.
//
// Mapping to prometheus-cpp (so this module can be swapped for it):
//   prometheus::Registry                      -> attattr::metrics::Registry
//   prometheus::BuildCounter().Name(n).Help(h).Labels(l).Register(reg)
//                                             ->
//                                             BuildCounter().Name(n).Help(h).Labels(l).Register(reg)
//                                                (same spelling; also BuildGauge/BuildHistogram)
//   prometheus::Family<T>::Add(labels[, buckets]) -> Family<T>::Add(labels[, buckets]) (same)
//   Counter::Increment / Gauge::Set,Increment,Decrement / Histogram::Observe -> same names
//   prometheus::Histogram::BucketBoundaries   -> attattr::metrics::BucketBoundaries
//   prometheus::TextSerializer().Serialize(reg.Collect()) -> SerializeText(reg.Collect())
// prometheus-cpp throws std::invalid_argument on a bad name; without exceptions, the builder's
// Register and Family::Add abort with the message instead (names are constants in code, so that is
// a programming error found by the first test). The fallible spellings return absl::Status:
//   Registry::AddCounter/AddGauge/AddHistogram(name, help, const_labels) -> StatusOr<Family<T>*>
//   Family<T>::TryAdd(labels[, buckets])                                 -> StatusOr<T*>
// Collect callbacks (Registry::AddCollectCallback) have no prometheus-cpp equivalent; with
// prometheus-cpp use a custom Collectable or refresh the gauges from a timer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace attattr::metrics {

// Label name -> value. Ordered, so series and their labels print in a stable order.
using Labels = std::map<std::string, std::string>;
// Upper bounds of histogram buckets, strictly increasing; +Inf is implicit.
using BucketBoundaries = std::vector<double>;

enum class MetricType { kCounter, kGauge, kHistogram };
// "counter", "gauge", "histogram": the spelling of `# TYPE`.
const char* MetricTypeName(MetricType type);

// ---- Snapshots: what Collect() returns and SerializeText() prints. ----

struct HistogramSnapshot {
  // (upper bound, cumulative count) for each finite bound, in increasing order; the +Inf bucket is
  // `count`.
  std::vector<std::pair<double, uint64_t>> buckets;
  uint64_t count = 0;
  double sum = 0;
};

struct MetricSnapshot {
  Labels labels;                // constant labels merged with the series' own labels
  double value = 0;             // counter and gauge
  HistogramSnapshot histogram;  // histogram only
};

struct MetricFamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<MetricSnapshot> metrics;  // sorted by labels
};

// ---- Name rules (Prometheus data model). ----

// [a-zA-Z_:][a-zA-Z0-9_:]*; InvalidArgument naming `name` otherwise.
absl::Status ValidateMetricName(const std::string& name);
// [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__" (reserved); InvalidArgument naming `name`.
absl::Status ValidateLabelName(const std::string& name);

// ---- Metric types. ----

// A monotonically increasing value. Lock-free.
class Counter {
 public:
  static constexpr MetricType kType = MetricType::kCounter;
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `value`; negative and NaN values are ignored (as prometheus-cpp does), counters never go
  // down.
  void Increment(double value = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down. Lock-free.
class Gauge {
 public:
  static constexpr MetricType kType = MetricType::kGauge;
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double value = 1.0);
  void Decrement(double value = 1.0) { Increment(-value); }
  // Sets the gauge to the current Unix time in seconds.
  void SetToCurrentTime();
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into buckets `value <= bound` (cumulative in the exposition, plus +Inf),
// with their sum and count. One small mutex per histogram keeps buckets, sum and count consistent.
class Histogram {
 public:
  static constexpr MetricType kType = MetricType::kHistogram;
  // `bounds` should be strictly increasing and finite; the constructor cannot fail, so it sorts
  // them, drops duplicates, NaN and infinities (Family::TryAdd refuses such input instead).
  explicit Histogram(const BucketBoundaries& bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Observes `value` (NaN counts only in +Inf, count and sum, as in client_golang).
  void Observe(double value);
  HistogramSnapshot Snapshot() const;
  const BucketBoundaries& bounds() const { return bounds_; }

 private:
  const BucketBoundaries bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, not cumulative; last = +Inf
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Strictly increasing, finite, non-empty bounds -> OK; InvalidArgument otherwise.
absl::Status ValidateBucketBoundaries(const BucketBoundaries& bounds);
// `count` bounds start, start + width, ...
BucketBoundaries LinearBuckets(double start, double width, int count);
// `count` bounds start, start * factor, ...
BucketBoundaries ExponentialBuckets(double start, double factor, int count);

// ---- Families. ----

// What the registry needs from a family of any type.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const Labels& constant_labels() const { return constant_labels_; }
  MetricType type() const { return type_; }
  virtual MetricFamilySnapshot Collect() const = 0;

 protected:
  FamilyBase(std::string name, std::string help, Labels constant_labels, MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        constant_labels_(std::move(constant_labels)),
        type_(type) {}
  // Checks the label names of one series against the rules, the constant labels and the type
  // (histograms reserve "le").
  absl::Status ValidateSeriesLabels(const Labels& labels) const;
  // Constant labels merged with `labels`.
  Labels MergedLabels(const Labels& labels) const;

 private:
  const std::string name_;
  const std::string help_;
  const Labels constant_labels_;
  const MetricType type_;
};

namespace internal {
[[noreturn]] void DieOnError(const absl::Status& status);
template <typename T>
void FillSnapshot(const T& metric, MetricSnapshot* out);
template <>
inline void FillSnapshot(const Counter& metric, MetricSnapshot* out) {
  out->value = metric.Value();
}
template <>
inline void FillSnapshot(const Gauge& metric, MetricSnapshot* out) {
  out->value = metric.Value();
}
template <>
inline void FillSnapshot(const Histogram& metric, MetricSnapshot* out) {
  out->histogram = metric.Snapshot();
}
// Validates constructor arguments of a metric (bucket bounds for histograms).
inline absl::Status ValidateArgs() { return absl::OkStatus(); }
inline absl::Status ValidateArgs(const BucketBoundaries& bounds) {
  return ValidateBucketBoundaries(bounds);
}
}  // namespace internal

// All series of one metric name, one per distinct label set. Series live as long as the family
// (unless Remove()d), so the references Add returns stay valid.
template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, Labels constant_labels)
      : FamilyBase(std::move(name), std::move(help), std::move(constant_labels), T::kType) {}

  // The series with `labels`, created with `args` (bucket bounds for a histogram) on first use; the
  // same labels give the same object (later `args` are then ignored). Bad label names or bounds are
  // InvalidArgument naming them.
  template <typename... Args>
  absl::StatusOr<T*> TryAdd(const Labels& labels, Args&&... args) {
    absl::MutexLock lock(&mu_);
    auto it = metrics_.find(labels);
    if (it != metrics_.end()) return it->second.get();
    absl::Status status = ValidateSeriesLabels(labels);
    if (status.ok()) status = internal::ValidateArgs(args...);
    if (!status.ok()) return status;
    auto inserted = metrics_.emplace(labels, std::make_unique<T>(std::forward<Args>(args)...));
    return inserted.first->second.get();
  }
  // prometheus-cpp's spelling: as TryAdd, but aborts with the message on bad input.
  template <typename... Args>
  T& Add(const Labels& labels, Args&&... args) {
    absl::StatusOr<T*> metric = TryAdd(labels, std::forward<Args>(args)...);
    if (!metric.ok()) internal::DieOnError(metric.status());
    return **metric;
  }
  // Drops the series `metric` points to; references to it dangle afterwards.
  void Remove(T* metric) {
    absl::MutexLock lock(&mu_);
    for (auto it = metrics_.begin(); it != metrics_.end(); ++it) {
      if (it->second.get() == metric) {
        metrics_.erase(it);
        return;
      }
    }
  }
  bool Has(const Labels& labels) const {
    absl::MutexLock lock(&mu_);
    return metrics_.count(labels) > 0;
  }

  MetricFamilySnapshot Collect() const override {
    MetricFamilySnapshot out;
    out.name = name();
    out.help = help();
    out.type = type();
    absl::MutexLock lock(&mu_);
    out.metrics.reserve(metrics_.size());
    for (const auto& [labels, metric] : metrics_) {
      MetricSnapshot snapshot;
      snapshot.labels = MergedLabels(labels);
      internal::FillSnapshot(*metric, &snapshot);
      out.metrics.push_back(std::move(snapshot));
    }
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> metrics_ ABSL_GUARDED_BY(mu_);
};

// ---- Registry. ----

// Owns metric families by name and the collect callbacks; Collect() is a scrape.
class Registry {
 public:
  using CallbackId = int64_t;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The family `name`, created on first use. Registering a name again with the same type and
  // constant labels returns the existing family (prometheus-cpp's merge); another type or other
  // constant labels is AlreadyExists, and so is a name that clashes with a histogram's
  // `_bucket`/`_sum`/`_count` series. Bad names are InvalidArgument naming them.
  absl::StatusOr<Family<Counter>*> AddCounter(const std::string& name, const std::string& help,
                                              const Labels& constant_labels = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(const std::string& name, const std::string& help,
                                          const Labels& constant_labels = {});
  absl::StatusOr<Family<Histogram>*> AddHistogram(const std::string& name, const std::string& help,
                                                  const Labels& constant_labels = {});

  // Drops a family; pointers into it dangle afterwards. False if it is not registered here.
  bool Remove(const FamilyBase& family);
  // Whether a family called `name` is registered.
  bool Contains(const std::string& name) const;

  // Registers `callback`, called at the start of every Collect() (e.g. to set gauges for queue
  // depth or RSS). Callbacks run one scrape at a time, never under the family locks, so they may
  // add series. They must not add or remove callbacks themselves.
  CallbackId AddCollectCallback(std::function<void()> callback);
  // After this returns, the callback is not running and will not be called again.
  void RemoveCollectCallback(CallbackId id);

  // Runs the callbacks, then snapshots every family, sorted by name.
  std::vector<MetricFamilySnapshot> Collect() const;

 private:
  template <typename T>
  absl::StatusOr<Family<T>*> AddFamily(const std::string& name, const std::string& help,
                                       const Labels& constant_labels);

  mutable absl::Mutex families_mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(families_mu_);
  mutable absl::Mutex callbacks_mu_;  // held while callbacks run
  CallbackId next_callback_id_ ABSL_GUARDED_BY(callbacks_mu_) = 1;
  std::map<CallbackId, std::function<void()>> callbacks_ ABSL_GUARDED_BY(callbacks_mu_);
};

// ---- Builders (prometheus-cpp's spelling). ----

template <typename T>
class Builder {
 public:
  Builder& Name(const std::string& name) {
    name_ = name;
    return *this;
  }
  Builder& Help(const std::string& help) {
    help_ = help;
    return *this;
  }
  Builder& Labels(const metrics::Labels& labels) {
    labels_ = labels;
    return *this;
  }
  // The fallible form: Registry::AddCounter/AddGauge/AddHistogram.
  absl::StatusOr<Family<T>*> TryRegister(Registry& registry) const;
  // prometheus-cpp's form: aborts with the message on a bad or conflicting name.
  Family<T>& Register(Registry& registry) const {
    absl::StatusOr<Family<T>*> family = TryRegister(registry);
    if (!family.ok()) internal::DieOnError(family.status());
    return **family;
  }

 private:
  std::string name_;
  std::string help_;
  metrics::Labels labels_;
};

template <>
inline absl::StatusOr<Family<Counter>*> Builder<Counter>::TryRegister(Registry& registry) const {
  return registry.AddCounter(name_, help_, labels_);
}
template <>
inline absl::StatusOr<Family<Gauge>*> Builder<Gauge>::TryRegister(Registry& registry) const {
  return registry.AddGauge(name_, help_, labels_);
}
template <>
inline absl::StatusOr<Family<Histogram>*> Builder<Histogram>::TryRegister(
    Registry& registry) const {
  return registry.AddHistogram(name_, help_, labels_);
}

inline Builder<Counter> BuildCounter() { return {}; }
inline Builder<Gauge> BuildGauge() { return {}; }
inline Builder<Histogram> BuildHistogram() { return {}; }

// ---- Text exposition format 0.0.4. ----

// The Content-Type of SerializeText's output.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// `# HELP`, `# TYPE` and one line per sample for each family, in the given order (Registry::Collect
// sorts by name). A family without series prints only its HELP and TYPE lines.
std::string SerializeText(const std::vector<MetricFamilySnapshot>& families);
// A sample value or `le` bound as Prometheus spells it: integers without exponent where exact,
// otherwise the shortest round-tripping form; "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);
// Label value escaping: backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& value);
// HELP escaping: backslash and newline.
std::string EscapeHelp(const std::string& help);

}  // namespace attattr::metrics
