# syntax=docker/dockerfile:1
# attattr-server image. Two stages: `build` installs the Debian packages of scripts/packages.txt
# (the one package list; scripts/setup.sh and CI read it too) and builds with the same CMake preset
# commands as scripts/setup.sh; `runtime` is a slim image with the two binaries and the shared
# libraries they load, running as a non-root user.
#
#   CPU (default): Debian 12 with the official LibTorch 2.x of the PyPI torch wheel
#   (scripts/libtorch-wheel.txt, installed without its dependencies, as scripts/setup.sh does; the
#   runtime image keeps only the libraries the binaries load: libtorch_cpu, libc10, the CUDA
#   runtime and CUPTI that libtorch_cpu names)
#     docker build -t attattr:cpu .
#   CUDA: a CUDA base image and the official CUDA LibTorch (cxx11 ABI) instead of libtorch-dev; the
#   server then defaults to --device cuda and needs the NVIDIA container runtime (or the GPU operator
#   on Kubernetes), which also brings libnvidia-ml for the attattr_device_memory_* metrics:
#     docker build -t attattr:cuda --build-arg VARIANT=cuda \
#       --build-arg BUILD_IMAGE=nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04 \
#       --build-arg RUNTIME_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#       --build-arg LIBTORCH_SHA256=<sha256sum of the LibTorch zip> .
#   (Ubuntu 24.04 carries the same gRPC 1.51 / Abseil 20220623 / Protobuf 3.21 as Debian 12, so
#   scripts/packages.txt installs there unchanged; LIBTORCH_URL picks another LibTorch build.)
#   The zip is unpacked only if its SHA-256 is LIBTORCH_SHA256, which has no default: pytorch.org
#   publishes none, so pin the one of a copy you trust (`sha256sum libtorch-….zip`).
#
# Run: docker run -p 50051:50051 -p 9464:9464 -v /srv/models:/models:ro attattr:cpu
# Without a Docker engine (as in CI): scripts/build_image.sh builds this same file with buildah on
# debootstrapped Debian bases (tests/image checks and serves the result).
# See deploy/README.md for Kubernetes (Helm chart helm/attattr).

ARG VARIANT=cpu
ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

# ---------------------------------------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
ARG VARIANT
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu126/libtorch-cxx11-abi-shared-with-deps-2.7.1%2Bcu126.zip
ARG LIBTORCH_SHA256=
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Packages: the build's list (scripts/packages.txt) but Debian's libtorch-dev, the alternative
# LibTorch the image does not use; python3-venv to install the CPU variant's wheel.
# scripts/dev-packages.txt (tests, style checks, the image build) stays out.
COPY scripts/packages.txt scripts/libtorch-wheel.txt scripts/
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && { grep -v '^\s*#' scripts/packages.txt | sed '/^\s*$/d' | grep -vx libtorch-dev; \
      echo python3-venv; } \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
 && if [ "$VARIANT" = cuda ]; then \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates \
      && { [ -n "$LIBTORCH_SHA256" ] \
           || { echo "error: the CUDA variant needs --build-arg LIBTORCH_SHA256 (the zip's sha256sum)" >&2; exit 1; }; } \
      && curl -fsSL -o /tmp/libtorch.zip "$LIBTORCH_URL" \
      && echo "$LIBTORCH_SHA256  /tmp/libtorch.zip" | sha256sum -c - \
      && unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip; \
    fi \
 && rm -rf /var/lib/apt/lists/*
# The CPU variant's LibTorch: the pinned torch wheel and the two CUDA runtime wheels it needs to load
# (scripts/libtorch-wheel.txt), in /opt/libtorch-venv. Behind a TLS-intercepting proxy pip uses the
# optional build secret `ca_bundle` (see the build step below).
# hadolint ignore=DL3042
RUN --mount=type=secret,id=ca_bundle,required=false \
    if [ "$VARIANT" = cpu ]; then \
      if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
      && python3 -m venv /opt/libtorch-venv \
      && /opt/libtorch-venv/bin/pip install --quiet --no-cache-dir --no-deps \
           -r scripts/libtorch-wheel.txt; \
    fi
COPY . .
# The build: scripts/setup.sh's two CMake commands (the `release` preset, Ninja, build/), with the
# tests and benchmarks left out of the image. cargo fetches engine/hf_tokenizers' crates from
# crates.io over HTTPS; behind a TLS-intercepting proxy, pass the CA bundle that trusts it as the
# optional build secret `ca_bundle` (scripts/build_image.sh passes the host's): it is mounted for
# this step only and never stored in a layer. Three cache mounts (kept by the builder between builds,
# never in a layer) make a rebuild after a source change take minutes, not the ~15 of a cold one:
# ccache's objects (cmake/AttattrCcache.cmake), cargo's downloaded crates and its target directory
# (the C ABI crate's own sources are touched first: cargo judges them by mtime, and a cached build
# from other sources with newer mtimes would otherwise pass for fresh).
RUN --mount=type=secret,id=ca_bundle,required=false \
    --mount=type=cache,id=attattr-ccache,target=/root/.cache/ccache \
    --mount=type=cache,id=attattr-cargo-registry,target=/root/.cargo/registry \
    --mount=type=cache,id=attattr-cargo-target,target=/src/.cache/cargo-target \
    if [ -s /run/secrets/ca_bundle ]; then export CARGO_HTTP_CAINFO=/run/secrets/ca_bundle; fi \
 && find engine/hf_tokenizers -type f -exec touch {} + \
 && if [ "$VARIANT" = cuda ]; then \
      torch_args=(-DATTATTR_LIBTORCH=system -DCMAKE_PREFIX_PATH=/opt/libtorch); \
    else \
      torch_args=(-DATTATTR_LIBTORCH=wheel \
        "-DATTATTR_TORCH_WHEEL_DIR=$(echo /opt/libtorch-venv/lib/python3*/site-packages/torch)"); \
    fi \
 && cmake --preset release -DATTATTR_BUILD_TESTS=OFF -DATTATTR_BUILD_BENCH=OFF "${torch_args[@]}" \
 && cmake --build --preset release --target attattr-server attattr
# Stage the binaries and every shared library they load except glibc's own (the runtime image has
# the same glibc); for CUDA the whole LibTorch lib/ (it dlopens cuDNN/NVRTC parts ldd cannot see).
RUN mkdir -p /out/bin /out/lib \
 && cp build/bin/attattr-server build/bin/attattr /out/bin/ \
 && ldd build/bin/attattr-server build/bin/attattr \
    | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u \
    | grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*)\.so' \
    | xargs -r cp -L -t /out/lib/ \
 && if [ "$VARIANT" = cuda ]; then cp -a /opt/libtorch/lib/. /out/lib/; fi

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="attattr" \
      org.opencontainers.image.description="Self-attention attribution for Transformer classifiers (Hugging Face checkpoints) as a gRPC service"
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin attattr \
 && mkdir -p /models /data /var/lib/attattr \
 && chown attattr:attattr /var/lib/attattr
COPY --from=build /out/lib/ /opt/attattr/lib/
COPY --from=build /out/bin/ /usr/local/bin/
# Every server flag has an ATTATTR_* variable (attattr-server --help); these are the image's
# defaults, overridden by flags or by the Helm chart's ConfigMap.
#   /models           model root (--models): one Hugging Face directory per served model, read-only;
#                     mount the serving cluster's model volume here
#   /data             data root (--data-root): GLUE TSV files that jobs name by relative path
#   /var/lib/attattr  the SQLite job store (--store), the only path the server writes
# OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep instead of spinning while they wait, so hand-set
# --workers x --threads above the container's CPUs degrade gently (README "LibTorch", Threads);
# measured free with the default one-thread workers and with one worker on every core.
ENV LD_LIBRARY_PATH=/opt/attattr/lib \
    OMP_WAIT_POLICY=PASSIVE \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    ATTATTR_MODELS=/models \
    ATTATTR_DATA_ROOT=/data \
    ATTATTR_STORE=/var/lib/attattr/attattr-jobs.db \
    ATTATTR_LISTEN=0.0.0.0:50051 \
    ATTATTR_METRICS_LISTEN=0.0.0.0:9464 \
    ATTATTR_DEVICE=${VARIANT} \
    ATTATTR_LOG_FORMAT=json \
    ATTATTR_GRACE_SECONDS=30
VOLUME ["/models", "/data", "/var/lib/attattr"]
# gRPC (attattr.v1.Attattr, grpc.health.v1, reflection) and Prometheus /metrics.
EXPOSE 50051 9464
USER 10001:10001
# On SIGTERM the server drains: health goes NOT_SERVING, new work is UNAVAILABLE, running jobs get
# ATTATTR_GRACE_SECONDS (30 s) to finish and are re-queued otherwise, then it exits 0. Give the
# container longer than that before SIGKILL: `docker stop -t 45`, and on Kubernetes
# terminationGracePeriodSeconds >= grace seconds + 15 (the chart derives it from the same value).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/attattr-server"]
CMD []
