// What the client prints to a terminal cannot drive it. Tokens, labels, job names, error messages
// and every other string in a reply come from the server (and through it from models, datasets and
// other principals' inputs); written raw, an ESC or C1 sequence among them could retitle the
// window, write the clipboard (OSC 52), plant hyperlinks or hide text. While stdout or stderr is a
// terminal, TerminalGuard routes it through TerminalSafeBuf, which shows C0 controls (but tab and
// newline) and DEL as their Unicode control pictures (ESC as "␛") and C1 controls, invalid and
// overlong UTF-8 as U+FFFD; valid text passes unchanged. Output to a pipe or file stays byte-exact,
// as `ls` and `git` do. The client's own controls (the progress bar's carriage return) go past the
// filter through WriteControl. A std::streambuf filter, written here because no Debian library
// offers one; it is a byte-level state machine, not a terminal emulator.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <ostream>
#include <streambuf>

#include "absl/strings/string_view.h"

namespace attattr::client {

// Filters everything written to it into `target` (not owned; outlives this). Not thread-safe, as
// the standard streams it wraps.
class TerminalSafeBuf final : public std::streambuf {
 public:
  explicit TerminalSafeBuf(std::streambuf* target) : target_(target) {}
  // An unfinished UTF-8 sequence left at the end is shown as U+FFFD.
  ~TerminalSafeBuf() override;
  TerminalSafeBuf(const TerminalSafeBuf&) = delete;
  TerminalSafeBuf& operator=(const TerminalSafeBuf&) = delete;

  // Writes `bytes` to the target as they are (after any pending sequence is settled).
  void WriteRaw(absl::string_view bytes);

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  // Flushes the target; an unfinished UTF-8 sequence stays pending (its rest may follow).
  int sync() override;

 private:
  void Put(unsigned char byte);
  // The pending sequence is complete: writes it, or U+FFFD when it is not valid text.
  void EmitSequence();
  // Drops the pending sequence as invalid (U+FFFD).
  void AbandonSequence();
  void Write(absl::string_view bytes);

  std::streambuf* const target_;
  bool failed_ = false;                     // the target refused a write
  std::array<unsigned char, 4> pending_{};  // a multi-byte sequence in progress
  size_t have_ = 0;                         // bytes of it so far
  size_t need_ = 0;                         // its length; 0 = none pending
};

// While alive, `stream` writes through a TerminalSafeBuf when `fd` is a terminal (isatty);
// otherwise it leaves the stream alone. Restores the stream's buffer when destroyed.
class TerminalGuard {
 public:
  TerminalGuard(std::ostream& stream, int fd);
  ~TerminalGuard();
  TerminalGuard(const TerminalGuard&) = delete;
  TerminalGuard& operator=(const TerminalGuard&) = delete;

 private:
  std::ostream& stream_;
  std::streambuf* const original_;
  std::unique_ptr<TerminalSafeBuf> filter_;  // null when fd is not a terminal
};

// Writes the client's own control bytes ("\r" to redraw a line) to `out`, past a TerminalSafeBuf
// if `out` writes through one.
void WriteControl(std::ostream& out, absl::string_view control);

}  // namespace attattr::client
