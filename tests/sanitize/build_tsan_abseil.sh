#!/usr/bin/env bash
# Builds the Abseil libraries that hold its locks (absl_synchronization and what it links) with
# -fsanitize=thread, from the Debian source package of the installed libabsl — same version, same
# patches, same inline namespace — into DEST/lib, so a TSan test run with LD_LIBRARY_PATH=DEST/lib
# sees every absl::Mutex and CondVar (the packaged libraries are not instrumented, and TSan would
# report every variable they guard as racing). The source comes from Debian's archive through
# apt-get source with a private sources list (the system's apt configuration is not touched).
# Usage: build_tsan_abseil.sh DEST        (~1 min on 2 cores)
set -euo pipefail
dest=$(mkdir -p "$1" && cd "$1" && pwd)
version=$(dpkg-query -W -f='${source:Version}' libabsl20220623)
apt_dir=$dest/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources"
cat >"$apt_dir/sources/debian-src.sources" <<SRC
Types: deb-src
URIs: ${ATTATTR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt_dir/sources"
  -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
rm -rf "$dest/src" && mkdir -p "$dest/download"
(cd "$dest/download" && apt-get "${apt_opts[@]}" source --download-only "abseil=$version")
dpkg-source -x "$dest/download/abseil_${version#*:}.dsc" "$dest/src" >/dev/null
cmake -S "$dest/src" -B "$dest/build" -G Ninja -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$dest/build" -j 2 --target synchronization
mkdir -p "$dest/lib"
find "$dest/build" -name 'libabsl_*.so.*' -exec cp -P -t "$dest/lib" {} +
ls "$dest/lib"
