// Pruned-checkpoint export on the shared SST-2 model: the exported directory loads, reports the
// heads it kept, records pruned_heads as Hugging Face does, is smaller, and its logits equal the
// masked model's within 1e-5 (a whole layer's heads removed included); bad masks and targets are
// refused. Prints size and forward time against the original (reported, never asserted).
#include "attattr/engine/pruned_export.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include "attattr/engine/dataset.h"
#include "nlohmann/json.hpp"
#include "support/hf_pruned_check.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

namespace fs = std::filesystem;
using ::attattr::testing::SharedDir;
using ::attattr::testing::Sst2ModelDir;

class PrunedExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
    auto model = Model::Load(Sst2ModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    dir_ = ::attattr::testing::MakeTempDir("attattr-export");
    auto dev = ReadDataset(SharedDir() + "/data/sst2/dev.tsv", 64);
    ASSERT_TRUE(dev.ok());
    for (const auto& e : dev->examples) encodings_.push_back(*model_->Encode(e));
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Heads (l + h) % 3 == 0 removed, and every head of layer 2.
  std::vector<std::vector<float>> Mask() const {
    const auto& info = model_->info();
    std::vector<std::vector<float>> m(info.num_layers, std::vector<float>(info.num_heads, 1.0f));
    for (int l = 0; l < info.num_layers; ++l) {
      for (int h = 0; h < info.num_heads; ++h) {
        if ((l + h) % 3 == 0 || l == 2) m[l][h] = 0.0f;
      }
    }
    return m;
  }
  std::unique_ptr<Model> model_;
  std::string dir_;
  std::vector<Encoding> encodings_;
};

TEST_F(PrunedExportTest, ExportedModelEqualsTheMaskedModel) {
  const auto mask = Mask();
  const std::string out = dir_ + "/pruned";
  auto exported = ExportPrunedCheckpoint(*model_, mask, out);
  ASSERT_TRUE(exported.ok()) << exported.status();
  auto pruned = Model::Load(out);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  const auto& info = (*pruned)->info();
  int kept_total = 0;
  for (int l = 0; l < info.num_layers; ++l) {
    int kept = 0;
    for (float v : mask[l]) kept += v != 0.0f;
    // Layer 2 lost every head: its first stays, silenced, so Hugging Face can run the layer.
    EXPECT_EQ(info.heads_per_layer[l], l == 2 ? 1 : kept) << "layer " << l;
    kept_total += kept;
  }
  EXPECT_EQ(exported->heads_removed, info.num_layers * info.num_heads - kept_total);
  EXPECT_LT(exported->parameter_count, model_->info().parameter_count);
  EXPECT_EQ(exported->parameter_count, info.parameter_count);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(out + "/config.json"));
  EXPECT_EQ(config["pruned_heads"]["2"], (std::vector<int>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(config["pruned_heads"]["0"], (std::vector<int>{0, 3, 6}));

  auto masked = model_->Predict(encodings_, &mask);
  auto small = (*pruned)->Predict(encodings_);
  ASSERT_TRUE(masked.ok() && small.ok());
  for (size_t i = 0; i < encodings_.size(); ++i) {
    for (size_t c = 0; c < (*masked)[i].logits.size(); ++c) {
      EXPECT_NEAR((*small)[i].logits[c], (*masked)[i].logits[c], 1e-5) << i;
    }
  }
  // Size and speed against the original, for the record.
  const auto original_bytes = fs::file_size(Sst2ModelDir() + "/model.safetensors");
  auto time = [&](const Model& m) {
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_TRUE(m.Predict(encodings_).ok());
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double t_original = time(*model_), t_pruned = time(**pruned);
  std::printf(
      "export: %d of %d heads removed; model.safetensors %llu -> %lld bytes (%.1f%%); "
      "encoder+head parameters %lld -> %lld; forward of 64 dev sentences %.1f -> %.1f ms\n",
      exported->heads_removed, model_->info().num_layers * model_->info().num_heads,
      static_cast<unsigned long long>(original_bytes),
      static_cast<long long>(exported->weights_bytes),
      100.0 * exported->weights_bytes / original_bytes,
      static_cast<long long>(model_->info().parameter_count),
      static_cast<long long>(exported->parameter_count), t_original * 1e3, t_pruned * 1e3);
  // An exported model is not exported again (its head indices no longer match the original's).
  auto again = ExportPrunedCheckpoint(**pruned, mask, dir_ + "/again");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Regression (checkpoint review): an export that removed every head of a layer loaded here but
// crashed Hugging Face ("cannot reshape tensor of 0 elements"). Hugging Face transformers 4.x runs
// the export and the original masked the same way; the logits agree with each other and with the
// engine's.
TEST_F(PrunedExportTest, HuggingFaceRunsTheExportAsTheMaskedOriginal) {
  if (!::attattr::testing::HfPruneCheckInstalled()) {
    ATTATTR_MISSING_DEPENDENCY("no transformers 4.x at " << ATTATTR_PRUNE_SITE
                                                         << " (scripts/setup.sh installs it)");
  }
  const auto mask = Mask();  // layer 2 loses every head
  const std::string out = dir_ + "/pruned";
  ASSERT_TRUE(ExportPrunedCheckpoint(*model_, mask, out).ok());
  const std::vector<Encoding> some(encodings_.begin(), encodings_.begin() + 16);
  auto masked = model_->Predict(some, &mask);
  ASSERT_TRUE(masked.ok()) << masked.status();
  std::vector<std::vector<float>> logits;
  for (const auto& p : *masked) logits.push_back(p.logits);
  const auto reply =
      ::attattr::testing::RunHfPrunedCheck(Sst2ModelDir(), out, mask, some, logits, dir_);
  ASSERT_FALSE(reply.is_null());
  EXPECT_EQ(reply["heads_per_layer"], (std::vector<int>{5, 6, 1, 5}));
  EXPECT_LT(reply["pruned_vs_masked"].get<double>(), 1e-5) << reply;
  EXPECT_LT(reply["pruned_vs_attattr"].get<double>(), 1e-4) << reply;
  std::printf("Hugging Face %s: pruned vs masked %.2e, vs the engine %.2e\n",
              reply["transformers"].get<std::string>().c_str(),
              reply["pruned_vs_masked"].get<double>(), reply["pruned_vs_attattr"].get<double>());
}

TEST_F(PrunedExportTest, BadMasksAndTargetsAreRefused) {
  auto mask = Mask();
  mask[1][4] = 0.5f;
  auto bad = ExportPrunedCheckpoint(*model_, mask, dir_ + "/a");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("head_mask[1][4]"), std::string::npos);
  mask = Mask();
  mask.pop_back();
  EXPECT_EQ(ExportPrunedCheckpoint(*model_, mask, dir_ + "/b").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::ofstream(dir_ + "/occupied.txt") << "x";
  auto occupied = ExportPrunedCheckpoint(*model_, Mask(), dir_);
  EXPECT_EQ(occupied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(dir_ + "/a/model.safetensors"));
}

// Regression (durability review): a job run again after its interrupted run had exported (a
// crash, a lapsed lease, a store outage before the job was finished) failed on its own export.
// An export names its owner; the same owner's export is replaced in one step, anyone else's (or
// an export without an owner) still refuses the occupied directory.
TEST_F(PrunedExportTest, TheSameOwnersEarlierExportIsReplacedOthersAreRefused) {
  const std::string target = dir_ + "/owned";
  auto first = ExportPrunedCheckpoint(*model_, Mask(), target, "jobs/a");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(PrunedExportOwner(target), "jobs/a");
  std::ofstream(target + "/from-the-first-run") << "x";  // to see the directory replaced
  auto again = ExportPrunedCheckpoint(*model_, Mask(), target, "jobs/a");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->heads_removed, first->heads_removed);
  EXPECT_TRUE(fs::exists(target + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(target + "/from-the-first-run"));
  EXPECT_EQ(PrunedExportOwner(target), "jobs/a");
  for (const std::string& other : {std::string("jobs/b"), std::string()}) {
    EXPECT_EQ(ExportPrunedCheckpoint(*model_, Mask(), target, other).status().code(),
              absl::StatusCode::kFailedPrecondition)
        << other;
  }
  EXPECT_EQ(PrunedExportOwner(target), "jobs/a");
  EXPECT_EQ(PrunedExportOwner(dir_), "");  // no owner file
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find(".attattr-export-"), std::string::npos)
        << "staging (or the replaced export) left behind: " << entry.path();
  }
}

// Exports land whole or not at all: two exports racing to one path — exactly one succeeds, the
// other is AlreadyExists — and no staging directory or half-written file is left behind.
TEST_F(PrunedExportTest, TwoExportsToOnePathLandExactlyOnceAndNothingHalfWrittenRemains) {
  const std::string target = dir_ + "/race";
  auto first = std::async(std::launch::async,
                          [&] { return ExportPrunedCheckpoint(*model_, Mask(), target); });
  auto second = std::async(std::launch::async,
                           [&] { return ExportPrunedCheckpoint(*model_, Mask(), target); });
  const auto a = first.get();
  const auto b = second.get();
  EXPECT_EQ(a.ok() + b.ok(), 1) << a.status() << " / " << b.status();
  const absl::Status lost = a.ok() ? b.status() : a.status();
  EXPECT_TRUE(lost.code() == absl::StatusCode::kAlreadyExists ||
              lost.code() == absl::StatusCode::kFailedPrecondition)
      << lost;
  EXPECT_EQ(lost.message().find(dir_), std::string::npos) << "no absolute path: " << lost;
  EXPECT_TRUE(fs::exists(target + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(target + "/config.json"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find(".attattr-export-"), std::string::npos)
        << "staging left behind: " << entry.path();
  }
  // An empty directory is a fine target (the chart may pre-create it); it is replaced whole.
  fs::create_directories(dir_ + "/empty");
  EXPECT_TRUE(ExportPrunedCheckpoint(*model_, Mask(), dir_ + "/empty").ok());
  EXPECT_TRUE(fs::exists(dir_ + "/empty/vocab.txt"));
}

}  // namespace
}  // namespace attattr::engine
