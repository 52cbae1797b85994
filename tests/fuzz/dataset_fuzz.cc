// libFuzzer entry point for dataset files (GLUE TSV: SST-2, RTE, MRPC layouts, or headerless
// lines), as a job's dataset reference reads them. Byte 0 is the example limit (0 = all); the rest
// is the file. ParseDataset must return examples or a Status with a message for anything; and
// ReadDatasetPrefix, which reads the same file in growing chunks only as far as the limit needs,
// must agree with it exactly (the same examples, or both refusing). Single-threaded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attattr/engine/dataset.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int limit = data[0] % 8;
  const std::string contents(reinterpret_cast<const char*>(data + 1), size - 1);
  absl::StatusOr<attattr::engine::Dataset> whole =
      attattr::engine::ParseDataset(contents, "fuzz.tsv", limit);
  if (whole.ok()) {
    if (limit > 0 && static_cast<int>(whole->examples.size()) > limit) std::abort();
  } else if (whole.status().message().empty()) {
    std::abort();
  }

  static attattr::fuzz::ScratchFile file(".tsv");
  file.Write(data + 1, size - 1);
  absl::StatusOr<attattr::engine::Dataset> prefix = attattr::engine::ReadDatasetPrefix(
      file.path(), limit, /*max_bytes=*/int64_t{1} << 20, "fuzz.tsv");
  if (prefix.ok() != whole.ok()) std::abort();
  if (prefix.ok()) {
    if (prefix->format != whole->format) std::abort();
    if (prefix->examples.size() != whole->examples.size()) std::abort();
    for (size_t i = 0; i < whole->examples.size(); ++i) {
      const auto& a = prefix->examples[i];
      const auto& b = whole->examples[i];
      if (a.text != b.text || a.text_pair != b.text_pair || a.label != b.label) std::abort();
    }
  } else if (prefix.status().message().empty()) {
    std::abort();
  }
  return 0;
}
