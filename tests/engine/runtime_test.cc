// Process and per-thread LibTorch threads (attattr/engine/runtime.h): SetThreadIntraOpThreads
// changes the calling thread's intra-op threads only — OpenMP's count and, where LibTorch carries
// MKL, MKL's thread-local one — and a whole attribution run on that thread (LibTorch's own lazy
// per-thread initialisation included) does not put the process's count back; other threads keep
// the process's setting.
#include "attattr/engine/runtime.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>

#include "attattr/engine/attention_attribution.h"
#include "support/test_paths.h"

// MKL's C entry point (where LibTorch links MKL: the PyPI wheel); null otherwise.
extern "C" int MKL_Get_Max_Threads() __attribute__((weak));

namespace attattr::engine {
namespace {

TEST(RuntimeTest, ThreadSettingStaysOnItsThread) {
  const std::string dir = ::attattr::testing::SharedDir() + "/models/sst2-bert-l4-h256";
  ATTATTR_SKIP_IF_MISSING(dir);
  auto model = Model::Load(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  RuntimeOptions process;
  process.intra_op_threads = 2;
  ASSERT_TRUE(ConfigureRuntime(process).ok());
  ASSERT_EQ(IntraOpThreads(), 2);

  int before = 0, after_work = 0, mkl = -1;
  std::string ran;
  std::thread worker([&] {
    SetThreadIntraOpThreads(1);
    before = IntraOpThreads();
    AttributionOptions options;
    options.steps = 2;
    auto r = AttributeExamples(
        **model, {{"a gripping , beautifully acted film .", std::nullopt, -1}}, options);
    ran = r.ok() ? "ok" : r.status().ToString();
    after_work = IntraOpThreads();
    if (MKL_Get_Max_Threads != nullptr) mkl = MKL_Get_Max_Threads();
  });
  worker.join();
  EXPECT_EQ(ran, "ok");
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after_work, 1);
  if (MKL_Get_Max_Threads != nullptr) {
    EXPECT_EQ(mkl, 1);
    EXPECT_EQ(MKL_Get_Max_Threads(), 2);  // this thread keeps the process's
  }
  EXPECT_EQ(IntraOpThreads(), 2);

  // A thread that sets nothing gets the process's count.
  int other = 0;
  std::thread plain([&] { other = IntraOpThreads(); });
  plain.join();
  EXPECT_EQ(other, 2);
}

}  // namespace
}  // namespace attattr::engine
