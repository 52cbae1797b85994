// ATTRIBUTION jobs (see attribution_job.h).
#include "jobs/attribution_job.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "jobs/job_convert.h"
#include "jobs/job_spec.h"
#include "proto_convert.h"

namespace attattr::server {
namespace {

constexpr int64_t kBytesPerConnection = 24;  // a serialized Connection, roughly
constexpr int64_t kBytesPerLayer = 64;       // LayerAttribution scalars and tensor headers
constexpr int64_t kBytesPerExample = 64;     // prediction and message headers
constexpr int64_t kBytesPerClass = 8;        // a class's probability and logit
constexpr int64_t kBytesPerTopToken = 48;    // a language model's TokenProbability, its piece
constexpr int64_t kBytesPerToken = 16;       // token text, input id, token type id

absl::Status Invalid(const std::string& field, const std::string& what) {
  return InvalidSpec(field, what);
}

std::string Mib(int64_t bytes) { return FormatMib(bytes); }

// Results of the items in flight, shared with the batcher's done callbacks (which may outlive an
// early return of the run only until `outstanding` reaches zero; the run waits for that).
struct Window {
  absl::Mutex mu;
  int outstanding ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::optional<absl::StatusOr<engine::ExampleAttribution>>> results
      ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<v1::JobResult> RunAttributionJob(AttributionJob& work, JobRun& run,
                                                const ServerConfig& config,
                                                AttributionBatcher& batcher,
                                                ServiceMetrics& metrics) {
  // The clean attention is only kept when the result asks for it.
  work.options.keep_attention = work.result.attention();
  const int64_t total = work.items();
  run.ReportProgress("attribution", 0, total);

  auto window = std::make_shared<Window>();
  const int batch = config.EffectiveBatchMaxExamples();
  // A batch in flight per engine worker (and at least two, so the next one waits in the batcher):
  // one job can keep every worker busy, while Explain calls queue behind no more than that.
  const int limit = batch * std::max(2, batcher.workers());
  auto should_stop = [&run] { return run.ShouldStop(); };
  v1::JobResult result;
  auto* out = result.mutable_attribution();
  int64_t next = 0, converted = 0;
  absl::Status failure;
  window->mu.Lock();
  window->results.resize(work.encodings.size());
  while (converted < total && failure.ok()) {
    // Fill the window.
    while (next < total && window->outstanding < limit && !should_stop()) {
      AttributionItem item;
      item.model = work.model;
      item.options = work.options;
      item.encoding = work.encodings[next];
      item.should_stop = should_stop;
      item.done = [window, index = next](absl::StatusOr<engine::ExampleAttribution> r) {
        absl::MutexLock guard(&window->mu);
        window->results[index] = std::move(r);
        --window->outstanding;
      };
      ++window->outstanding;
      ++next;
      window->mu.Unlock();
      const bool queued = batcher.TrySubmit(std::move(item), /*force=*/true) ==
                          AttributionBatcher::Admission::kQueued;
      window->mu.Lock();
      if (!queued) {
        --window->outstanding;
        failure = absl::UnavailableError("the server is shutting down");
        break;
      }
    }
    if (!failure.ok()) break;
    if (should_stop() && window->outstanding == 0 && !window->results[converted].has_value()) {
      failure = absl::CancelledError("stopped");
      break;
    }
    // Await evaluates the condition with window->mu held.
    const auto next_done = [&window, converted]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return window->results[converted].has_value() || window->outstanding == 0;
    };
    window->mu.Await(absl::Condition(&next_done));
    // Convert the finished prefix in order, freeing engine buffers as we go.
    const int64_t before = converted;
    while (converted < total && window->results[converted].has_value()) {
      auto& r = *window->results[converted];
      if (!r.ok()) {
        failure = r.status();
        break;
      }
      metrics.RecordAttribution(JobKindName(v1::ATTRIBUTION), *r, work.options.steps);
      window->mu.Unlock();
      convert::AttributionToProto(*r, work.result, work.model->info().labels, out->add_examples());
      window->mu.Lock();
      window->results[converted].reset();
      ++converted;
    }
    if (converted > before &&
        (converted == total || converted % batch == 0 || window->outstanding == 0)) {
      window->mu.Unlock();
      run.ReportProgress("attribution", converted, total);
      window->mu.Lock();
    }
  }
  // Never return while the batcher still holds callbacks into `window` with work pending.
  const auto drained = [&window]()
                           ABSL_NO_THREAD_SAFETY_ANALYSIS { return window->outstanding == 0; };
  window->mu.Await(absl::Condition(&drained));
  window->mu.Unlock();
  if (!failure.ok()) {
    if (run.PastDeadline()) return run.DeadlineError();
    if (failure.code() == absl::StatusCode::kCancelled && !run.StopRequested()) {
      return absl::InternalError(
          absl::StrCat("attribution stopped unexpectedly: ", failure.message()));
    }
    return failure;
  }
  return result;
}

absl::Status SliceAttributionJob(AttributionJob& job, int64_t begin, int64_t end) {
  if (begin < 0 || end > job.items() || begin >= end) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard: items ", begin, "..", end, " are not within the job's ", job.items()));
  }
  job.encodings =
      std::vector<engine::Encoding>(job.encodings.begin() + begin, job.encodings.begin() + end);
  return absl::OkStatus();
}

absl::StatusOr<v1::JobResult> MergeAttributionResults(const std::vector<std::string>& shards) {
  v1::JobResult merged;
  auto* examples = merged.mutable_attribution()->mutable_examples();
  for (size_t i = 0; i < shards.size(); ++i) {
    v1::JobResult shard;
    if (!shard.ParseFromString(shards[i]) || !shard.has_attribution()) {
      return absl::DataLossError(absl::StrCat("shard ", i, ": stored result does not parse"));
    }
    for (auto& example : *shard.mutable_attribution()->mutable_examples()) {
      *examples->Add() = std::move(example);
    }
  }
  return merged;
}

int64_t EstimateAttributionResultBytes(const engine::ModelInfo& info,
                                       const std::vector<engine::Encoding>& encodings,
                                       const engine::AttributionOptions& options,
                                       const v1::ResultOptions& result) {
  std::vector<int> layers = options.layers;
  if (layers.empty()) {
    for (int l = 0; l < info.num_layers; ++l) layers.push_back(l);
  }
  const int64_t value_bytes = result.fp16() ? 2 : 4;
  int64_t total = 0;
  for (const auto& encoding : encodings) {
    const int64_t n = static_cast<int64_t>(encoding.size());
    total += kBytesPerExample + kBytesPerToken * n +
             (info.language_model ? engine::kTopTokens * kBytesPerTopToken
                                  : kBytesPerClass * info.num_classes);
    if (result.tree()) total += 2 * kBytesPerConnection * n;  // a node and an edge per token
    for (int l : layers) {
      const int64_t heads = l < static_cast<int>(info.heads_per_layer.size())
                                ? info.heads_per_layer[l]
                                : info.num_heads;
      const int64_t cells = heads * n * n;
      total += kBytesPerLayer;
      if (result.full_matrices()) total += cells * value_bytes;
      if (result.head_summed()) total += n * n * value_bytes;
      if (result.attention()) total += cells * value_bytes;
      total += std::min<int64_t>(result.top_k(), cells) * kBytesPerConnection;
    }
  }
  return total;
}

absl::Status CheckExplainCost(const ExplainCall& call, const ServerConfig& config) {
  const engine::ModelInfo& info = call.model->info();
  ATTATTR_RETURN_IF_ERROR(CheckPointMemory(
      info, static_cast<int>(call.encoding.size()), call.options,
      engine::TargetExtraTokens(*call.model, call.options.target), config, "example.text"));
  const int64_t bytes =
      EstimateAttributionResultBytes(info, {call.encoding}, call.options, call.result);
  if (bytes > config.max_result_bytes) {
    return Invalid("result",
                   absl::StrCat("the response would be about ", Mib(bytes),
                                ", above the server's limit of ", Mib(config.max_result_bytes),
                                " (--max-result-mib); ask for fp16, head_summed or "
                                "top_k instead of full matrices, or fewer layers"));
  }
  return absl::OkStatus();
}

absl::StatusOr<AttributionJob> PrepareAttributionJob(const v1::JobSpec& spec,
                                                     const ModelRegistry& models,
                                                     const ServerConfig& config) {
  ATTATTR_ASSIGN_OR_RETURN(auto model, CheckJobCommon(spec, models));
  if (!spec.has_attribution()) return Invalid("spec.attribution", "required");
  const engine::ModelInfo& info = model->info();
  const auto& attribution = spec.attribution();
  const std::string examples_field = "spec.attribution.examples";
  ATTATTR_ASSIGN_OR_RETURN(auto examples,
                           LoadExamples(attribution.examples(), config, examples_field));
  AttributionJob job;
  job.model = model;
  ATTATTR_ASSIGN_OR_RETURN(auto options,
                           AttributionOptionsFromProto(attribution.options(), *model, config,
                                                       "spec.attribution.options"));
  job.options = std::move(options);
  ATTATTR_ASSIGN_OR_RETURN(auto result,
                           ResultOptionsFromProto(attribution.result(), attribution.has_result(),
                                                  kMaxResultTopK, "spec.attribution.result"));
  job.result = std::move(result);
  ATTATTR_RETURN_IF_ERROR(
      CheckTreeLayers(job.options, job.result, info, "spec.attribution.options.layers"));
  ATTATTR_RETURN_IF_ERROR(CheckJobWork(static_cast<int64_t>(examples.size()), job.options, info,
                                       config, "spec.attribution"));
  ATTATTR_ASSIGN_OR_RETURN(
      auto encodings, EncodeExamples(*model, examples, attribution.examples(), examples_field));
  job.encodings = std::move(encodings);
  // A sequence target's continuation is appended to each text (truncated to the model's maximum
  // length when encoded): both must fit, or the example would fail only when the job runs.
  if (const int extra = engine::TargetExtraTokens(*model, job.options.target); extra > 0) {
    for (size_t i = 0; i < job.encodings.size(); ++i) {
      const int n = static_cast<int>(job.encodings[i].size());
      if (n + extra > info.max_length) {
        return Invalid(ExampleField(attribution.examples(), examples_field, i),
                       absl::StrCat(n, " tokens of text and ", extra,
                                    " of continuation (spec.attribution.options.target) exceed "
                                    "the model's maximum length of ",
                                    info.max_length));
      }
    }
  }
  ATTATTR_RETURN_IF_ERROR(CheckAttributionMemory(
      info, job.encodings, job.options, engine::TargetExtraTokens(*model, job.options.target),
      attribution.examples(), config, examples_field));
  job.result_bytes_estimate =
      EstimateAttributionResultBytes(info, job.encodings, job.options, job.result);
  if (job.result_bytes_estimate > config.max_result_bytes) {
    return Invalid("spec.attribution.result",
                   absl::StrCat("the result would be about ", Mib(job.result_bytes_estimate),
                                ", above the server's limit of ", Mib(config.max_result_bytes),
                                " (--max-result-mib); ask for fp16, head_summed or top_k instead "
                                "of full matrices, fewer layers, or fewer examples per job"));
  }
  return job;
}

}  // namespace attattr::server
