// GLUE-style TSV readers (dataset.h). The format is recognised from the first line: the SST-2, RTE
// and MRPC headers, anything else is headerless. It does not tokenize or check label ranges against
// a model, and keeps text byte-for-byte except as noted below. Pure functions; thread-safe.
//
// Text rules: a UTF-8 BOM at the start is dropped; "\r\n" ends a line like "\n"; lines that are
// empty or hold only spaces/tabs are skipped; SST-2 sentences lose their trailing whitespace (every
// one ends with " " before the tab; tokenization ignores it). Only RTE quotes: a field that starts
// with '"' runs to the next lone '"', "" inside it is one '"', and it may hold tabs and newlines.
// In SST-2, MRPC and headerless files '"' is an ordinary character.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "attattr/base/quote.h"
#include "attattr/engine/dataset.h"

namespace attattr::engine {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kSst2Header = "sentence\tlabel";
constexpr std::string_view kRteHeader = "sentence1\tsentence2\tlabel\tidx";
constexpr std::string_view kMrpcHeader = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String";

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

std::string_view StripTrailingWhitespace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n' || s.back() == '\f' || s.back() == '\v')) {
    s.remove_suffix(1);
  }
  return s;
}

// Walks `text` record by record, tracking 1-based physical line numbers.
class RecordReader {
 public:
  RecordReader(std::string_view text, std::string_view source, bool quoting)
      : text_(text), source_(source), quoting_(quoting) {}

  // The next physical line (without its "\n" or "\r\n"), or false at the end. Advances.
  bool NextLine(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    std::string_view raw = text_.substr(pos_, end - pos_);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    *line = raw;
    pos_ = end < text_.size() ? end + 1 : end;
    ++line_;
    return true;
  }

  // Skips blank lines; false when only blank lines (or nothing) remain.
  bool SkipBlankLines() {
    while (pos_ < text_.size()) {
      std::size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      if (!IsBlank(text_.substr(pos_, end - pos_))) return true;
      pos_ = end < text_.size() ? end + 1 : end;
      ++line_;
    }
    return false;
  }

  // Reads one record into `fields`; `*start_line` gets its first line. Call after SkipBlankLines().
  absl::Status ReadRecord(std::vector<std::string>* fields, int* start_line) {
    fields->clear();
    *start_line = line_ + 1;
    if (!quoting_) {
      std::string_view line;
      NextLine(&line);
      std::size_t begin = 0;
      while (true) {
        const std::size_t tab = line.find('\t', begin);
        fields->emplace_back(
            line.substr(begin, tab == std::string_view::npos ? line.npos : tab - begin));
        if (tab == std::string_view::npos) break;
        begin = tab + 1;
      }
      return absl::OkStatus();
    }
    ++line_;  // the record's first line
    while (true) {
      std::string field;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        ++pos_;
        bool closed = false;
        while (pos_ < text_.size()) {
          const char c = text_[pos_];
          if (c == '"') {
            if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
              field.push_back('"');
              pos_ += 2;
              continue;
            }
            ++pos_;
            closed = true;
            break;
          }
          if (c == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
            ++pos_;  // "\r\n" inside a quoted field is kept as "\n"
            continue;
          }
          if (c == '\n') ++line_;
          field.push_back(c);
          ++pos_;
        }
        if (!closed) {
          return absl::InvalidArgumentError(absl::StrCat(
              Sv(source_), ":", *start_line, ": quoted field is not closed before end of file"));
        }
        // After the closing quote: a tab, the end of the line, or the end of the file.
        if (pos_ < text_.size() && text_[pos_] != '\t' && text_[pos_] != '\n' &&
            !(text_[pos_] == '\r' && (pos_ + 1 == text_.size() || text_[pos_ + 1] == '\n'))) {
          return absl::InvalidArgumentError(
              absl::StrCat(Sv(source_), ":", line_,
                           ": unexpected character after the closing quote of a quoted field",
                           " (a '\"' inside a field must be doubled)"));
        }
      } else {
        while (pos_ < text_.size() && text_[pos_] != '\t' && text_[pos_] != '\n') {
          field.push_back(text_[pos_++]);
        }
        if (!field.empty() && field.back() == '\r' &&
            (pos_ == text_.size() || text_[pos_] == '\n')) {
          field.pop_back();
        }
      }
      fields->push_back(std::move(field));
      if (pos_ < text_.size() && text_[pos_] == '\t') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      return absl::OkStatus();
    }
  }

 private:
  std::string_view text_;
  std::string_view source_;
  bool quoting_;
  std::size_t pos_ = 0;
  int line_ = 0;  // physical lines fully or partly consumed so far
};

absl::Status ParseLabel(std::string_view field, std::string_view source, int line, int* label) {
  int value = 0;
  if (!absl::SimpleAtoi(Sv(field), &value) || value < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(source), ":", line, ": label ", QuoteInput(Sv(field)),
                     " is not an integer class index (or -1 for unknown)"));
  }
  *label = value;
  return absl::OkStatus();
}

absl::Status ColumnError(std::string_view source, int line, std::string_view format,
                         std::string_view expected, std::size_t found) {
  return absl::InvalidArgumentError(absl::StrCat(Sv(source), ":", line, ": ", Sv(format),
                                                 " rows have ", Sv(expected), "; found ", found,
                                                 " tab-separated field", found == 1 ? "" : "s"));
}

absl::StatusOr<Dataset> ParseImpl(std::string_view text, const std::string& source, int limit) {
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());

  Dataset dataset;
  std::size_t first_end = text.find('\n');
  std::string_view first = text.substr(0, first_end);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  if (first == kSst2Header) {
    dataset.format = DatasetFormat::kSst2;
  } else if (first == kRteHeader) {
    dataset.format = DatasetFormat::kRte;
  } else if (first == kMrpcHeader) {
    dataset.format = DatasetFormat::kMrpc;
  } else {
    dataset.format = DatasetFormat::kHeaderless;
  }

  RecordReader reader(text, source, dataset.format == DatasetFormat::kRte);
  if (dataset.format != DatasetFormat::kHeaderless) {
    std::string_view header;
    reader.NextLine(&header);
  }

  std::vector<std::string> fields;
  int line = 0;
  while ((limit <= 0 || static_cast<int>(dataset.examples.size()) < limit) &&
         reader.SkipBlankLines()) {
    absl::Status status = reader.ReadRecord(&fields, &line);
    if (!status.ok()) return status;
    Example example;
    switch (dataset.format) {
      case DatasetFormat::kSst2:
        if (fields.size() != 2) {
          return ColumnError(source, line, "SST-2", "2 fields (sentence, label)", fields.size());
        }
        example.text = std::string(StripTrailingWhitespace(fields[0]));
        status = ParseLabel(fields[1], source, line, &example.label);
        break;
      case DatasetFormat::kRte:
        if (fields.size() != 4) {
          return ColumnError(source, line, "RTE", "4 fields (sentence1, sentence2, label, idx)",
                             fields.size());
        }
        example.text = std::move(fields[0]);
        example.text_pair = std::move(fields[1]);
        status = ParseLabel(fields[2], source, line, &example.label);
        break;
      case DatasetFormat::kMrpc:
        if (fields.size() != 5) {
          return ColumnError(source, line, "MRPC",
                             "5 fields (Quality, #1 ID, #2 ID, #1 String, #2 String)",
                             fields.size());
        }
        example.text = std::move(fields[3]);
        example.text_pair = std::move(fields[4]);
        status = ParseLabel(fields[0], source, line, &example.label);
        break;
      case DatasetFormat::kHeaderless:
        if (fields.size() > 2) {
          return ColumnError(source, line, "headerless", "1 or 2 fields (text, text_pair)",
                             fields.size());
        }
        example.text = std::move(fields[0]);
        if (fields.size() == 2) example.text_pair = std::move(fields[1]);
        break;
    }
    if (!status.ok()) return status;
    dataset.examples.push_back(std::move(example));
  }
  return dataset;
}

// Opens `path` for reading into `in`; NotFound when it does not exist, InvalidArgument for any
// other failure, both naming the file as `display_name` with the reason.
absl::Status OpenDataset(const std::string& path, const std::string& display_name,
                         std::ifstream& in) {
  in.open(path, std::ios::binary);
  if (in) return absl::OkStatus();
  const int err = errno;
  const std::string message =
      absl::StrCat("cannot read dataset ", display_name, ": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<Dataset> ParseDataset(const std::string& contents, const std::string& source_name,
                                     int limit) {
  try {
    return ParseImpl(contents, source_name, limit);
  } catch (const std::exception& e) {  // bad_alloc; parsing itself reports errors by value
    return absl::InternalError(absl::StrCat(source_name, ": ", e.what()));
  }
}

absl::StatusOr<Dataset> ReadDataset(const std::string& path, int limit) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read dataset ", path, ": not a regular file"));
  }
  std::ifstream in;
  if (absl::Status opened = OpenDataset(path, path, in); !opened.ok()) return opened;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read dataset ", path));
  }
  return ParseDataset(buffer.str(), path, limit);
}

absl::StatusOr<Dataset> ReadDatasetPrefix(const std::string& path, int limit, int64_t max_bytes,
                                          const std::string& display_name) {
  std::ifstream in;
  if (absl::Status opened = OpenDataset(path, display_name, in); !opened.ok()) return opened;
  std::string text;
  std::size_t chunk = 64 << 10;
  while (true) {
    const std::size_t want = static_cast<std::size_t>(std::min<int64_t>(
        static_cast<int64_t>(chunk), max_bytes + 1 - static_cast<int64_t>(text.size())));
    const std::size_t before = text.size();
    text.resize(before + want);
    in.read(text.data() + before, static_cast<std::streamsize>(want));
    text.resize(before + static_cast<std::size_t>(in.gcount()));
    if (in.bad())
      return absl::InvalidArgumentError(absl::StrCat("cannot read dataset ", display_name));
    const bool at_end = in.eof();
    if (!at_end && static_cast<int64_t>(text.size()) > max_bytes) {
      return absl::OutOfRangeError(absl::StrCat(
          display_name, ": its first ", limit > 0 ? absl::StrCat(limit, " examples") : "examples",
          " take more than ", max_bytes, " bytes, the most read for a dataset"));
    }
    if (at_end) return ParseDataset(text, display_name, limit);
    if (limit > 0) {
      // Whole lines only: a record is never cut except inside a quoted field, which then fails to
      // close and sends us back for more.
      const std::size_t last = text.rfind('\n');
      if (last != std::string::npos) {
        auto prefix = ParseDataset(text.substr(0, last + 1), display_name, limit);
        if (prefix.ok() && static_cast<int>(prefix->examples.size()) >= limit) return prefix;
      }
    }
    chunk *= 2;
  }
}

}  // namespace attattr::engine
