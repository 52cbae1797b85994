// See terminal_output.h.
#include "terminal_output.h"

#include <unistd.h>

#include <cstdint>

namespace attattr::client {
namespace {

constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// U+2400 + byte for C0 controls, U+2421 for DEL ("control pictures").
std::array<char, 3> ControlPicture(unsigned char byte) {
  const unsigned char low = byte == 0x7F ? 0xA1 : static_cast<unsigned char>(0x80 + byte);
  return {'\xE2', '\x90', static_cast<char>(low)};
}

// How long a UTF-8 sequence led by `lead` (>= 0x80) is; 0 when `lead` cannot lead one.
size_t SequenceLength(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

TerminalSafeBuf::~TerminalSafeBuf() {
  if (need_ > 0) AbandonSequence();
  target_->pubsync();
}

void TerminalSafeBuf::Write(absl::string_view bytes) {
  if (failed_) return;
  const auto n = static_cast<std::streamsize>(bytes.size());
  if (target_->sputn(bytes.data(), n) != n) failed_ = true;
}

void TerminalSafeBuf::WriteRaw(absl::string_view bytes) {
  if (need_ > 0) AbandonSequence();
  Write(bytes);
}

void TerminalSafeBuf::AbandonSequence() {
  Write(kReplacement);
  have_ = need_ = 0;
}

void TerminalSafeBuf::EmitSequence() {
  uint32_t cp = pending_[0] & (need_ == 2 ? 0x1F : need_ == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < need_; ++i) cp = (cp << 6) | (pending_[i] & 0x3F);
  const bool valid = need_ == 2   ? cp > 0x9F  // not a C1 control
                     : need_ == 3 ? cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)
                                  : cp >= 0x10000 && cp <= 0x10FFFF;
  if (valid) {
    Write(absl::string_view(reinterpret_cast<const char*>(pending_.data()), need_));
  } else {
    Write(kReplacement);
  }
  have_ = need_ = 0;
}

void TerminalSafeBuf::Put(unsigned char byte) {
  if (need_ > 0) {
    if ((byte & 0xC0) == 0x80) {
      pending_[have_++] = byte;
      if (have_ == need_) EmitSequence();
      return;
    }
    AbandonSequence();  // cut short; `byte` starts afresh
  }
  if (byte < 0x80) {
    if ((byte < 0x20 && byte != '\n' && byte != '\t') || byte == 0x7F) {
      const std::array<char, 3> picture = ControlPicture(byte);
      Write(absl::string_view(picture.data(), picture.size()));
    } else {
      const char c = static_cast<char>(byte);
      Write(absl::string_view(&c, 1));
    }
    return;
  }
  need_ = SequenceLength(byte);
  if (need_ == 0) {
    Write(kReplacement);
    return;
  }
  pending_[0] = byte;
  have_ = 1;
}

TerminalSafeBuf::int_type TerminalSafeBuf::overflow(int_type ch) {
  if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
  Put(static_cast<unsigned char>(traits_type::to_char_type(ch)));
  return failed_ ? traits_type::eof() : ch;
}

std::streamsize TerminalSafeBuf::xsputn(const char* s, std::streamsize n) {
  for (std::streamsize i = 0; i < n; ++i) Put(static_cast<unsigned char>(s[i]));
  return failed_ ? 0 : n;
}

int TerminalSafeBuf::sync() { return failed_ ? -1 : target_->pubsync(); }

TerminalGuard::TerminalGuard(std::ostream& stream, int fd)
    : stream_(stream), original_(stream.rdbuf()) {
  if (isatty(fd) == 0) return;
  filter_ = std::make_unique<TerminalSafeBuf>(original_);
  stream_.rdbuf(filter_.get());
}

TerminalGuard::~TerminalGuard() {
  if (filter_ == nullptr) return;
  stream_.flush();
  stream_.rdbuf(original_);
}

void WriteControl(std::ostream& out, absl::string_view control) {
  if (auto* filter = dynamic_cast<TerminalSafeBuf*>(out.rdbuf()); filter != nullptr) {
    out.flush();
    filter->WriteRaw(control);
    return;
  }
  out << control;
}

}  // namespace attattr::client
