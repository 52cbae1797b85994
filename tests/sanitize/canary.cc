// The sanitizers' canary: a program with one deliberate bug per sanitizer, chosen by argv[1], so
// sanitize_test.sh can check that its builds really report what they are there to catch (a build
// whose flags went missing would pass every test and prove nothing). Built only in the sanitizer
// builds; never part of the project.
//   heap-overflow  reads one int past a heap array        (ASan: heap-buffer-overflow)
//   signed-overflow adds 1 to INT_MAX                     (UBSan: signed integer overflow)
//   race           two threads increment one plain int     (TSan: data race)
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace {

int counter = 0;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* bug = argv[1];
  volatile int sink = 0;
  if (std::strcmp(bug, "heap-overflow") == 0) {
    std::vector<int> values(4, 1);
    const int* data = values.data();
    volatile int past = 4;
    sink = data[past];
  } else if (std::strcmp(bug, "signed-overflow") == 0) {
    volatile int big = INT_MAX;
    sink = big + 1;
  } else if (std::strcmp(bug, "race") == 0) {
    std::thread a([] {
      for (int i = 0; i < 100000; ++i) ++counter;
    });
    std::thread b([] {
      for (int i = 0; i < 100000; ++i) ++counter;
    });
    a.join();
    b.join();
    sink = counter;
  } else {
    return 2;
  }
  std::printf("%d\n", static_cast<int>(sink));
  return 0;
}
