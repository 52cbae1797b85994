// Export of a pruned checkpoint (DESIGN.md §1, Head importance): the heads a head mask switches off
// are physically removed — their rows of the query/key/value projections and their columns of the
// attention output projection — and recorded in config.json as `pruned_heads` ({"layer": [heads]}),
// the way Hugging Face's `prune_heads` does, so the serving cluster (and this engine) load the
// smaller model as it is. Its logits equal the masked model's (tested to 1e-5, and against Hugging
// Face transformers 4.x itself). A layer whose every head is removed keeps its first head with a
// zero attention output projection (its contribution is exactly the masked zero) and leaves it out
// of `pruned_heads`: Hugging Face cannot run a layer without heads (a reshape of 0 elements).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/model.h"

namespace attattr::engine {

struct ExportedCheckpoint {
  std::string dir;
  int heads_removed = 0;      // the heads the mask switched off (a zeroed kept head counts)
  int64_t weights_bytes = 0;  // size of model.safetensors
  int64_t parameter_count = 0;
};

// Writes `model` without the heads where head_mask[l][h] == 0 into `out_dir`: config.json (the
// source's, plus pruned_heads), the source's tokenizer files (tokenizer.json, vocab.txt, merges,
// tokenizer_config.json, ...) and model.safetensors (fp32) with the family's own tensor names. The
// files are written and fsynced in a staging directory beside out_dir, then renamed into place in
// one step, so out_dir either does not change or holds the whole checkpoint; out_dir must not
// exist or be an empty directory, and of two exports racing to one path exactly one lands (the
// other: AlreadyExists). InvalidArgument for a mask of the wrong shape or with values other than
// 0 and 1 (naming head_mask[l][h]); FailedPrecondition for a model that was not loaded from a
// directory or is already pruned, or an out_dir that already holds files. Messages do not show
// out_dir (callers name it their own way).
// `owner` (a job id; empty = none) is recorded in the checkpoint as the file .attattr-owner
// (PrunedExportOwner reads it), and a directory already holding `owner`'s export is replaced by
// the new one in one step (renameat2 RENAME_EXCHANGE): a job run again after its interrupted run
// exported (a crash, a lost lease, a store outage before the job was finished) lands where that
// run did instead of failing on its own export.
// Not thread-safe against other writers of out_dir's parent beyond that race.
// OK when a pruned checkpoint of `info`'s family can be written: bert, distilbert, electra, roberta
// and xlm-roberta, whose Hugging Face classes read `pruned_heads` (transformers 4.x; 5.x removed
// head pruning, so there only attattr itself loads a pruned checkpoint); otherwise
// FailedPrecondition saying so (head masks and pruning curves work for every family).
absl::Status CheckPrunedExportSupported(const ModelInfo& info);

absl::StatusOr<ExportedCheckpoint> ExportPrunedCheckpoint(
    const Model& model, const std::vector<std::vector<float>>& head_mask,
    const std::string& out_dir, const std::string& owner = "");

// Whose export directory `dir` holds (the `owner` ExportPrunedCheckpoint recorded); "" when it
// holds none, or not one of those.
std::string PrunedExportOwner(const std::string& dir);

// The file in an exported checkpoint that names its owner.
inline constexpr char kPrunedExportOwnerFile[] = ".attattr-owner";

}  // namespace attattr::engine
