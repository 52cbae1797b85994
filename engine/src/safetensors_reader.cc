// Safetensors parsing and memory mapping (safetensors_reader.h has the format and the contract).
// Validates every header field before anything points into the data; it does not interpret tensor
// bytes (no byte swapping, no dtype conversion) and does not require tensors to be aligned.
// Parsing is a pure function; SafetensorsFile/SafetensorsCheckpoint are immutable after Open().
#include "safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace attattr::engine {
namespace {

using Json = nlohmann::json;

// Debian's abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so
// std::string_view must be converted before it reaches StrCat.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The reference implementation (huggingface/safetensors) refuses headers above 100 MB; so do we,
// which also bounds the memory a hostile file can make the JSON parser allocate.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

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

// A short rendering of a JSON value for error messages (never throws: dump() can throw on invalid
// UTF-8, which the parser already rejects, but we do not rely on that).
std::string Brief(const Json& value) {
  std::string text;
  try {
    text = value.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
  } catch (...) {
    return "<unprintable>";
  }
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return text;
}

absl::Status TensorError(absl::string_view file_label, absl::string_view tensor,
                         absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file_label, ": tensor '", tensor, "': ", what));
}

// Reads a JSON integer into [0, INT64_MAX]; false for non-integers and negatives.
bool NonNegativeInt(const Json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = v;
    return true;
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

absl::StatusOr<TensorEntry> ParseEntry(const std::string& name, const Json& value,
                                       uint64_t data_size, absl::string_view file_label) {
  if (!value.is_object()) {
    return TensorError(file_label, name, absl::StrCat("entry is not an object: ", Brief(value)));
  }
  TensorEntry entry;
  entry.name = name;

  const auto dtype_it = value.find("dtype");
  if (dtype_it == value.end()) return TensorError(file_label, name, "missing \"dtype\"");
  if (!dtype_it->is_string() ||
      !ParseDType(dtype_it->get_ref<const std::string&>(), &entry.dtype)) {
    return TensorError(file_label, name,
                       absl::StrCat("unknown dtype ", Brief(*dtype_it),
                                    " (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
  }

  const auto shape_it = value.find("shape");
  if (shape_it == value.end()) return TensorError(file_label, name, "missing \"shape\"");
  if (!shape_it->is_array()) {
    return TensorError(file_label, name, absl::StrCat("shape is not an array: ", Brief(*shape_it)));
  }
  uint64_t elements = 1;
  bool overflow = false;
  for (const Json& dim_json : *shape_it) {
    uint64_t dim = 0;
    if (!NonNegativeInt(dim_json, &dim)) {
      return TensorError(file_label, name,
                         absl::StrCat("shape ", Brief(*shape_it),
                                      " has a dimension that is not a non-negative integer"));
    }
    entry.shape.push_back(static_cast<int64_t>(dim));
    if (!overflow && __builtin_mul_overflow(elements, dim, &elements)) overflow = true;
  }
  // A zero dimension makes the tensor empty whatever the other dimensions are.
  if (overflow && std::find(entry.shape.begin(), entry.shape.end(), 0) != entry.shape.end()) {
    overflow = false;
    elements = 0;
  }

  const auto offsets_it = value.find("data_offsets");
  if (offsets_it == value.end()) return TensorError(file_label, name, "missing \"data_offsets\"");
  uint64_t begin = 0;
  uint64_t end = 0;
  if (!offsets_it->is_array() || offsets_it->size() != 2 ||
      !NonNegativeInt((*offsets_it)[0], &begin) || !NonNegativeInt((*offsets_it)[1], &end)) {
    return TensorError(file_label, name,
                       absl::StrCat("data_offsets ", Brief(*offsets_it),
                                    " is not a pair of non-negative integers"));
  }
  if (begin > end) {
    return TensorError(file_label, name,
                       absl::StrCat("data_offsets [", begin, ", ", end, "] has begin > end"));
  }
  if (end > data_size) {
    return TensorError(
        file_label, name,
        absl::StrCat("data_offsets [", begin, ", ", end, "] run past the end of the data section (",
                     data_size, " bytes)"));
  }
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(elements, DTypeSize(entry.dtype), &nbytes) ||
      nbytes != end - begin) {
    return TensorError(
        file_label, name,
        absl::StrCat("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                     " bytes but shape ", Brief(*shape_it), " of ", Sv(DTypeName(entry.dtype)),
                     overflow ? " overflows" : absl::StrCat(" needs ", nbytes), " bytes"));
  }
  entry.begin = static_cast<std::size_t>(begin);
  entry.end = static_cast<std::size_t>(end);
  return entry;
}

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

  Json root;
  try {
    root = Json::parse(json_begin, json_end);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_label, ": header is not valid JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_label, ": header is not a JSON object: ", Brief(root)));
  }

  SafetensorsHeader header;
  header.data_offset = static_cast<std::size_t>(8 + header_len);
  const uint64_t data_size = available - header_len;

  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat(file_label, ": __metadata__ is not an object of strings: ", Brief(value)));
      }
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(file_label, ": __metadata__ key '",
                                                         meta_key,
                                                         "' is not a string: ", Brief(meta_value)));
        }
        header.metadata.emplace(meta_key, meta_value.get<std::string>());
      }
      continue;
    }
    ATTATTR_ASSIGN_OR_RETURN(auto entry, ParseEntry(key, value, data_size, file_label));
    header.tensors.push_back(std::move(entry));
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
      return TensorError(
          file_label, t->name,
          absl::StrCat("data_offsets [", t->begin, ", ", t->end, "] overlap tensor '",
                       furthest->name, "' [", furthest->begin, ", ", furthest->end, "]"));
    }
    if (furthest == nullptr || t->end > furthest->end) furthest = t;
  }

  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.name < b.name; });
  return header;
}

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
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
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
    }
    const std::size_t size = static_cast<std::size_t>(st.st_size);
    if (size < 8) {
      ::close(fd);
      // Too short to map usefully; let the parser produce its usual message.
      uint8_t empty[8] = {};
      absl::StatusOr<SafetensorsHeader> header = ParseSafetensorsHeader(empty, size, path);
      return header.ok() ? absl::InternalError(absl::StrCat(path, ": unexpected parse success"))
                         : header.status();
    }
    void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_err = errno;
    ::close(fd);
    if (addr == MAP_FAILED) return ErrnoStatus(map_err, "cannot mmap", path);
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
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", Sv(name), "'"));
  }
  TensorView view;
  view.entry = &*it;
  view.data = map_ + header_.data_offset + it->begin;
  view.nbytes = it->end - it->begin;
  return view;
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

    if (!FileExists(index_path)) {
      if (!FileExists(single_path)) {
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

    // Sharded: read {"weight_map": {tensor: shard file}}.
    std::ifstream in(index_path, std::ios::binary);
    if (!in) return ErrnoStatus(errno, "cannot read", index_path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const Json index = Json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a JSON object"));
    }
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": missing \"weight_map\" object"));
    }
    std::map<std::string, std::string> weight_map;  // tensor -> shard
    std::set<std::string> shards;
    for (const auto& [tensor, shard_json] : map_it->items()) {
      if (!shard_json.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_path, ": tensor '", tensor, "': shard is not a string: ", Brief(shard_json)));
      }
      const std::string& shard = shard_json.get_ref<const std::string&>();
      // Shards are file names beside the index; refuse paths that would leave the directory.
      if (shard.empty() || shard.front() == '/' || shard == ".." || shard.rfind("../", 0) == 0 ||
          shard.find("/../") != std::string::npos ||
          (shard.size() >= 3 && shard.compare(shard.size() - 3, 3, "/..") == 0)) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", tensor,
                                                       "': shard name '", shard,
                                                       "' is not a file in ", dir));
      }
      weight_map.emplace(tensor, shard);
      shards.insert(shard);
    }

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
      for (const TensorEntry& entry : (*file)->header().tensors) {
        const auto [it, inserted] = checkpoint->index_.emplace(entry.name, file->get());
        if (!inserted) {
          return absl::InvalidArgumentError(absl::StrCat(dir, ": tensor '", entry.name,
                                                         "' is in two shards: ", it->second->path(),
                                                         " and ", shard_path));
        }
      }
      by_shard.emplace(shard, file->get());
      checkpoint->files_.push_back(*std::move(file));
    }

    for (const auto& [tensor, shard] : weight_map) {
      const SafetensorsFile* file = by_shard.at(shard);
      const auto it = checkpoint->index_.find(tensor);
      if (it == checkpoint->index_.end() || it->second != file) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", tensor,
                                                       "' is listed in shard ", file->path(),
                                                       ", which does not hold it"));
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
    return absl::NotFoundError(absl::StrCat("checkpoint has no tensor '", Sv(name), "'"));
  }
  return it->second->Find(name);
}

std::string SafetensorsCheckpoint::FileOf(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? std::string() : it->second->path();
}

}  // namespace attattr::engine
