// HEAD_IMPORTANCE jobs (DESIGN.md §1, Head importance): the validation of a HeadImportanceSpec into
// a native job, and its run — the study (rankings on the importance set, pruning curves on the
// evaluation set, rank correlations, optional pruned export under --export-root) with progress
// per stage ("importance: <method>", "pruning curve: <method>", "export") and cancellation
// between engine batches. Thread-safe kind; a prepared job runs on one job runner.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/head_importance_study.h"
#include "attattr/engine/model.h"
#include "attattr/v1/job.pb.h"
#include "jobs/job_run.h"
#include "model_registry.h"
#include "server_config.h"

namespace attattr::server {

struct HeadImportanceJob {
  const engine::Model* model = nullptr;  // owned by the ModelRegistry
  std::vector<engine::Encoding> importance_set;
  std::vector<int> importance_labels;
  std::vector<engine::Encoding> evaluation_set;
  std::vector<int> evaluation_labels;
  std::vector<engine::Encoding> agreement_set;  // empty without spec agreement_set
  std::vector<int> agreement_labels;
  // export_dir resolved under --export-root; the agreement spans are left empty (they would point
  // into this struct, which moves): RunHeadImportanceJob sets them.
  engine::HeadImportanceStudyOptions options;
  std::string export_path;  // as the spec gave it (relative)

  int64_t items() const { return 1; }  // one study
  // Per method L·H scores, a curve point per ratio and an agreement; the correlations; the export's
  // summary. A few KiB: the estimate errs high.
  int64_t result_bytes() const;
};

// CheckJobCommon, then, under "spec.head_importance": importance_set, evaluation_set and, when
// given, agreement_set (LoadExamples, CheckExampleLabels, EncodeExamples), methods (known, unique;
// empty = all four), ratios (finite, in [0, 100], at most 101; empty = 0, 10, …, 100), attribution
// (rule and steps only; CheckAttributionMemory for the importance and agreement sets when
// ATTRIBUTION is asked for), export_path (ResolveExportPath; refused for an already pruned model),
// export_ratio in [0, 100] and only with export_path. Errors are InvalidArgument naming the field,
// as job_spec.h.
// `job_id`: the job being run ("" at submission), whose own earlier export the run may replace.
absl::StatusOr<HeadImportanceJob> PrepareHeadImportanceJob(const v1::JobSpec& spec,
                                                           const ModelRegistry& models,
                                                           const ServerConfig& config,
                                                           const std::string& job_id = "");

// Runs a prepared job under `run` (progress per stage, cancellation between engine batches) and
// renders its JobResult.
absl::StatusOr<v1::JobResult> RunHeadImportanceJob(HeadImportanceJob& job, JobRun& run);

// The JobResult of a study of `job` (whole or merged from shards); an export that failed because
// the directory changed since submission names spec.head_importance.export_path.
absl::StatusOr<v1::JobResult> HeadImportanceResult(
    const HeadImportanceJob& job, const absl::StatusOr<engine::HeadImportanceStudy>& study);

}  // namespace attattr::server
