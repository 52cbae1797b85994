// Unit tests for the GLUE TSV readers: format detection, RTE quoting, MRPC's BOM and literal
// quotes, headerless files, errors with file:line, `limit`, and (when ../shared is present) row
// counts and first rows of the real SST-2, RTE and MRPC files. No tokenization here.
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "attattr/engine/dataset.h"
#include "gtest/gtest.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in: " << (haystack)

Dataset ParseOk(const std::string& text, int limit = 0) {
  absl::StatusOr<Dataset> parsed = ParseDataset(text, "test.tsv", limit);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : Dataset();
}

void ExpectError(const std::string& text, const std::string& where, const std::string& what = "") {
  SCOPED_TRACE(text);
  absl::StatusOr<Dataset> parsed = ParseDataset(text, "test.tsv");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(parsed.status().message(), where);
  if (!what.empty()) {
    EXPECT_CONTAINS(parsed.status().message(), what);
  }
}

// ---------------------------------------------------------------------------------------------
// SST-2

TEST(ParseDatasetTest, Sst2StripsTrailingWhitespaceAndReadsLabels) {
  const Dataset d = ParseOk("sentence\tlabel\nit 's good . \t1\nbad  \t0\n");
  EXPECT_EQ(d.format, DatasetFormat::kSst2);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].text, "it 's good .");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_FALSE(d.examples[0].text_pair.has_value());
  EXPECT_EQ(d.examples[1].text, "bad");
  EXPECT_EQ(d.examples[1].label, 0);
}

TEST(ParseDatasetTest, Sst2QuotesAreLiteral) {
  const Dataset d = ParseOk("sentence\tlabel\n\"quoted\" text \t1\n");
  ASSERT_EQ(d.examples.size(), 1u);
  EXPECT_EQ(d.examples[0].text, "\"quoted\" text");
}

TEST(ParseDatasetTest, CrLfAndBlankLinesAndNoFinalNewline) {
  const Dataset d = ParseOk("sentence\tlabel\r\n\r\na \t1\r\n   \n\t\nb \t0");
  EXPECT_EQ(d.format, DatasetFormat::kSst2);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].text, "a");
  EXPECT_EQ(d.examples[1].text, "b");
  EXPECT_EQ(d.examples[1].label, 0);
}

TEST(ParseDatasetTest, Sst2Errors) {
  ExpectError("sentence\tlabel\ngood \t1\nbad \tneg\n", "test.tsv:3", "'neg'");
  ExpectError("sentence\tlabel\ngood \t1.0\n", "test.tsv:2", "not an integer");
  ExpectError("sentence\tlabel\ngood \t\n", "test.tsv:2", "not an integer");
  ExpectError("sentence\tlabel\ngood\n", "test.tsv:2", "found 1 tab-separated field");
  ExpectError("sentence\tlabel\na\tb\t1\n", "test.tsv:2", "found 3");
  ExpectError("sentence\tlabel\n\nx \t-2\n", "test.tsv:3");
  ExpectError("sentence\tlabel\nx \t99999999999999999999\n", "test.tsv:2");
}

// ---------------------------------------------------------------------------------------------
// RTE

constexpr char kRteHeader[] = "sentence1\tsentence2\tlabel\tidx\n";

TEST(ParseDatasetTest, RteQuoting) {
  const Dataset d = ParseOk(std::string(kRteHeader) +
                            "plain one\tplain two\t0\t0\n"
                            "\"He said \"\"hi\"\".\"\t\"Tab\tinside\"\t1\t1\n"
                            "\"\"\t\"\"\"\"\"\"\t0\t2\n"
                            "mid \"quote\" stays\tx\t1\t3\n");
  EXPECT_EQ(d.format, DatasetFormat::kRte);
  ASSERT_EQ(d.examples.size(), 4u);
  EXPECT_EQ(d.examples[0].text, "plain one");
  EXPECT_EQ(*d.examples[0].text_pair, "plain two");
  EXPECT_EQ(d.examples[0].label, 0);
  EXPECT_EQ(d.examples[1].text, "He said \"hi\".");
  EXPECT_EQ(*d.examples[1].text_pair, "Tab\tinside");
  EXPECT_EQ(d.examples[1].label, 1);
  EXPECT_EQ(d.examples[2].text, "");
  EXPECT_EQ(*d.examples[2].text_pair, "\"\"");
  EXPECT_EQ(d.examples[3].text, "mid \"quote\" stays");
}

TEST(ParseDatasetTest, RteQuotedFieldSpanningLines) {
  const std::string text = std::string(kRteHeader) +
                           "\"first line\r\nsecond line\"\th\t1\t0\r\n"
                           "next\tpair\t0\t1\n"
                           "bad\tpair\tx\t2\n";
  absl::StatusOr<Dataset> parsed = ParseDataset(text, "test.tsv");
  ASSERT_FALSE(parsed.ok());
  // The multi-line record counts as two lines, so the bad label is on line 5.
  EXPECT_CONTAINS(parsed.status().message(), "test.tsv:5");

  const Dataset d = ParseOk(text, /*limit=*/2);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].text, "first line\nsecond line");
  EXPECT_EQ(d.examples[1].text, "next");
}

TEST(ParseDatasetTest, RteErrors) {
  ExpectError(std::string(kRteHeader) + "a\tb\t1\n", "test.tsv:2", "found 3");
  ExpectError(std::string(kRteHeader) + "a\tb\tentailment\t0\n", "test.tsv:2", "'entailment'");
  ExpectError(std::string(kRteHeader) + "ok\tok\t0\t0\n\"never closed\tb\t1\t1\n", "test.tsv:3",
              "not closed");
  ExpectError(std::string(kRteHeader) + "\"closed\"junk\tb\t1\t0\n", "test.tsv:2",
              "after the closing quote");
}

// ---------------------------------------------------------------------------------------------
// MRPC

TEST(ParseDatasetTest, MrpcBomAndLiteralQuotes) {
  const Dataset d = ParseOk(
      "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
      "1\t11\t12\tHe said \"x\".\t\"The start only\n"
      "0\t21\t22\tA\tB\n");
  EXPECT_EQ(d.format, DatasetFormat::kMrpc);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].text, "He said \"x\".");
  EXPECT_EQ(*d.examples[0].text_pair, "\"The start only");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[1].label, 0);
}

TEST(ParseDatasetTest, MrpcErrors) {
  const std::string header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
  ExpectError(header + "1\t1\t2\tonly four\n", "test.tsv:2", "found 4");
  ExpectError("\xEF\xBB\xBF" + header + "yes\t1\t2\ta\tb\n", "test.tsv:2", "'yes'");
}

// ---------------------------------------------------------------------------------------------
// Headerless

TEST(ParseDatasetTest, Headerless) {
  const Dataset d = ParseOk("a single text\nfirst\tsecond\n\n\"quotes\" stay\n");
  EXPECT_EQ(d.format, DatasetFormat::kHeaderless);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].text, "a single text");
  EXPECT_FALSE(d.examples[0].text_pair.has_value());
  EXPECT_EQ(d.examples[0].label, -1);
  EXPECT_EQ(d.examples[1].text, "first");
  EXPECT_EQ(*d.examples[1].text_pair, "second");
  EXPECT_EQ(d.examples[2].text, "\"quotes\" stay");
  ExpectError("one\ntwo\tthree\tfour\n", "test.tsv:2", "found 3");
}

TEST(ParseDatasetTest, EmptyInputs) {
  EXPECT_TRUE(ParseOk("").examples.empty());
  EXPECT_TRUE(ParseOk("\n\n").examples.empty());
  const Dataset d = ParseOk("sentence\tlabel\n");
  EXPECT_EQ(d.format, DatasetFormat::kSst2);
  EXPECT_TRUE(d.examples.empty());
}

TEST(ParseDatasetTest, LimitStopsEarly) {
  const std::string text = "sentence\tlabel\na \t1\nb \t0\nc \tnot-a-label\n";
  const Dataset d = ParseOk(text, 2);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[1].text, "b");
  // Without a limit the bad row is reached.
  EXPECT_FALSE(ParseDataset(text, "test.tsv").ok());
  EXPECT_EQ(ParseOk(text.substr(0, text.find("c \t")), 0).examples.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Files

TEST(ReadDatasetTest, MissingFileAndLocalFile) {
  const testing::TempDir tmp("dataset_tsv_test");
  const std::string dir = tmp.path();
  absl::StatusOr<Dataset> missing = ReadDataset(dir + "/absent.tsv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(missing.status().message(), "absent.tsv");
  EXPECT_FALSE(ReadDataset(dir).ok());

  const std::string path = dir + "/bad.tsv";
  {
    std::ofstream out(path, std::ios::binary);
    out << "sentence\tlabel\nfine \t0\nbroken \tx\n";
  }
  absl::StatusOr<Dataset> bad = ReadDataset(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_CONTAINS(bad.status().message(), path + ":3");
}

struct RealFile {
  const char* relative;
  DatasetFormat format;
  std::size_t rows;
  const char* first_text;
  const char* first_pair;  // nullptr: none
  int first_label;
};

class RealDataTest : public ::testing::TestWithParam<RealFile> {};

TEST_P(RealDataTest, ParsesWithExpectedRowsAndLabels) {
  const RealFile& f = GetParam();
  const std::string path = testing::SharedDir() + "/data/" + f.relative;
  ATTATTR_SKIP_IF_MISSING(path);
  absl::StatusOr<Dataset> d = ReadDataset(path);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->format, f.format);
  ASSERT_EQ(d->examples.size(), f.rows);
  const Example& first = d->examples.front();
  EXPECT_EQ(first.text, f.first_text);
  if (f.first_pair == nullptr) {
    EXPECT_FALSE(first.text_pair.has_value());
  } else {
    ASSERT_TRUE(first.text_pair.has_value());
    EXPECT_EQ(*first.text_pair, f.first_pair);
  }
  EXPECT_EQ(first.label, f.first_label);
  std::size_t counts[2] = {0, 0};
  for (const Example& e : d->examples) {
    ASSERT_TRUE(e.label == 0 || e.label == 1) << e.text;
    ++counts[e.label];
    EXPECT_EQ(e.text_pair.has_value(), f.first_pair != nullptr);
    if (f.format == DatasetFormat::kSst2) {
      EXPECT_FALSE(e.text.empty());
      EXPECT_NE(e.text.back(), ' ');
    }
  }
  EXPECT_GT(counts[0], 0u);
  EXPECT_GT(counts[1], 0u);

  absl::StatusOr<Dataset> limited = ReadDataset(path, 5);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->examples.size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(
    SharedData, RealDataTest,
    ::testing::Values(
        RealFile{"sst2/train.tsv", DatasetFormat::kSst2, 67349,
                 "hide new secretions from the parental units", nullptr, 0},
        RealFile{"sst2/dev.tsv", DatasetFormat::kSst2, 872,
                 "it 's a charming and often affecting journey .", nullptr, 1},
        RealFile{"rte/train.tsv", DatasetFormat::kRte, 2490,
                 "No Weapons of Mass Destruction Found in Iraq Yet.",
                 "Weapons of Mass Destruction Found in Iraq.", 1},
        RealFile{"rte/dev.tsv", DatasetFormat::kRte, 277,
                 "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer "
                 "at age 44, according to the Christopher Reeve Foundation.",
                 "Christopher Reeve had an accident.", 1},
        RealFile{"mrpc/train.tsv", DatasetFormat::kMrpc, 3668,
                 "Amrozi accused his brother, whom he called \"the witness\", of deliberately "
                 "distorting his evidence.",
                 "Referring to him as only \"the witness\", Amrozi accused his brother of "
                 "deliberately distorting his evidence.",
                 1},
        RealFile{"mrpc/dev.tsv", DatasetFormat::kMrpc, 408,
                 "He said the foodservice pie business doesn't fit the company's long-term "
                 "growth strategy.",
                 "\"The foodservice pie business does not fit our long-term growth strategy.", 1}),
    [](const ::testing::TestParamInfo<RealFile>& info) {
      std::string name = info.param.relative;
      for (char& c : name) {
        if (c == '/' || c == '.') c = '_';
      }
      return name;
    });

TEST(RteFileTest, QuotedRowsAreUnescaped) {
  const std::string path = testing::SharedDir() + "/data/rte/train.tsv";
  ATTATTR_SKIP_IF_MISSING(path);
  absl::StatusOr<Dataset> d = ReadDataset(path);
  ASSERT_TRUE(d.ok()) << d.status();
  // Line 14 of the file (example 12): "Valero ... found ""extensive"" additional damage ..."
  ASSERT_GT(d->examples.size(), 26u);
  const std::string valero = "Valero Energy Corp., on Monday, said it found \"extensive\"";
  EXPECT_EQ(d->examples[12].text.rfind(valero, 0), 0u) << d->examples[12].text;
  EXPECT_EQ(d->examples[12].label, 0);
  // Line 28 (example 26): both sentences quoted.
  EXPECT_EQ(*d->examples[26].text_pair, "Lin Piao wrote the \"Little Red Book\".");
  // No quoted field in this file holds a tab or a newline: finding one means a quote was misread.
  for (const Example& e : d->examples) {
    EXPECT_EQ(e.text.find_first_of("\t\n"), std::string::npos) << e.text;
    EXPECT_EQ(e.text_pair->find_first_of("\t\n"), std::string::npos) << *e.text_pair;
  }
}

}  // namespace
}  // namespace attattr::engine
