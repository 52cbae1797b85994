// Unit tests for the safetensors reader: header validation (every rejection the header promises,
// on files built here by a tiny writer), memory-mapped files, sharded checkpoints, and the shared
// SST-2 model when ../shared is present; and the engine's writer, whose every failed write must be
// reported. No dtype conversion here (the checkpoint loader's job). Hostile folders (FIFOs, nested
// JSON) are model_file_test's.
#include "safetensors_reader.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "safetensors_writer.h"
#include "support/test_paths.h"

namespace attattr::engine {
namespace {

using Json = nlohmann::json;

// gmock is not linked into the tests; a plain substring check with the message on failure.
#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in: " << (haystack)

// A whole safetensors file: 8-byte little-endian length, `header` verbatim, then `data_size`
// bytes of data (byte i holds i & 0xff).
std::string MakeFile(const std::string& header, std::size_t data_size) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header;
  for (std::size_t i = 0; i < data_size; ++i) out.push_back(static_cast<char>(i & 0xff));
  return out;
}

// One tensor for the writer below: laid out contiguously in the order given.
struct FakeTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

std::size_t SizeOf(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  return 1;
}

// A valid file holding `tensors` back to back, plus optional metadata.
std::string WriteSafetensors(const std::vector<FakeTensor>& tensors,
                             const Json& metadata = Json()) {
  Json header = Json::object();
  std::size_t offset = 0;
  for (const FakeTensor& t : tensors) {
    std::size_t n = SizeOf(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<std::size_t>(d);
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  return MakeFile(header.dump(), offset);
}

absl::StatusOr<SafetensorsHeader> Parse(const std::string& file,
                                        const std::string& label = "model.safetensors") {
  return ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(file.data()), file.size(), label);
}

// Parses a file whose header is `header` with `data_size` data bytes; expects InvalidArgument
// whose message holds the label and every string in `needles`.
void ExpectRejected(const std::string& header, std::size_t data_size,
                    const std::vector<std::string>& needles) {
  SCOPED_TRACE(header);
  absl::StatusOr<SafetensorsHeader> parsed = Parse(MakeFile(header, data_size));
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(parsed.status().message());
  EXPECT_CONTAINS(message, "model.safetensors");
  for (const std::string& needle : needles) EXPECT_CONTAINS(message, needle);
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(SafetensorsDType::kF64), 8u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kF32), 4u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kF16), 2u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kI64), 8u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kI32), 4u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kI16), 2u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kI8), 1u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kU8), 1u);
  EXPECT_EQ(DTypeSize(SafetensorsDType::kBool), 1u);
  EXPECT_EQ(DTypeName(SafetensorsDType::kBF16), "BF16");
  EXPECT_EQ(DTypeName(SafetensorsDType::kBool), "BOOL");
  EXPECT_EQ(DTypeName(SafetensorsDType::kF32), "F32");
}

TEST(ParseSafetensorsHeaderTest, ValidFileWithMetadata) {
  const std::string file =
      WriteSafetensors({{"b.weight", "F32", {2, 3}}, {"a.bias", "I64", {2}}}, {{"format", "pt"}});
  absl::StatusOr<SafetensorsHeader> header = Parse(file);
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 2u);
  // Sorted by name, not by offset.
  EXPECT_EQ(header->tensors[0].name, "a.bias");
  EXPECT_EQ(header->tensors[0].dtype, SafetensorsDType::kI64);
  EXPECT_EQ(header->tensors[0].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(header->tensors[0].begin, 24u);
  EXPECT_EQ(header->tensors[0].end, 40u);
  EXPECT_EQ(header->tensors[1].name, "b.weight");
  EXPECT_EQ(header->tensors[1].dtype, SafetensorsDType::kF32);
  EXPECT_EQ(header->tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(header->tensors[1].begin, 0u);
  EXPECT_EQ(header->tensors[1].end, 24u);
  EXPECT_EQ(header->metadata.at("format"), "pt");
  EXPECT_EQ(header->data_offset, file.size() - 40);
}

TEST(ParseSafetensorsHeaderTest, HalfPrecisionScalarsAndEmptyTensors) {
  const std::string file = WriteSafetensors({{"h", "F16", {3}},
                                             {"bf", "BF16", {2, 2}},
                                             {"empty", "F32", {0, 7}},
                                             {"scalar", "F64", {}},
                                             {"mask", "BOOL", {5}},
                                             {"i8", "I8", {1}},
                                             {"u8", "U8", {2}},
                                             {"i16", "I16", {1}},
                                             {"i32", "I32", {1}}});
  absl::StatusOr<SafetensorsHeader> header = Parse(file);
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->tensors.size(), 9u);
  EXPECT_TRUE(header->metadata.empty());
  for (const TensorEntry& t : header->tensors) {
    if (t.name == "h") {
      EXPECT_EQ(t.dtype, SafetensorsDType::kF16);
      EXPECT_EQ(t.end - t.begin, 6u);
    } else if (t.name == "bf") {
      EXPECT_EQ(t.dtype, SafetensorsDType::kBF16);
      EXPECT_EQ(t.end - t.begin, 8u);
    } else if (t.name == "empty") {
      EXPECT_EQ(t.begin, t.end);
      EXPECT_EQ(t.shape, (std::vector<int64_t>{0, 7}));
    } else if (t.name == "scalar") {
      EXPECT_TRUE(t.shape.empty());
      EXPECT_EQ(t.end - t.begin, 8u);
    } else if (t.name == "mask") {
      EXPECT_EQ(t.dtype, SafetensorsDType::kBool);
    }
  }
}

TEST(ParseSafetensorsHeaderTest, AcceptsEmptyHeaderObjectAndTrailingSpaces) {
  // Writers pad the header with spaces to an 8-byte boundary.
  absl::StatusOr<SafetensorsHeader> header = Parse(MakeFile("{}      ", 0));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(header->tensors.empty());
  EXPECT_EQ(header->data_offset, 16u);
}

TEST(ParseSafetensorsHeaderTest, ZeroSizeTensorInsideAnotherIsNotAnOverlap) {
  absl::StatusOr<SafetensorsHeader> header =
      Parse(MakeFile(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                     R"("e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                     16));
  EXPECT_TRUE(header.ok()) << header.status();
}

TEST(ParseSafetensorsHeaderTest, RejectsShortFiles) {
  for (std::size_t n = 0; n < 8; ++n) {
    const std::string file(n, '\0');
    absl::StatusOr<SafetensorsHeader> header = Parse(file);
    ASSERT_FALSE(header.ok());
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_CONTAINS(std::string(header.status().message()), "model.safetensors");
  }
  EXPECT_FALSE(ParseSafetensorsHeader(nullptr, 0, "x").ok());
}

TEST(ParseSafetensorsHeaderTest, RejectsHeaderLengthPastTheEnd) {
  std::string file = MakeFile("{}", 0);
  file[0] = 3;  // claims 3 bytes, has 2
  absl::StatusOr<SafetensorsHeader> header = Parse(file);
  ASSERT_FALSE(header.ok());
  EXPECT_CONTAINS(std::string(header.status().message()), "header length 3");

  // A length near 2^64 must not wrap around.
  std::string huge = MakeFile("{}", 0);
  for (int i = 0; i < 8; ++i) huge[i] = '\xff';
  EXPECT_EQ(Parse(huge).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseSafetensorsHeaderTest, RejectsTruncatedFiles) {
  const std::string file = WriteSafetensors({{"x", "F32", {3}}, {"y", "BF16", {5}}});
  ASSERT_TRUE(Parse(file).ok());
  for (std::size_t n = 0; n < file.size(); ++n) {
    // A fresh allocation of exactly n bytes, so ASan catches any read past it.
    std::vector<uint8_t> prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
    absl::StatusOr<SafetensorsHeader> header =
        ParseSafetensorsHeader(prefix.data(), prefix.size(), "model.safetensors");
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInvalidArgument) << "prefix " << n;
  }
}

TEST(ParseSafetensorsHeaderTest, RejectsNonObjectJson) {
  ExpectRejected("{\"a\":", 0, {"not valid JSON"});
  ExpectRejected("[1,2]", 0, {"not a JSON object"});
  ExpectRejected("\"str\"", 0, {"not a JSON object"});
  ExpectRejected("", 0, {"not valid JSON"});
  ExpectRejected("{} x", 0, {"not valid JSON"});
  ExpectRejected(std::string("{\"a\0\":1}", 8), 0, {});
}

TEST(ParseSafetensorsHeaderTest, RejectsMalformedEntries) {
  const std::string t = "tensor 'bert.pooler.dense.weight'";
  auto entry = [](const std::string& body) {
    return "{\"bert.pooler.dense.weight\":" + body + "}";
  };
  ExpectRejected(entry("[1]"), 0, {t, "not an object"});
  ExpectRejected(entry("3"), 0, {t, "not an object"});
  ExpectRejected(entry(R"({"shape":[1],"data_offsets":[0,4]})"), 4, {t, "dtype"});
  ExpectRejected(entry(R"({"dtype":"F32","data_offsets":[0,4]})"), 4, {t, "shape"});
  ExpectRejected(entry(R"({"dtype":"F32","shape":[1]})"), 4, {t, "data_offsets"});
  ExpectRejected(entry(R"({"dtype":"F8","shape":[1],"data_offsets":[0,1]})"), 1,
                 {t, "unknown dtype \"F8\""});
  ExpectRejected(entry(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})"), 4,
                 {t, "unknown dtype"});
  ExpectRejected(entry(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})"), 4, {t, "unknown dtype"});
}

TEST(ParseSafetensorsHeaderTest, RejectsBadShapes) {
  const std::string t = "tensor 'w'";
  auto entry = [](const std::string& shape) {
    return R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,8]}})";
  };
  ExpectRejected(entry("[-2]"), 8, {t, "shape"});
  ExpectRejected(entry("[2.5]"), 8, {t, "shape"});
  ExpectRejected(entry("[2.0]"), 8, {t, "shape"});
  ExpectRejected(entry("[\"2\"]"), 8, {t, "shape"});
  ExpectRejected(entry("[null]"), 8, {t, "shape"});
  ExpectRejected(entry("2"), 8, {t, "shape"});
  ExpectRejected(entry("[18446744073709551615]"), 8, {t, "shape"});  // > INT64_MAX
}

TEST(ParseSafetensorsHeaderTest, RejectsBadOffsets) {
  const std::string t = "tensor 'bert.pooler.dense.weight'";
  auto entry = [](const std::string& offsets) {
    return R"({"bert.pooler.dense.weight":{"dtype":"U8","shape":[4],"data_offsets":)" + offsets +
           "}}";
  };
  ExpectRejected(entry("[10, 4]"), 16, {t, "data_offsets [10, 4]", "begin > end"});
  ExpectRejected(entry("[0, 4, 8]"), 16, {t, "data_offsets"});
  ExpectRejected(entry("[0]"), 16, {t, "data_offsets"});
  ExpectRejected(entry("[-4, 0]"), 16, {t, "data_offsets"});
  ExpectRejected(entry("[0, 4.0]"), 16, {t, "data_offsets"});
  ExpectRejected(entry("{\"a\":0}"), 16, {t, "data_offsets"});
  ExpectRejected(entry("[\"0\", \"4\"]"), 16, {t, "data_offsets"});
  ExpectRejected(entry("[12, 16]"), 15, {t, "past the end of the data section (15 bytes)"});
  ExpectRejected(entry("[0, 18446744073709551615]"), 16, {t, "data_offsets"});
  // Byte count that does not match shape x dtype.
  ExpectRejected(entry("[0, 5]"), 16, {t, "hold 5 bytes", "needs 4 bytes"});
}

TEST(ParseSafetensorsHeaderTest, RejectsShapeProductOverflow) {
  // 2^32 * 2^32 * 16 wraps to 0 in 64 bits: must not be accepted as a 0-byte tensor.
  ExpectRejected(
      R"({"big":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0,
      {"tensor 'big'", "overflows"});
  // Elements fit but times the dtype size they wrap.
  ExpectRejected(R"({"big":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0,
                 {"tensor 'big'"});
  // An overflowing product with a zero dimension is an empty tensor.
  absl::StatusOr<SafetensorsHeader> empty = Parse(MakeFile(
      R"({"e":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", 0));
  EXPECT_TRUE(empty.ok()) << empty.status();
}

TEST(ParseSafetensorsHeaderTest, RejectsOverlappingTensors) {
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                 8, {"tensor 'b'", "overlap tensor 'a'"});
  // Contained range that starts later than a third, earlier-ending tensor.
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[12],"data_offsets":[0,12]},)"
                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                 R"("c":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}})",
                 12, {"overlap tensor 'a'"});
  // Same range twice.
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                 4, {"overlap"});
}

TEST(ParseSafetensorsHeaderTest, RejectsBadMetadata) {
  ExpectRejected(R"({"__metadata__":[1]})", 0, {"__metadata__"});
  ExpectRejected(R"({"__metadata__":{"format":1}})", 0, {"__metadata__", "format"});
  ExpectRejected(R"({"__metadata__":{"a":{"b":"c"}}})", 0, {"__metadata__"});
}

TEST(ParseSafetensorsHeaderTest, RejectsNamesListedTwiceAndFieldsGivenTwice) {
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                 R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                 2, {"tensor 'a'", "listed twice"});
  ExpectRejected(R"({"a":{"dtype":"U8","shape":[1],"shape":[2],"data_offsets":[0,1]}})", 1,
                 {"tensor 'a'", "\"shape\" is given twice"});
  // Keys the format does not define are skipped, whatever they hold.
  absl::StatusOr<SafetensorsHeader> header = Parse(MakeFile(
      R"({"a":{"x":{"y":[1,{"z":null}]},"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_TRUE(header.ok()) << header.status();
}

TEST(ParseSafetensorsHeaderTest, MessagesQuoteAtMostAPrefixOfNamesAndValues) {
  const std::string name(1 << 20, 'n');
  const std::string dtype(1 << 20, 'd');
  absl::StatusOr<SafetensorsHeader> header = Parse(MakeFile(
      "{\"" + name + R"(":{"dtype":")" + dtype + R"(","shape":[1],"data_offsets":[0,1]}})", 1));
  ASSERT_FALSE(header.ok());
  const std::string message(header.status().message());
  EXPECT_CONTAINS(message, "tensor 'nnnn");
  EXPECT_CONTAINS(message, "unknown dtype \"dddd");
  EXPECT_LT(message.size(), 1024u) << message.substr(0, 1024);
  // A syntax error after a long string: the parser's message quotes it, cut here.
  header = Parse(MakeFile("{\"" + name, 0));
  ASSERT_FALSE(header.ok());
  EXPECT_CONTAINS(std::string(header.status().message()), "not valid JSON");
  EXPECT_LT(header.status().message().size(), 1024u);
}

TEST(ParseSafetensorsHeaderTest, RejectsMoreThanAMillionTensors) {
  // The review's case: a header of empty entries, 1.6 GB of JSON tree for 99 MB. Now no tree is
  // built and the count is capped.
  const std::string entry = R"({"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
  std::string header = "{";
  header.reserve(1'000'001 * (entry.size() + 12));
  for (int i = 0; i <= 1'000'000; ++i) {
    if (i > 0) header += ',';
    header += "\"" + std::to_string(i) + "\":" + entry;
  }
  header += '}';
  ExpectRejected(header, 0, {"more than 1000000 tensors"});
}

TEST(ParseSafetensorsHeaderTest, FuzzRegressions) {
  // Inputs found while fuzzing tests/fuzz/safetensors_header_fuzz.cc, kept so they stay fixed.
  // (None crashed the parser at the time of writing; these are the fuzzer's own seed shapes.)
  const std::vector<std::string> inputs = {
      std::string("\x02\x00\x00\x00\x00\x00\x00\x00{}", 10),
      std::string("\x01\x00\x00\x00\x00\x00\x00\x00{", 9),
      std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8),
  };
  EXPECT_TRUE(Parse(inputs[0]).ok());
  EXPECT_FALSE(Parse(inputs[1]).ok());
  EXPECT_FALSE(Parse(inputs[2]).ok());
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = tmp_.path(); }
  ::attattr::testing::TempDir tmp_{"safetensors_reader_test"};
  std::string dir_;
};

TEST_F(SafetensorsFileTest, MapsAndFindsTensors) {
  const std::string path = dir_ + "/model.safetensors";
  const std::string file = WriteSafetensors({{"w", "F32", {2}}, {"b", "BF16", {3}}});
  WriteFile(path, file);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const SafetensorsFile& st = **opened;
  EXPECT_EQ(st.path(), path);
  absl::StatusOr<TensorView> w = st.Find("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->nbytes, 8u);
  EXPECT_EQ(w->entry->name, "w");
  const std::size_t data_offset = st.header().data_offset;
  EXPECT_EQ(std::memcmp(w->data, file.data() + data_offset, 8), 0);
  absl::StatusOr<TensorView> b = st.Find("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->nbytes, 6u);
  EXPECT_EQ(b->entry->dtype, SafetensorsDType::kBF16);
  EXPECT_EQ(std::memcmp(b->data, file.data() + data_offset + 8, 6), 0);

  absl::StatusOr<TensorView> missing = st.Find("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(std::string(missing.status().message()), "nope");
  EXPECT_CONTAINS(std::string(missing.status().message()), path);
}

TEST_F(SafetensorsFileTest, OpenErrors) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> missing =
      SafetensorsFile::Open(dir_ + "/absent.safetensors");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  const std::string empty = dir_ + "/empty.safetensors";
  WriteFile(empty, "");
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> e = SafetensorsFile::Open(empty);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(e.status().message()), empty);

  const std::string bad = dir_ + "/bad.safetensors";
  std::string file = WriteSafetensors({{"w", "F32", {4}}});
  file.resize(file.size() - 1);
  WriteFile(bad, file);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> b = SafetensorsFile::Open(bad);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(b.status().message()), "tensor 'w'");

  EXPECT_EQ(SafetensorsFile::Open(dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

class SafetensorsCheckpointTest : public SafetensorsFileTest {
 protected:
  void WriteIndex(const Json& weight_map) {
    WriteFile(dir_ + "/model.safetensors.index.json",
              Json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
  }
};

TEST_F(SafetensorsCheckpointTest, SingleFile) {
  WriteFile(dir_ + "/model.safetensors", WriteSafetensors({{"b", "F32", {1}}, {"a", "F16", {2}}}));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->TensorNames(), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE((*ckpt)->Find("a").ok());
  EXPECT_EQ((*ckpt)->Find("a")->nbytes, 4u);
  EXPECT_EQ((*ckpt)->FileOf("b"), dir_ + "/model.safetensors");
  EXPECT_EQ((*ckpt)->FileOf("zzz"), "");
  EXPECT_EQ((*ckpt)->Find("zzz").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsCheckpointTest, NeitherFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), dir_);
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_ + "/no_such_dir").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsCheckpointTest, Sharded) {
  WriteFile(dir_ + "/model-00001-of-00002.safetensors",
            WriteSafetensors({{"layer.0.w", "F32", {2, 2}}, {"layer.0.b", "F32", {2}}}));
  WriteFile(dir_ + "/model-00002-of-00002.safetensors",
            WriteSafetensors({{"layer.1.w", "BF16", {2, 2}}}));
  WriteIndex({{"layer.0.w", "model-00001-of-00002.safetensors"},
              {"layer.0.b", "model-00001-of-00002.safetensors"},
              {"layer.1.w", "model-00002-of-00002.safetensors"}});
  // The index wins over a stray single file.
  WriteFile(dir_ + "/model.safetensors", WriteSafetensors({{"other", "F32", {1}}}));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->TensorNames(),
            (std::vector<std::string>{"layer.0.b", "layer.0.w", "layer.1.w"}));
  absl::StatusOr<TensorView> w1 = (*ckpt)->Find("layer.1.w");
  ASSERT_TRUE(w1.ok());
  EXPECT_EQ(w1->entry->dtype, SafetensorsDType::kBF16);
  EXPECT_EQ(w1->nbytes, 8u);
  EXPECT_EQ((*ckpt)->FileOf("layer.1.w"), dir_ + "/model-00002-of-00002.safetensors");
  EXPECT_EQ((*ckpt)->FileOf("layer.0.b"), dir_ + "/model-00001-of-00002.safetensors");
  EXPECT_FALSE((*ckpt)->Find("other").ok());
}

TEST_F(SafetensorsCheckpointTest, MissingShardIsNotFound) {
  WriteFile(dir_ + "/a.safetensors", WriteSafetensors({{"x", "F32", {1}}}));
  WriteIndex({{"x", "a.safetensors"}, {"y", "b.safetensors"}});
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "b.safetensors");
}

TEST_F(SafetensorsCheckpointTest, TensorMissingFromItsShard) {
  WriteFile(dir_ + "/a.safetensors", WriteSafetensors({{"x", "F32", {1}}}));
  WriteFile(dir_ + "/b.safetensors", WriteSafetensors({{"y", "F32", {1}}}));
  WriteIndex({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}});
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "tensor 'y'");
}

TEST_F(SafetensorsCheckpointTest, TensorInTwoShards) {
  WriteFile(dir_ + "/a.safetensors", WriteSafetensors({{"x", "F32", {1}}}));
  WriteFile(dir_ + "/b.safetensors", WriteSafetensors({{"x", "F32", {1}}, {"y", "F32", {1}}}));
  WriteIndex({{"x", "a.safetensors"}, {"y", "b.safetensors"}});
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "two shards");
}

TEST_F(SafetensorsCheckpointTest, MalformedIndex) {
  WriteFile(dir_ + "/model.safetensors.index.json", "{not json");
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_).status().code(), absl::StatusCode::kInvalidArgument);
  WriteFile(dir_ + "/model.safetensors.index.json", R"({"metadata":{}})");
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_).status().code(), absl::StatusCode::kInvalidArgument);
  WriteIndex({{"x", 3}});
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_).status().code(), absl::StatusCode::kInvalidArgument);
  WriteIndex({{"x", "../outside.safetensors"}});
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsCheckpointTest, IndexLimits) {
  // Larger than an index may be (sparse: refused before it is read).
  const std::string index = dir_ + "/model.safetensors.index.json";
  WriteFile(index, "{}");
  std::filesystem::resize_file(index, std::size_t{65} << 20);
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "model.safetensors.index.json");
  // More tensors than a checkpoint may hold.
  std::string map = "{\"weight_map\": {";
  for (int i = 0; i <= 1'000'000; ++i) {
    if (i > 0) map += ',';
    map += "\"" + std::to_string(i) + "\":\"a.safetensors\"";
  }
  WriteFile(index, map + "}}");
  ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "more than 1000000 tensors");
  // Metadata of any shape is skipped; a tensor listed twice must name one shard.
  WriteFile(dir_ + "/a.safetensors", WriteSafetensors({{"x", "F32", {1}}}));
  WriteFile(index, R"({"metadata": {"total_size": 4, "x": [[{}]]}, )"
                   R"("weight_map": {"x": "a.safetensors", "x": "a.safetensors"}})");
  ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  WriteFile(index, R"({"weight_map": {"x": "a.safetensors", "x": "b.safetensors"}})");
  ckpt = SafetensorsCheckpoint::Open(dir_);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(std::string(ckpt.status().message()), "two shards");
}

// The writer: what it writes reads back, and a write that fails is reported.
TEST_F(SafetensorsFileTest, WriterRoundTrip) {
  const std::string path = dir_ + "/model.safetensors";
  ASSERT_TRUE(::attattr::engine::WriteSafetensors(
      path,
      {{"w", "F32", {2}, std::string(8, '\x01')}, {"m", "BOOL", {3}, std::string(3, '\x01')}}));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->header().tensors.size(), 2u);
  EXPECT_EQ((*file)->header().metadata.at("format"), "pt");
}

TEST_F(SafetensorsFileTest, WriterReportsAFullDisk) {
  // Everything fits the stream's buffer, so before the fix nothing was written until the
  // destructor flushed it, after `true` had been returned.
  const std::vector<RawTensor> tensors = {{"w", "F32", {4}, std::string(16, '\x01')}};
  if (std::filesystem::exists("/dev/full")) {
    EXPECT_FALSE(::attattr::engine::WriteSafetensors("/dev/full", tensors));
  }
  // A file-size limit (ulimit -f) that cuts the file short: in a child, whose limit it is.
  const std::string path = dir_ + "/limited.safetensors";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing the process
    const struct rlimit limit = {64, 64};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ::_exit(::attattr::engine::WriteSafetensors(path, tensors) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "WriteSafetensors returned true for a truncated file of "
                                    << std::filesystem::file_size(path) << " bytes";
  EXPECT_FALSE(
      ::attattr::engine::WriteSafetensors(dir_ + "/no/such/dir/model.safetensors", tensors));
}

TEST(SharedModelTest, ReadsSst2Checkpoint) {
  const std::string dir = testing::SharedDir() + "/models/sst2-bert-l4-h256";
  ATTATTR_SKIP_IF_MISSING(dir + "/model.safetensors");
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  absl::StatusOr<TensorView> emb = (*ckpt)->Find("bert.embeddings.word_embeddings.weight");
  ASSERT_TRUE(emb.ok()) << emb.status();
  EXPECT_EQ(emb->entry->dtype, SafetensorsDType::kF32);
  EXPECT_EQ(emb->entry->shape, (std::vector<int64_t>{30522, 256}));
  EXPECT_EQ(emb->nbytes, 30522u * 256u * 4u);
  const std::vector<std::string> names = (*ckpt)->TensorNames();
  EXPECT_GT(names.size(), 50u);
  for (const char* name : {"bert.pooler.dense.weight", "classifier.weight",
                           "bert.encoder.layer.3.attention.self.query.weight"}) {
    EXPECT_TRUE((*ckpt)->Find(name).ok()) << name;
  }
  absl::StatusOr<TensorView> classifier = (*ckpt)->Find("classifier.weight");
  ASSERT_TRUE(classifier.ok());
  EXPECT_EQ(classifier->entry->shape, (std::vector<int64_t>{2, 256}));
}

}  // namespace
}  // namespace attattr::engine
