// Safetensors parsing and memory mapping (safetensors_reader.h has the format and the contract).
// Validates every header field before anything points into the data; it does not interpret tensor
// bytes (no byte swapping, no dtype conversion) and does not require tensors to be aligned.
// Parsing is a pure function; SafetensorsFile/SafetensorsCheckpoint are immutable after Open().
// Written here rather than taken from a library: no safetensors reader is packaged for C++, and
// the format is a JSON header and an mmap. The header and the sharded index are read with SAX
// handlers (nlohmann's parser, which is iterative) straight into the entries they describe: no
// JSON tree is built, so a header of 100 000 nested brackets costs nothing but an error, and a
// 99 MB header of 1.7 million empty entries neither builds a 1.6 GB tree nor gets past the tensor
// cap. Messages describe values by kind and quote at most a short prefix (never dump()).
#include "safetensors_reader.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/quote.h"
#include "attattr/base/status_macros.h"
#include "model_file.h"
#include "nlohmann/json.hpp"
#include "untrusted_json.h"

namespace attattr::engine {
namespace {

using Json = nlohmann::json;

// Debian's abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so
// std::string_view must be converted before it reaches StrCat.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The reference implementation (huggingface/safetensors) refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// The most tensors one file, or one checkpoint with all its shards, may hold. Real checkpoints hold
// thousands (a 671 B-parameter mixture of experts, ~90 000 across its shards).
constexpr std::size_t kMaxTensors = 1'000'000;
// How much of a tensor name messages quote (real names are under 100 bytes).
constexpr std::size_t kQuotedNameBytes = 200;

constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";

struct DTypeInfo {
  SafetensorsDType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::kF64, "F64", 8}, {SafetensorsDType::kF32, "F32", 4},
    {SafetensorsDType::kF16, "F16", 2}, {SafetensorsDType::kBF16, "BF16", 2},
    {SafetensorsDType::kI64, "I64", 8}, {SafetensorsDType::kI32, "I32", 4},
    {SafetensorsDType::kI16, "I16", 2}, {SafetensorsDType::kI8, "I8", 1},
    {SafetensorsDType::kU8, "U8", 1},   {SafetensorsDType::kBool, "BOOL", 1},
};

bool ParseDType(std::string_view name, SafetensorsDType* out) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) {
      *out = info.dtype;
      return true;
    }
  }
  return false;
}

absl::Status TensorError(absl::string_view file_label, absl::string_view tensor,
                         absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(file_label, ": tensor ", QuoteInput(tensor, kQuotedNameBytes), ": ", what));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// One scalar SAX event, kept only as long as the handler looks at it.
struct Scalar {
  enum class Kind { kNull, kBool, kInt, kUint, kFloat, kString };
  Kind kind = Kind::kNull;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  const std::string* text = nullptr;  // kString: the string; kFloat: the number as written

  // Reads an integer into [0, INT64_MAX]; false for non-integers and negatives.
  bool NonNegativeInt(uint64_t* out) const {
    if (kind == Kind::kUint && u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      *out = u;
      return true;
    }
    if (kind == Kind::kInt && i >= 0) {
      *out = static_cast<uint64_t>(i);
      return true;
    }
    return false;
  }
  // For messages: bounded, as untrusted_json.h describes values.
  std::string Describe() const {
    switch (kind) {
      case Kind::kNull:
        return "null";
      case Kind::kBool:
        return b ? "true" : "false";
      case Kind::kInt:
        return absl::StrCat(i);
      case Kind::kUint:
        return absl::StrCat(u);
      case Kind::kFloat:
        return EscapeForLog(*text, 32);
      case Kind::kString:
        return DescribeJsonString(*text);
    }
    return "?";
  }
};

// The SAX events nlohmann's parser delivers, funnelled into three: a scalar, a container opening
// (object or array), a container closing; plus object keys. A container the reader does not look
// into (a key of an entry it does not know) is skipped by counting. Every handler returns false to
// stop the parse, and Parse() returns why. The parser itself is iterative, and nothing here builds
// a tree, so neither nesting nor size costs more than the entries kept.
class SaxReader {
 public:
  explicit SaxReader(absl::string_view label) : label_(label) {}
  virtual ~SaxReader() = default;

  bool null() { return Skipping() || OnScalar(Scalar{}); }
  bool boolean(bool v) {
    Scalar s;
    s.kind = Scalar::Kind::kBool;
    s.b = v;
    return Skipping() || OnScalar(s);
  }
  bool number_integer(Json::number_integer_t v) {
    Scalar s;
    s.kind = Scalar::Kind::kInt;
    s.i = v;
    return Skipping() || OnScalar(s);
  }
  bool number_unsigned(Json::number_unsigned_t v) {
    Scalar s;
    s.kind = Scalar::Kind::kUint;
    s.u = v;
    return Skipping() || OnScalar(s);
  }
  bool number_float(Json::number_float_t, const Json::string_t& text) {
    Scalar s;
    s.kind = Scalar::Kind::kFloat;
    s.text = &text;
    return Skipping() || OnScalar(s);
  }
  bool string(Json::string_t& v) {
    Scalar s;
    s.kind = Scalar::Kind::kString;
    s.text = &v;
    return Skipping() || OnScalar(s);
  }
  bool binary(Json::binary_t&) { return Fail(absl::StrCat(label_, ": binary data in JSON")); }
  bool start_object(std::size_t) { return Open(/*object=*/true); }
  bool start_array(std::size_t) { return Open(/*object=*/false); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(Json::string_t& k) { return Skipping() || OnKey(k); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    // The message quotes the last token read, which can be most of the header: cut it.
    return Fail(
        absl::StrCat(label_, ": ", what_, " is not valid JSON: ", EscapeForLog(e.what(), 160)));
  }

  // Runs the parse over [begin, end); the first error, or OK.
  absl::Status Parse(const char* begin, const char* end) {
    const bool ok = Json::sax_parse(begin, end, this);
    if (!status_.ok()) return status_;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(label_, ": ", what_, " is not valid JSON"));
    }
    return absl::OkStatus();
  }

 protected:
  virtual bool OnScalar(const Scalar& value) = 0;
  virtual bool OnOpen(bool object) = 0;  // a container the reader looks into, or SkipValue()s
  virtual bool OnClose() = 0;
  virtual bool OnKey(std::string& key) = 0;

  // Called from OnOpen: the container just opened is skipped, up to its closing.
  bool SkipValue() {
    skip_ = 1;
    return true;
  }
  bool Fail(std::string message) { return Fail(absl::InvalidArgumentError(std::move(message))); }
  bool Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
    return false;
  }
  static const char* KindOf(bool object) { return object ? "an object" : "an array"; }

  std::string label_;
  const char* what_ = "header";  // what the file holds, for messages

 private:
  bool Skipping() const { return skip_ > 0; }
  bool Open(bool object) {
    if (++depth_ > kMaxJsonDepth) {
      return Fail(absl::StrCat(label_, ": ", what_, " nests arrays or objects more than ",
                               kMaxJsonDepth, " levels deep"));
    }
    if (skip_ > 0) {
      ++skip_;
      return true;
    }
    return OnOpen(object);
  }
  bool Close() {
    --depth_;
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    return OnClose();
  }

  int depth_ = 0;
  int skip_ = 0;  // > 0: inside a skipped value, this many containers deep
  absl::Status status_;
};

// The safetensors header: {"__metadata__": {string: string}, name: {"dtype", "shape",
// "data_offsets"}, ...} straight into SafetensorsHeader::tensors, validating each entry as it
// closes.
class HeaderReader final : public SaxReader {
 public:
  HeaderReader(absl::string_view label, uint64_t data_size, SafetensorsHeader* out)
      : SaxReader(label), data_size_(data_size), out_(out) {}

 private:
  enum class At { kTop, kRoot, kMetadataValue, kMetadata, kEntryValue, kEntry, kShape, kOffsets };
  enum class Field { kNone, kDType, kShape, kOffsets, kOther };

  bool OnScalar(const Scalar& v) override {
    switch (at_) {
      case At::kTop:
        return Fail(absl::StrCat(label_, ": header is not a JSON object (", v.Describe(), ")"));
      case At::kMetadataValue:
        return Fail(
            absl::StrCat(label_, ": __metadata__ is not an object of strings: ", v.Describe()));
      case At::kMetadata:
        if (v.kind != Scalar::Kind::kString) return MetadataNotString(v.Describe());
        out_->metadata.insert_or_assign(meta_key_, *v.text);
        return true;
      case At::kEntryValue:
        return Entry(absl::StrCat("entry is not an object: ", v.Describe()));
      case At::kEntry:
        return EntryScalar(v);
      case At::kShape: {
        uint64_t dim = 0;
        if (!v.NonNegativeInt(&dim)) return BadDimension(v.Describe());
        entry_.shape.push_back(static_cast<int64_t>(dim));
        return true;
      }
      case At::kOffsets: {
        uint64_t offset = 0;
        if (offsets_ == 2 || !v.NonNegativeInt(&offset)) return BadOffsets(v.Describe());
        (offsets_ == 0 ? begin_ : end_) = offset;
        ++offsets_;
        return true;
      }
      case At::kRoot:  // keys come first; the parser never sends a bare value here
        break;
    }
    return Fail(absl::StrCat(label_, ": unexpected value in the header"));
  }

  bool EntryScalar(const Scalar& v) {
    const Field field = field_;
    field_ = Field::kNone;
    switch (field) {
      case Field::kDType:
        if (v.kind != Scalar::Kind::kString || !ParseDType(*v.text, &entry_.dtype)) {
          return Entry(absl::StrCat("unknown dtype ", v.Describe(),
                                    " (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
        }
        has_dtype_ = true;
        return true;
      case Field::kShape:
        return Entry(absl::StrCat("shape is not an array: ", v.Describe()));
      case Field::kOffsets:
        return BadOffsets(v.Describe());
      case Field::kOther:
      case Field::kNone:
        return true;  // a key the format does not define: ignored, as by the reference reader
    }
    return true;
  }

  bool OnOpen(bool object) override {
    switch (at_) {
      case At::kTop:
        if (!object) {
          return Fail(absl::StrCat(label_, ": header is not a JSON object (an array)"));
        }
        at_ = At::kRoot;
        return true;
      case At::kMetadataValue:
        if (!object) {
          return Fail(absl::StrCat(label_, ": __metadata__ is not an object of strings: an array"));
        }
        at_ = At::kMetadata;
        return true;
      case At::kMetadata:
        return MetadataNotString(KindOf(object));
      case At::kEntryValue:
        if (!object) return Entry("entry is not an object: an array");
        at_ = At::kEntry;
        return true;
      case At::kEntry: {
        const Field field = field_;
        field_ = Field::kNone;
        if (field == Field::kShape && !object) {
          at_ = At::kShape;
          has_shape_ = true;
          return true;
        }
        if (field == Field::kOffsets && !object) {
          at_ = At::kOffsets;
          return true;
        }
        if (field == Field::kDType) {
          return Entry(absl::StrCat("unknown dtype: ", KindOf(object),
                                    " (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
        }
        if (field == Field::kShape) return Entry("shape is not an array: an object");
        if (field == Field::kOffsets) return BadOffsets(KindOf(object));
        return SkipValue();
      }
      case At::kShape:
        return BadDimension(KindOf(object));
      case At::kOffsets:
        return BadOffsets(KindOf(object));
      case At::kRoot:
        break;
    }
    return Fail(absl::StrCat(label_, ": unexpected value in the header"));
  }

  bool OnClose() override {
    switch (at_) {
      case At::kRoot:
        at_ = At::kTop;  // the end; strict parsing refuses anything after it
        return true;
      case At::kMetadata:
        at_ = At::kRoot;
        return true;
      case At::kEntry:
        at_ = At::kRoot;
        return FinishEntry();
      case At::kShape:
        at_ = At::kEntry;
        return true;
      case At::kOffsets:
        if (offsets_ != 2) return BadOffsets(absl::StrCat("an array of ", offsets_));
        has_offsets_ = true;
        at_ = At::kEntry;
        return true;
      default:
        break;
    }
    return Fail(absl::StrCat(label_, ": unexpected end of an object or array in the header"));
  }

  bool OnKey(std::string& key) override {
    if (at_ == At::kRoot) {
      if (key == "__metadata__") {
        at_ = At::kMetadataValue;
        return true;
      }
      if (out_->tensors.size() >= kMaxTensors) {
        return Fail(absl::StrCat(label_, ": more than ", kMaxTensors, " tensors"));
      }
      entry_ = TensorEntry();
      entry_.name = std::move(key);
      has_dtype_ = has_shape_ = has_offsets_ = false;
      offsets_ = 0;
      at_ = At::kEntryValue;
      return true;
    }
    if (at_ == At::kMetadata) {
      meta_key_ = std::move(key);
      return true;
    }
    if (at_ == At::kEntry) {
      field_ = key == "dtype"          ? Field::kDType
               : key == "shape"        ? Field::kShape
               : key == "data_offsets" ? Field::kOffsets
                                       : Field::kOther;
      const bool seen = (field_ == Field::kDType && has_dtype_) ||
                        (field_ == Field::kShape && has_shape_) ||
                        (field_ == Field::kOffsets && (has_offsets_ || offsets_ > 0));
      if (seen) return Entry(absl::StrCat("\"", key, "\" is given twice"));
      return true;
    }
    return Fail(absl::StrCat(label_, ": unexpected key in the header"));
  }

  // Checks the entry that just closed against the data section and keeps it.
  bool FinishEntry() {
    if (!has_dtype_) return Entry("missing \"dtype\"");
    if (!has_shape_) return Entry("missing \"shape\"");
    if (!has_offsets_) return Entry("missing \"data_offsets\"");
    uint64_t elements = 1;
    bool overflow = false;
    for (int64_t dim : entry_.shape) {
      if (!overflow && __builtin_mul_overflow(elements, static_cast<uint64_t>(dim), &elements)) {
        overflow = true;
      }
    }
    // A zero dimension makes the tensor empty whatever the other dimensions are.
    if (overflow && std::find(entry_.shape.begin(), entry_.shape.end(), 0) != entry_.shape.end()) {
      overflow = false;
      elements = 0;
    }
    const std::string offsets = absl::StrCat("data_offsets [", begin_, ", ", end_, "]");
    if (begin_ > end_) return Entry(absl::StrCat(offsets, " has begin > end"));
    if (end_ > data_size_) {
      return Entry(
          absl::StrCat(offsets, " run past the end of the data section (", data_size_, " bytes)"));
    }
    uint64_t nbytes = 0;
    if (overflow || __builtin_mul_overflow(elements, DTypeSize(entry_.dtype), &nbytes) ||
        nbytes != end_ - begin_) {
      return Entry(absl::StrCat(offsets, " hold ", end_ - begin_, " bytes but shape ",
                                ShapeText(entry_.shape), " of ", Sv(DTypeName(entry_.dtype)),
                                overflow ? " overflows" : absl::StrCat(" needs ", nbytes),
                                " bytes"));
    }
    entry_.begin = static_cast<std::size_t>(begin_);
    entry_.end = static_cast<std::size_t>(end_);
    out_->tensors.push_back(std::move(entry_));
    return true;
  }

  bool Entry(absl::string_view what) { return Fail(TensorError(label_, entry_.name, what)); }
  bool BadDimension(absl::string_view value) {
    return Entry(absl::StrCat("shape has a dimension that is not a non-negative integer: ", value));
  }
  bool BadOffsets(absl::string_view value) {
    return Entry(absl::StrCat("data_offsets is not a pair of non-negative integers: ", value));
  }
  bool MetadataNotString(absl::string_view value) {
    return Fail(absl::StrCat(label_, ": __metadata__ key ", QuoteInput(meta_key_, kQuotedNameBytes),
                             " is not a string: ", value));
  }

  const uint64_t data_size_;
  SafetensorsHeader* out_;
  At at_ = At::kTop;
  Field field_ = Field::kNone;
  std::string meta_key_;
  TensorEntry entry_;  // the entry being read
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false;
  int offsets_ = 0;  // data_offsets values read so far
  uint64_t begin_ = 0, end_ = 0;
};

// model.safetensors.index.json: {"weight_map": {tensor: shard file}, ...}; other keys (metadata)
// are skipped. A tensor listed twice must name the same shard.
class IndexReader final : public SaxReader {
 public:
  IndexReader(absl::string_view label, std::map<std::string, std::string>* weight_map)
      : SaxReader(label), weight_map_(weight_map) {
    what_ = "the index";
  }
  bool saw_weight_map() const { return saw_weight_map_; }

 private:
  enum class At { kTop, kRoot, kMapValue, kMap, kShard };

  bool OnScalar(const Scalar& v) override {
    switch (at_) {
      case At::kTop:
        return Fail(absl::StrCat(label_, ": not a JSON object (", v.Describe(), ")"));
      case At::kMapValue:
        return NotAMap(v.Describe());
      case At::kShard: {
        at_ = At::kMap;
        if (v.kind != Scalar::Kind::kString) {
          return Fail(
              TensorError(label_, tensor_, absl::StrCat("shard is not a string: ", v.Describe())));
        }
        const auto [it, inserted] = weight_map_->emplace(std::move(tensor_), *v.text);
        if (!inserted && it->second != *v.text) {
          return Fail(TensorError(label_, it->first, "is listed in two shards"));
        }
        return true;
      }
      case At::kRoot:
      case At::kMap:
        return true;  // the value of a key the index format leaves to writers (metadata)
    }
    return true;
  }
  bool OnOpen(bool object) override {
    switch (at_) {
      case At::kTop:
        if (!object) return Fail(absl::StrCat(label_, ": not a JSON object (an array)"));
        at_ = At::kRoot;
        return true;
      case At::kMapValue:
        if (!object) return NotAMap("an array");
        at_ = At::kMap;
        saw_weight_map_ = true;
        return true;
      case At::kShard:
        return Fail(
            TensorError(label_, tensor_, absl::StrCat("shard is not a string: ", KindOf(object))));
      case At::kRoot:
      case At::kMap:
        break;
    }
    return SkipValue();  // metadata
  }
  bool OnClose() override {
    at_ = at_ == At::kMap ? At::kRoot : At::kTop;
    return true;
  }
  bool OnKey(std::string& key) override {
    if (at_ == At::kRoot) {
      if (key == "weight_map") at_ = At::kMapValue;
      return true;
    }
    if (at_ == At::kMap) {
      if (weight_map_->size() >= kMaxTensors) {
        return Fail(
            absl::StrCat(label_, ": \"weight_map\" lists more than ", kMaxTensors, " tensors"));
      }
      tensor_ = std::move(key);
      at_ = At::kShard;
    }
    return true;
  }
  bool NotAMap(absl::string_view value) {
    return Fail(absl::StrCat(label_, ": \"weight_map\" is not an object: ", value));
  }

  std::map<std::string, std::string>* weight_map_;
  At at_ = At::kTop;
  std::string tensor_;
  bool saw_weight_map_ = false;
};

absl::StatusOr<SafetensorsHeader> ParseHeaderImpl(const uint8_t* data, std::size_t size,
                                                  absl::string_view file_label) {
  if (size < 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        file_label, ": ", size, " bytes is too short for a safetensors file (needs at least 8)"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  const uint64_t available = size - 8;
  if (header_len > available) {
    return absl::InvalidArgumentError(absl::StrCat(file_label, ": header length ", header_len,
                                                   " runs past the end of the file (", available,
                                                   " bytes after the length field)"));
  }
  if (header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(file_label, ": header length ", header_len,
                                                   " exceeds the limit of ", kMaxHeaderBytes));
  }
  const char* json_begin = reinterpret_cast<const char*>(data + 8);
  const char* json_end = json_begin + header_len;

  SafetensorsHeader header;
  header.data_offset = static_cast<std::size_t>(8 + header_len);
  HeaderReader reader(file_label, available - header_len, &header);
  ATTATTR_RETURN_IF_ERROR(reader.Parse(json_begin, json_end));

  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < header.tensors.size(); ++i) {
    if (header.tensors[i].name == header.tensors[i - 1].name) {
      return TensorError(file_label, header.tensors[i].name, "is listed twice in the header");
    }
  }

  // Overlap check: walk the non-empty ranges by begin, remembering the furthest end seen so far.
  std::vector<const TensorEntry*> by_begin;
  by_begin.reserve(header.tensors.size());
  for (const TensorEntry& t : header.tensors) {
    if (t.end > t.begin) by_begin.push_back(&t);
  }
  std::sort(by_begin.begin(), by_begin.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const TensorEntry* furthest = nullptr;
  for (const TensorEntry* t : by_begin) {
    if (furthest != nullptr && t->begin < furthest->end) {
      return TensorError(file_label, t->name,
                         absl::StrCat("data_offsets [", t->begin, ", ", t->end, "] overlap tensor ",
                                      QuoteInput(furthest->name, kQuotedNameBytes), " [",
                                      furthest->begin, ", ", furthest->end, "]"));
    }
    if (furthest == nullptr || t->end > furthest->end) furthest = t;
  }
  return header;
}

// Whether anything is at `path` (a FIFO or a directory too: opening it then says what it is).
bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Unmaps a mapping unless released; keeps Open() leak-free on every error path.
class MappingGuard {
 public:
  MappingGuard(void* addr, std::size_t size) : addr_(addr), size_(size) {}
  ~MappingGuard() {
    if (addr_ != nullptr) ::munmap(addr_, size_);
  }
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;
  void Release() { addr_ = nullptr; }

 private:
  void* addr_;
  std::size_t size_;
};

}  // namespace

std::size_t DTypeSize(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.size;
  }
  return 0;
}

std::string_view DTypeName(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "?";
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, std::size_t size,
                                                         std::string_view file_label) {
  // The parser itself reports errors by value; this only stops bad_alloc and the like.
  try {
    return ParseHeaderImpl(data, size, Sv(file_label));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(file_label), ": cannot parse the header: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(Sv(file_label), ": cannot parse the header"));
  }
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(std::string path, const uint8_t* map, std::size_t size,
                                 SafetensorsHeader header)
    : path_(std::move(path)), map_(map), size_(size), header_(std::move(header)) {}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  // Errors are returned as values below; this only keeps bad_alloc and the like from escaping.
  try {
    // Opened without blocking and refused unless a regular file (model_file.h): a FIFO named as
    // a shard must not hang the load.
    ATTATTR_ASSIGN_OR_RETURN(const ModelFile opened, ModelFile::Open(path));
    const std::size_t size = static_cast<std::size_t>(opened.size());
    if (size < 8) {
      // Too short to map usefully; let the parser produce its usual message.
      uint8_t empty[8] = {};
      absl::StatusOr<SafetensorsHeader> header = ParseSafetensorsHeader(empty, size, path);
      return header.ok() ? absl::InternalError(absl::StrCat(path, ": unexpected parse success"))
                         : header.status();
    }
    void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, opened.fd(), 0);
    if (addr == MAP_FAILED) {
      return absl::InternalError(absl::StrCat(path, ": cannot mmap: ", std::strerror(errno)));
    }
    MappingGuard guard(addr, size);

    const auto* bytes = static_cast<const uint8_t*>(addr);
    ATTATTR_ASSIGN_OR_RETURN(auto header, ParseSafetensorsHeader(bytes, size, path));
    std::unique_ptr<SafetensorsFile> file(
        new SafetensorsFile(path, bytes, size, std::move(header)));
    guard.Release();
    return file;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("opening ", path, ": ", e.what()));
  }
}

absl::StatusOr<TensorView> SafetensorsFile::Find(std::string_view name) const {
  const auto it = std::lower_bound(
      header_.tensors.begin(), header_.tensors.end(), name,
      [](const TensorEntry& entry, std::string_view key) { return entry.name < key; });
  if (it == header_.tensors.end() || it->name != name) {
    return absl::NotFoundError(
        absl::StrCat(path_, ": no tensor ", QuoteInput(Sv(name), kQuotedNameBytes)));
  }
  TensorView view;
  view.entry = &*it;
  view.data = map_ + header_.data_offset + it->begin;
  view.nbytes = it->end - it->begin;
  return view;
}

absl::StatusOr<std::map<std::string, std::string>> ReadShardIndex(const std::string& dir,
                                                                  const std::string& index_file) {
  const std::string index_path = absl::StrCat(dir, "/", index_file);
  ATTATTR_ASSIGN_OR_RETURN(const std::string index_text,
                           ReadModelFile(index_path, kMaxIndexJsonBytes));
  std::map<std::string, std::string> weight_map;  // tensor -> shard
  IndexReader reader(index_path, &weight_map);
  ATTATTR_RETURN_IF_ERROR(reader.Parse(index_text.data(), index_text.data() + index_text.size()));
  if (!reader.saw_weight_map()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing \"weight_map\" object"));
  }
  for (const auto& [tensor, shard] : weight_map) {
    // Shards are file names beside the index; refuse paths that would leave the directory.
    if (shard.empty() || shard.front() == '/' || shard == ".." || shard.rfind("../", 0) == 0 ||
        shard.find("/../") != std::string::npos ||
        (shard.size() >= 3 && shard.compare(shard.size() - 3, 3, "/..") == 0)) {
      return TensorError(index_path, tensor,
                         absl::StrCat("shard name ", QuoteInput(shard, kQuotedNameBytes),
                                      " is not a file in ", dir));
    }
  }
  return weight_map;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

SafetensorsCheckpoint::~SafetensorsCheckpoint() = default;

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& dir) {
  // Errors are returned as values below; this only keeps bad_alloc and the like from escaping.
  try {
    const std::string index_path = absl::StrCat(dir, "/", kIndexFile);
    const std::string single_path = absl::StrCat(dir, "/", kSingleFile);
    std::unique_ptr<SafetensorsCheckpoint> checkpoint(new SafetensorsCheckpoint());

    if (!Exists(index_path)) {
      if (!Exists(single_path)) {
        return absl::NotFoundError(absl::StrCat("checkpoint directory ", dir, " has neither ",
                                                kSingleFile, " nor ", kIndexFile));
      }
      ATTATTR_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(single_path));
      for (const TensorEntry& entry : file->header().tensors) {
        checkpoint->index_.emplace(entry.name, file.get());
      }
      checkpoint->files_.push_back(std::move(file));
      return checkpoint;
    }

    // Sharded: {"weight_map": {tensor: shard file}}.
    ATTATTR_ASSIGN_OR_RETURN(const auto weight_map, ReadShardIndex(dir, kIndexFile));
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : weight_map) shards.insert(shard);

    std::map<std::string, const SafetensorsFile*> by_shard;
    for (const std::string& shard : shards) {
      const std::string shard_path = absl::StrCat(dir, "/", shard);
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(shard_path);
      if (!file.ok()) {
        if (absl::IsNotFound(file.status())) {
          return absl::NotFoundError(
              absl::StrCat("shard ", shard_path, " listed in ", index_path, " is missing"));
        }
        return file.status();
      }
      if (checkpoint->index_.size() + (*file)->header().tensors.size() > kMaxTensors) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, ": the shards hold more than ", kMaxTensors, " tensors"));
      }
      for (const TensorEntry& entry : (*file)->header().tensors) {
        const auto [it, inserted] = checkpoint->index_.emplace(entry.name, file->get());
        if (!inserted) {
          return TensorError(
              dir, entry.name,
              absl::StrCat("is in two shards: ", it->second->path(), " and ", shard_path));
        }
      }
      by_shard.emplace(shard, file->get());
      checkpoint->files_.push_back(*std::move(file));
    }

    for (const auto& [tensor, shard] : weight_map) {
      const SafetensorsFile* file = by_shard.at(shard);
      const auto it = checkpoint->index_.find(tensor);
      if (it == checkpoint->index_.end() || it->second != file) {
        return TensorError(
            index_path, tensor,
            absl::StrCat("is listed in shard ", file->path(), ", which does not hold it"));
      }
    }
    return checkpoint;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("opening checkpoint ", dir, ": ", e.what()));
  }
}

std::vector<std::string> SafetensorsCheckpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, file] : index_) names.push_back(name);
  return names;
}

absl::StatusOr<TensorView> SafetensorsCheckpoint::Find(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint has no tensor ", QuoteInput(Sv(name), kQuotedNameBytes)));
  }
  return it->second->Find(name);
}

std::string SafetensorsCheckpoint::FileOf(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? std::string() : it->second->path();
}

}  // namespace attattr::engine
