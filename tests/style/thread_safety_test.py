#!/usr/bin/env python3
"""Clang's thread-safety analysis over the server: compiles every server/ source with clang-14
(-fsyntax-only -Wthread-safety -Werror), with the flags the real build used (compile_commands.json
of the build directory). The build itself is GCC, which ignores the ABSL_GUARDED_BY /
ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations; this test is what makes them checked.

usage: thread_safety_test.py SOURCE_DIR BUILD_DIR     exit 0 clean, 1 findings, 77 skipped
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# GCC-only flags clang-14 would reject or warn about.
DROP = {"-fno-fat-lto-objects", "-fconcepts"}


def clang_command(clang, entry):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out = [clang, "-fsyntax-only"]
    skip = False
    for i, a in enumerate(args[1:], 1):
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a in DROP or a.startswith("-W"):
            continue
        if a == entry["file"] or os.path.abspath(os.path.join(entry["directory"], a)) == entry["file"]:
            continue
        out.append(a)
    # Only the thread-safety diagnostics, as errors; the GCC build owns -Wall -Wextra. (-w would
    # silence these too: -Wno-everything is what can be re-enabled group by group.)
    out += ["-Wno-everything", "-Wthread-safety", "-Wthread-safety-beta", "-Werror", entry["file"]]
    return out


# CTest's "skipped"; a failure where ATTATTR_REQUIRE_TEST_DEPS=1 (.ci/run): a missing tool there is
# a broken set-up (tests/support/test_paths.h).
SKIP = 1 if os.environ.get("ATTATTR_REQUIRE_TEST_DEPS") == "1" else 77


def main():
    src, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    clang = shutil.which("clang++-14") or shutil.which("clang++")
    if not clang:
        print("SKIP: clang++-14 is not installed (scripts/packages.txt lists clang-14)")
        return SKIP
    db = os.path.join(build, "compile_commands.json")
    if not os.path.exists(db):
        print("SKIP: %s is missing (configure with CMAKE_EXPORT_COMPILE_COMMANDS)" % db)
        return SKIP
    server = os.path.join(src, "server") + os.sep
    entries = [e for e in json.load(open(db)) if e["file"].startswith(server)]
    if not entries:
        print("FAIL: no server sources in %s" % db)
        return 1

    def check(entry):
        r = subprocess.run(clang_command(clang, entry), cwd=entry["directory"],
                           capture_output=True, text=True)
        return entry["file"], r.returncode, r.stderr

    failures = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path, code, err in pool.map(check, entries):
            rel = os.path.relpath(path, src)
            if code != 0:
                failures += 1
                print("FAIL %s\n%s" % (rel, err[-4000:]))
            else:
                print("ok   %s" % rel)
    print("%d of %d server sources checked clean" % (len(entries) - failures, len(entries)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
