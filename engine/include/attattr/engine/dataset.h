// Reads labelled example sets from GLUE-style TSV files (the SST-2, RTE and MRPC layouts of
// ../shared/data, recognised by their header) or from headerless `text<TAB>text_pair` lines.
// Plain functions; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/example.h"

namespace attattr::engine {

enum class DatasetFormat {
  kSst2,       // header "sentence\tlabel"
  kRte,        // header "sentence1\tsentence2\tlabel\tidx", CSV-style quoting ("" escapes)
  kMrpc,       // header "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", UTF-8 BOM, " is literal
  kHeaderless  // each line "text" or "text\ttext_pair"; no labels
};

struct Dataset {
  DatasetFormat format = DatasetFormat::kHeaderless;
  std::vector<Example> examples;  // in file order
};

// Parses the file at `path`. `limit` > 0 keeps only the first `limit` examples. Errors name the
// file and the 1-based line: unreadable file, wrong column count, a label that is not an integer.
absl::StatusOr<Dataset> ReadDataset(const std::string& path, int limit = 0);

// ReadDataset for a file a caller names from outside (a job's dataset): reads only as far into
// the file as its first `limit` examples need (0 = all), in chunks that double from 64 KiB, so a
// large file with a small limit costs a small read; refuses (OutOfRange) to read more than
// `max_bytes` for them, without reading further. `display_name` stands for the file in messages
// (a relative path: the caller's root stays private).
absl::StatusOr<Dataset> ReadDatasetPrefix(const std::string& path, int limit, int64_t max_bytes,
                                          const std::string& display_name);

// Same, from text already in memory; `source_name` is used in error messages.
absl::StatusOr<Dataset> ParseDataset(const std::string& contents, const std::string& source_name,
                                     int limit = 0);

}  // namespace attattr::engine
