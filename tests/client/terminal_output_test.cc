// TerminalSafeBuf: valid text passes unchanged, controls become visible, invalid UTF-8 and C1
// controls become U+FFFD, whether the bytes arrive whole or one at a time; WriteControl passes the
// client's own controls; TerminalGuard leaves a stream that is not a terminal alone.
#include "terminal_output.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>
#include <string>

namespace attattr::client {
namespace {

// What `input` becomes through the filter, written in one piece or byte by byte.
std::string Filtered(const std::string& input, bool bytewise = false) {
  std::ostringstream sink;
  {
    TerminalSafeBuf filter(sink.rdbuf());
    std::ostream out(&filter);
    if (bytewise) {
      for (char c : input) {
        out.put(c);
        out.flush();  // a sequence cut by a flush still completes
      }
    } else {
      out << input;
    }
  }
  return sink.str();
}

TEST(TerminalSafeBufTest, TextPassesUnchanged) {
  const std::string text = "token\twith tab\nnaïve 日本 🙂 [CLS] ##ing \xC2\xA0nbsp";
  EXPECT_EQ(Filtered(text), text);
  EXPECT_EQ(Filtered(text, /*bytewise=*/true), text);
}

TEST(TerminalSafeBufTest, ControlsBecomeVisible) {
  // OSC 0 (window title) ended by BEL, a colour, CR and DEL.
  EXPECT_EQ(Filtered("\x1b]0;owned\x07"), "␛]0;owned␇");
  EXPECT_EQ(Filtered("\x1b[31mred\x1b[0m"), "␛[31mred␛[0m");
  EXPECT_EQ(Filtered(std::string("a\rb\x7f\0c", 6)), "a␍b␡␀c");
  EXPECT_EQ(Filtered("\x1b[2J", /*bytewise=*/true), "␛[2J");
}

TEST(TerminalSafeBufTest, C1AndInvalidUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(Filtered("a\xC2\x9B"
                     "31mb"),
            "a\xEF\xBF\xBD"
            "31mb");  // C1 CSI as UTF-8
  EXPECT_EQ(Filtered("a\x9B"
                     "31mb"),
            "a\xEF\xBF\xBD"
            "31mb");                                            // a raw 8-bit CSI
  EXPECT_EQ(Filtered("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(Filtered("\xE0\x80\xAF"), "\xEF\xBF\xBD");          // overlong, 3 bytes
  EXPECT_EQ(Filtered("\xED\xA0\x80"), "\xEF\xBF\xBD");          // a surrogate
  EXPECT_EQ(Filtered("\xF4\x90\x80\x80"), "\xEF\xBF\xBD");      // above U+10FFFF
  EXPECT_EQ(Filtered("\xE6\x97x"), "\xEF\xBF\xBDx");            // cut short
  EXPECT_EQ(Filtered("\xE6\x97\x1b"), "\xEF\xBF\xBD␛");         // cut by a control
  EXPECT_EQ(Filtered("end\xF0\x9F"), "end\xEF\xBF\xBD");        // unfinished at the end
  EXPECT_EQ(Filtered("a\xC2\x9B"
                     "b",
                     /*bytewise=*/true),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(TerminalSafeBufTest, WriteControlPassesTheClientsOwnControls) {
  std::ostringstream sink;
  {
    TerminalSafeBuf filter(sink.rdbuf());
    std::ostream out(&filter);
    out << "job\r";
    WriteControl(out, "\r");
    out << "bar";
  }
  EXPECT_EQ(sink.str(), "job␍\rbar");
  std::ostringstream plain;
  WriteControl(plain, "\r");
  EXPECT_EQ(plain.str(), "\r");
}

TEST(TerminalGuardTest, LeavesAStreamThatIsNotATerminalAlone) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::ostringstream out;
  std::streambuf* const original = out.rdbuf();
  {
    TerminalGuard guard(out, fds[1]);
    EXPECT_EQ(out.rdbuf(), original);
    out << "\x1b[31m";
  }
  EXPECT_EQ(out.str(), "\x1b[31m");
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace attattr::client
