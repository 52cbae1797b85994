# Sourced by the deploy tests: finds the tools scripts/setup.sh installs. Each need_* exits 77
# (CTest: skipped) with a message saying how to get the tool when it is missing — 1 (failed)
# where ATTATTR_REQUIRE_TEST_DEPS=1, as .ci/run sets (tests/support/test_paths.h).
# Expects $tools (directory with helm), $venv (virtual environment with kubernetes-validate), and,
# for need_psa_check, $src (the source tree) and $tmp (a scratch directory).

skip() {
  echo "SKIP: $*"
  if [ "${ATTATTR_REQUIRE_TEST_DEPS:-}" = 1 ]; then
    echo "FAIL: ATTATTR_REQUIRE_TEST_DEPS=1: a missing dependency fails"
    exit 1
  fi
  exit 77
}

need_helm() {
  HELM=$(command -v helm || true)
  [ -z "$HELM" ] && [ -x "$tools/helm" ] && HELM=$tools/helm
  [ -z "$HELM" ] && [ -x "$HOME/go/bin/helm" ] && HELM=$HOME/go/bin/helm
  [ -n "$HELM" ] || skip "helm not found (PATH, $tools, ~/go/bin): run scripts/setup.sh" \
    "(go install helm.sh/helm/v3/cmd/helm@v3.22.0)"
  echo "helm: $HELM ($("$HELM" version --short 2>/dev/null))"
}

# KUSTOMIZE: a command line that takes a kustomization directory and prints the manifests.
need_kustomize() {
  if command -v kustomize >/dev/null; then
    KUSTOMIZE=(kustomize build)
  elif [ -x "$tools/kustomize" ]; then
    KUSTOMIZE=("$tools/kustomize" build)
  elif command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    KUSTOMIZE=(kubectl kustomize)
  else
    skip "neither kustomize nor kubectl found: run scripts/setup.sh" \
      "(go install sigs.k8s.io/kustomize/kustomize/v5)"
  fi
  echo "kustomize: ${KUSTOMIZE[*]}"
}

# PSA_CHECK: tests/deploy/psa_check (k8s.io/pod-security-admission's own checks), built with Go into
# $tools. `go build` is a no-op when the binary is up to date; the first build downloads the
# modules in go.sum from the Go module proxy (skip when that fails) and compiles (a minute or two
# with a cold build cache; scripts/setup.sh builds it beforehand).
need_psa_check() {
  local go_cmd dir=$src/tests/deploy/psa_check
  go_cmd=$(command -v go || true)
  [ -z "$go_cmd" ] && [ -x /usr/local/go/bin/go ] && go_cmd=/usr/local/go/bin/go
  [ -n "$go_cmd" ] || skip "no Go toolchain (go) to build tests/deploy/psa_check: run scripts/setup.sh"
  (cd "$dir" && "$go_cmd" mod download) >"$tmp/go-download" 2>&1 ||
    skip "the Go modules of tests/deploy/psa_check cannot be downloaded: $(tail -n 3 "$tmp/go-download")"
  mkdir -p "$tools"
  PSA_CHECK=$(cd "$tools" && pwd)/psa_check  # absolute: the build runs in the module directory
  if ! (cd "$dir" && "$go_cmd" build -buildvcs=false -o "$PSA_CHECK" .) >"$tmp/go-build" 2>&1; then
    echo "FAIL: go build tests/deploy/psa_check:"; sed 's/^/     /' "$tmp/go-build"; exit 1
  fi
  echo "psa_check: $PSA_CHECK (k8s.io/pod-security-admission $(sed -n 's/^\s*k8s.io\/pod-security-admission //p' "$dir/go.mod"))"
}

need_venv() {
  PY=$venv/bin/python
  [ -x "$PY" ] && "$PY" -c 'import kubernetes_validate, yaml' 2>/dev/null ||
    skip "$venv with kubernetes-validate not found: run scripts/setup.sh"
}

fails=0
check() { # check NAME CMD...: CMD must succeed
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then echo "ok   $name"; else
    echo "FAIL $name:"; sed 's/^/     /' "$tmp/out"; fails=$((fails + 1)); fi
}
refuse() { # refuse NAME PATTERN CMD...: CMD must fail, saying PATTERN
  local name=$1 pattern=$2; shift 2
  if "$@" >"$tmp/out" 2>&1; then
    echo "FAIL $name: accepted, expected a refusal"; fails=$((fails + 1))
  elif ! grep -qiE -- "$pattern" "$tmp/out"; then
    echo "FAIL $name: refused, but without /$pattern/:"; sed 's/^/     /' "$tmp/out"; fails=$((fails + 1))
  else
    echo "ok   $name: refused ($(grep -iE -m1 -- "$pattern" "$tmp/out" | cut -c1-160))"
  fi
}
finish() {
  if ((fails)); then echo "$fails check(s) failed"; exit 1; fi
  echo "all checks passed"
}
