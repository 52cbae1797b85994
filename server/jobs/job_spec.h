// The parts of job-spec validation every kind shares (job_kind.h): the common spec fields, example
// sources (inline or a dataset file under --data-root), labels, tokenization, activation memory,
// and paths under --data-root / --export-root. Errors name the field ("spec.attribution.examples.
// inline.examples[3].text: empty") and, for a server limit, its flag. Runs no model; pure functions
// apart from reading dataset files under --data-root; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/example.h"
#include "attattr/engine/model.h"
#include "attattr/v1/job.pb.h"
#include "model_registry.h"
#include "server_config.h"

namespace attattr::server {

// The longest spec.timeout_ms a job may ask for: 365 days (a deadline counted from submission;
// beyond this, 0 = no limit says the same and --max-job-seconds bounds each run anyway).
inline constexpr int64_t kMaxJobTimeoutMs = int64_t{365} * 24 * 3600 * 1000;

// Resolves `path` (relative, from a DatasetRef) under `data_root`. InvalidArgument naming `field`
// when data_root is empty ("no --data-root configured"), the path is empty/absolute, has a ".."
// component, resolves (after following symlinks, std::filesystem::weakly_canonical) outside the
// canonical root, or is not a regular file; NotFound naming the field when the file does not exist;
// FailedPrecondition when the root itself cannot be resolved. Messages never show the root.
absl::StatusOr<std::string> ResolveDataPath(const std::string& data_root, const std::string& path,
                                            const std::string& field);

// Like ResolveDataPath, under `export_root` (--export-root) for a directory the job will create: it
// may not exist yet, be an empty directory, or (for `owner`, the running job's id; "" at
// submission) hold that job's own earlier export (engine::PrunedExportOwner), which a run again
// replaces; anything else there -> AlreadyExists naming `field`. The root itself is refused as a
// target.
absl::StatusOr<std::string> ResolveExportPath(const std::string& export_root,
                                              const std::string& path, const std::string& field,
                                              const std::string& owner = "");

// Examples from an ExampleSource (inline list, or a dataset file under config.data_root with an
// optional limit); dataset labels are kept. Errors name the field under `field`:
// "<field>.inline.examples[3].text: empty", "<field>.dataset.path: ...",
// "<field>.dataset.path: examples[3].text: empty" (index in file order). Neither set ->
// InvalidArgument "<field>: inline or dataset is required"; zero examples, an empty text or
// text_pair, a negative limit -> InvalidArgument; more than config.max_job_examples ->
// InvalidArgument naming --max-job-examples.
absl::StatusOr<std::vector<engine::Example>> LoadExamples(const v1::ExampleSource& source,
                                                          const ServerConfig& config,
                                                          const std::string& field);

// Calls `visit(source, field)` for every ExampleSource in `message` at any depth; `field` names it
// under `path` ("spec.head_importance.evaluation_set"). Walks by reflection, so a source added to
// any job kind later is covered, and never into an ExampleList's examples: the cost is the
// message's fields, not its examples.
void ForEachExampleSource(
    const google::protobuf::Message& message, const std::string& path,
    const std::function<void(const v1::ExampleSource&, const std::string&)>& visit);

// The example count of every inline list in `spec`, read before anything is copied or validated
// (a 32 MiB request holds 16 million empty examples): more than config.max_job_examples ->
// InvalidArgument naming the source and --max-job-examples, as LoadExamples says.
absl::Status CheckInlineExampleCounts(const v1::JobSpec& spec, const ServerConfig& config);

// What every job kind shares: spec.model must be served (NotFound "spec.model: ..."),
// spec.priority in [-10, 10], spec.timeout_ms >= 0, a kind must be set (InvalidArgument
// "spec.kind: ..."). The model on success.
absl::StatusOr<const engine::Model*> CheckJobCommon(const v1::JobSpec& spec,
                                                    const ModelRegistry& models);

// CheckJobCommon, and the model must have a classification head: InvalidArgument
// "spec.model: '<name>' is encoder-only; <job> needs a classifier" otherwise.
absl::StatusOr<const engine::Model*> CheckClassifierJob(const v1::JobSpec& spec,
                                                        const ModelRegistry& models,
                                                        const std::string& job);

// Model::Encode of each example (truncated to the model's maximum); errors name the example under
// `field` as LoadExamples does.
absl::StatusOr<std::vector<engine::Encoding>> EncodeExamples(
    const engine::Model& model, const std::vector<engine::Example>& examples,
    const v1::ExampleSource& source, const std::string& field);

// Every example's gold label is one of the model's classes: InvalidArgument naming
// "<field>...examples[i].label" (a missing label, -1, or one past the classes, with the model's
// class names), or "spec.model" for a model without a classifier.
absl::Status CheckExampleLabels(const engine::ModelInfo& info,
                                const std::vector<engine::Example>& examples,
                                const v1::ExampleSource& source, const std::string& field);

// The spec as stored at SubmitJob: an unset attribution precision (AttributionOptions.precision
// of whichever kind the spec is) pinned to config.default_precision, so that every replica that
// runs the job, or a shard of it, computes alike whatever its own --default-precision.
v1::JobSpec PinDefaultPrecision(const v1::JobSpec& spec, const ServerConfig& config);

// InvalidArgument naming `field` and --memory-budget-mib when one integration point of an example
// of `tokens` word pieces (plus a sequence target's `extra_tokens`) needs more activation memory
// than the server's budget. CheckAttributionMemory applies it to each example of a job; Explain to
// its one example.
absl::Status CheckPointMemory(const engine::ModelInfo& info, int tokens,
                              const engine::AttributionOptions& options, int extra_tokens,
                              const ServerConfig& config, const std::string& field);

// Admission control: an example whose one integration point needs more than
// config.memory_budget_bytes (AttributionBytesPerPoint) -> InvalidArgument naming the example and
// --memory-budget-mib. `extra_tokens`: what the engine appends to each (a sequence target's
// continuation, engine::TargetExtraTokens).
absl::Status CheckAttributionMemory(const engine::ModelInfo& info,
                                    const std::vector<engine::Encoding>& encodings,
                                    const engine::AttributionOptions& options, int extra_tokens,
                                    const v1::ExampleSource& source, const ServerConfig& config,
                                    const std::string& field);

// The server's cap on one job's work, in integration points: `examples` × options.steps × the
// layers the options attribute (all of them when none are named), plus `forward_passes` example
// forward passes (evaluations, pruning curves, attention and Taylor rankings) at the model's
// layer count each — one forward pass through L layers costs about what an integration point of
// each of L layers does. Over config.max_job_work: InvalidArgument naming `field` and
// --max-job-work with the products.
absl::Status CheckJobWork(int64_t examples, const engine::AttributionOptions& options,
                          const engine::ModelInfo& info, const ServerConfig& config,
                          const std::string& field, int64_t forward_passes = 0);

// The name of example `i` of `source` under `field`: "<field>.inline.examples[3]", or
// "<field>.dataset.path: examples[3]" (index in file order).
std::string ExampleField(const v1::ExampleSource& source, const std::string& field, size_t i);

// InvalidArgument "<field>: <what>", the shape of every spec error.
absl::Status InvalidSpec(const std::string& field, const std::string& what);

// "12.3 MiB", for messages about sizes and limits.
std::string FormatMib(int64_t bytes);

}  // namespace attattr::server
