// Registry, metric types, name validation and the text exposition format (see metrics.h).
// No I/O here. Thread-safety: counters and gauges are lock-free atomics, each histogram and family
// has its own mutex, the registry locks its family map and, separately, its callbacks.
#include "metrics/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace attattr::metrics {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AtomicAdd(std::atomic<double>* target, double delta) {
  double current = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

BucketBoundaries NormalizeBounds(const BucketBoundaries& bounds) {
  BucketBoundaries out;
  for (double b : bounds) {
    if (std::isfinite(b)) out.push_back(b);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void AppendLabels(const Labels& labels, const std::string* extra_name,
                  const std::string* extra_value, std::string* out) {
  if (labels.empty() && extra_name == nullptr) return;
  out->push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, name, "=\"", EscapeLabelValue(value), "\"");
  }
  if (extra_name != nullptr) {
    if (!first) out->push_back(',');
    absl::StrAppend(out, *extra_name, "=\"", EscapeLabelValue(*extra_value), "\"");
  }
  out->push_back('}');
}

void AppendSample(const std::string& name, const Labels& labels, double value, std::string* out,
                  const std::string* extra_name = nullptr,
                  const std::string* extra_value = nullptr) {
  out->append(name);
  AppendLabels(labels, extra_name, extra_value, out);
  absl::StrAppend(out, " ", FormatValue(value), "\n");
}

}  // namespace

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

absl::Status ValidateMetricName(const std::string& name) {
  bool ok = !name.empty() && (IsNameStart(name[0]) || name[0] == ':');
  for (size_t i = 1; ok && i < name.size(); ++i) {
    const char c = name[i];
    ok = IsNameStart(c) || IsDigit(c) || c == ':';
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid metric name '", name, "': must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelName(const std::string& name) {
  bool ok = !name.empty() && IsNameStart(name[0]);
  for (size_t i = 1; ok && i < name.size(); ++i) ok = IsNameStart(name[i]) || IsDigit(name[i]);
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid label name '", name, "': must match [a-zA-Z_][a-zA-Z0-9_]*"));
  }
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid label name '", name, "': names starting with __ are reserved"));
  }
  return absl::OkStatus();
}

// ---- Counter, Gauge, Histogram ----

void Counter::Increment(double value) {
  if (!(value >= 0)) return;  // negative or NaN
  AtomicAdd(&value_, value);
}

void Gauge::Increment(double value) { AtomicAdd(&value_, value); }

void Gauge::SetToCurrentTime() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  Set(std::chrono::duration<double>(now).count());
}

Histogram::Histogram(const BucketBoundaries& bounds)
    : bounds_(NormalizeBounds(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // First bucket whose bound is >= value; NaN compares false everywhere and lands in +Inf.
  const size_t bucket =
      std::isnan(value)
          ? bounds_.size()
          : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                bounds_.begin());
  absl::MutexLock lock(&mu_);
  ++counts_[bucket];
  sum_ += value;
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot out;
  out.buckets.reserve(bounds_.size());
  absl::MutexLock lock(&mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out.buckets.emplace_back(bounds_[i], cumulative);
  }
  out.count = cumulative + counts_.back();
  out.sum = sum_;
  return out;
}

absl::Status ValidateBucketBoundaries(const BucketBoundaries& bounds) {
  if (bounds.empty()) return absl::InvalidArgumentError("histogram bucket bounds are empty");
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(absl::StrCat("histogram bucket bound ", i, " is ",
                                                     FormatValue(bounds[i]),
                                                     "; bounds must be finite (+Inf is implicit)"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram bucket bounds must be strictly increasing: bound ", i, " (",
          FormatValue(bounds[i]), ") <= bound ", i - 1, " (", FormatValue(bounds[i - 1]), ")"));
    }
  }
  return absl::OkStatus();
}

BucketBoundaries LinearBuckets(double start, double width, int count) {
  BucketBoundaries out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

BucketBoundaries ExponentialBuckets(double start, double factor, int count) {
  BucketBoundaries out;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) out.push_back(bound);
  return out;
}

// ---- FamilyBase ----

absl::Status FamilyBase::ValidateSeriesLabels(const Labels& labels) const {
  for (const auto& [label, value] : labels) {
    absl::Status status = ValidateLabelName(label);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": ", status.message()));
    }
    if (constant_labels_.count(label) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": label '", label, "' is already a constant label of the family"));
    }
    if (type_ == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": label 'le' is reserved for histogram buckets"));
    }
  }
  return absl::OkStatus();
}

Labels FamilyBase::MergedLabels(const Labels& labels) const {
  if (constant_labels_.empty()) return labels;
  Labels merged = constant_labels_;
  merged.insert(labels.begin(), labels.end());
  return merged;
}

namespace internal {
void DieOnError(const absl::Status& status) {
  std::fprintf(stderr, "attattr::metrics: %s\n", status.ToString().c_str());
  std::abort();
}
}  // namespace internal

// ---- Registry ----

template <typename T>
absl::StatusOr<Family<T>*> Registry::AddFamily(const std::string& name, const std::string& help,
                                               const Labels& constant_labels) {
  absl::Status status = ValidateMetricName(name);
  if (!status.ok()) return status;
  for (const auto& [label, value] : constant_labels) {
    status = ValidateLabelName(label);
    if (!status.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", status.message()));
    if (T::kType == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label 'le' is reserved for histogram buckets"));
    }
  }
  absl::MutexLock lock(&families_mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    FamilyBase* existing = it->second.get();
    if (existing->type() != T::kType) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", name, "' is already registered as a ",
                       MetricTypeName(existing->type()), ", not a ", MetricTypeName(T::kType)));
    }
    if (existing->constant_labels() != constant_labels) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", name, "' is already registered with other constant labels"));
    }
    return static_cast<Family<T>*>(existing);
  }
  // Histograms also expose NAME_bucket, NAME_sum and NAME_count: refuse names that would collide.
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string suffix_str = suffix;
    if (T::kType == MetricType::kHistogram && families_.count(name + suffix_str) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("histogram '", name, "' would expose '", name,
                                                   suffix_str, "', which is already registered"));
    }
    if (name.size() > suffix_str.size() &&
        name.compare(name.size() - suffix_str.size(), suffix_str.size(), suffix_str) == 0) {
      auto base = families_.find(name.substr(0, name.size() - suffix_str.size()));
      if (base != families_.end() && base->second->type() == MetricType::kHistogram) {
        return absl::AlreadyExistsError(absl::StrCat(
            "metric '", name, "' collides with a series of histogram '", base->first, "'"));
      }
    }
  }
  auto family = std::make_unique<Family<T>>(name, help, constant_labels);
  Family<T>* raw = family.get();
  families_.emplace(name, std::move(family));
  return raw;
}

absl::StatusOr<Family<Counter>*> Registry::AddCounter(const std::string& name,
                                                      const std::string& help,
                                                      const Labels& constant_labels) {
  return AddFamily<Counter>(name, help, constant_labels);
}

absl::StatusOr<Family<Gauge>*> Registry::AddGauge(const std::string& name, const std::string& help,
                                                  const Labels& constant_labels) {
  return AddFamily<Gauge>(name, help, constant_labels);
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogram(const std::string& name,
                                                          const std::string& help,
                                                          const Labels& constant_labels) {
  return AddFamily<Histogram>(name, help, constant_labels);
}

bool Registry::Remove(const FamilyBase& family) {
  absl::MutexLock lock(&families_mu_);
  auto it = families_.find(family.name());
  if (it == families_.end() || it->second.get() != &family) return false;
  families_.erase(it);
  return true;
}

bool Registry::Contains(const std::string& name) const {
  absl::MutexLock lock(&families_mu_);
  return families_.count(name) > 0;
}

Registry::CallbackId Registry::AddCollectCallback(std::function<void()> callback) {
  absl::MutexLock lock(&callbacks_mu_);
  const CallbackId id = next_callback_id_++;
  callbacks_.emplace(id, std::move(callback));
  return id;
}

void Registry::RemoveCollectCallback(CallbackId id) {
  absl::MutexLock lock(&callbacks_mu_);
  callbacks_.erase(id);
}

std::vector<MetricFamilySnapshot> Registry::Collect() const {
  {
    absl::MutexLock lock(&callbacks_mu_);
    for (const auto& [id, callback] : callbacks_) callback();
  }
  std::vector<MetricFamilySnapshot> out;
  absl::MutexLock lock(&families_mu_);
  out.reserve(families_.size());
  for (const auto& [name, family] : families_) out.push_back(family->Collect());
  return out;
}

// ---- Text format ----

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (value == std::trunc(value) && std::fabs(value) < 1e17) {
    if (value == 0) return "0";  // also -0
    std::snprintf(buf, sizeof(buf), "%.0f", value);
    return buf;
  }
  // Shortest %g form that reads back as the same double.
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

namespace {

// Backslash and newline are escaped in both HELP text and label values; '"' only in label values.
std::string Escape(const std::string& text, bool escape_quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) { return Escape(value, true); }

std::string EscapeHelp(const std::string& help) { return Escape(help, false); }

std::string SerializeText(const std::vector<MetricFamilySnapshot>& families) {
  std::string out;
  const std::string le = "le";
  for (const MetricFamilySnapshot& family : families) {
    absl::StrAppend(&out, "# HELP ", family.name, " ", EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", family.name, " ", MetricTypeName(family.type), "\n");
    for (const MetricSnapshot& metric : family.metrics) {
      if (family.type != MetricType::kHistogram) {
        AppendSample(family.name, metric.labels, metric.value, &out);
        continue;
      }
      const HistogramSnapshot& h = metric.histogram;
      const std::string bucket_name = family.name + "_bucket";
      for (const auto& [bound, count] : h.buckets) {
        const std::string bound_text = FormatValue(bound);
        AppendSample(bucket_name, metric.labels, static_cast<double>(count), &out, &le,
                     &bound_text);
      }
      const std::string inf = "+Inf";
      AppendSample(bucket_name, metric.labels, static_cast<double>(h.count), &out, &le, &inf);
      AppendSample(family.name + "_sum", metric.labels, h.sum, &out);
      AppendSample(family.name + "_count", metric.labels, static_cast<double>(h.count), &out);
    }
  }
  return out;
}

}  // namespace attattr::metrics
