# attattr image: a build stage that installs scripts/packages.txt (the same list scripts/setup.sh
# uses) and builds Release, and a slim runtime stage with the binaries and their shared libraries.
# CPU LibTorch from Debian today; the CUDA variant and the server entry point come with the
# deployment work (see the open Deployment issue).
FROM debian:12 AS build
WORKDIR /src
COPY scripts/packages.txt scripts/packages.txt
RUN apt-get update -qq \
 && grep -v '^\s*#' scripts/packages.txt | sed '/^\s*$/d' \
    | xargs env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTATTR_BUILD_TESTS=OFF \
      -DATTATTR_BUILD_BENCH=OFF \
 && cmake --build build -j "$(nproc)"

FROM debian:12 AS runtime
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libtorch1.13 libopenblas0-openmp libutf8proc2 libabsl20220623 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin attattr
COPY --from=build /src/build/bin/attattr /usr/local/bin/attattr
USER 10001
VOLUME ["/models"]
ENV ATTATTR_MODEL=/models/default
ENTRYPOINT ["/usr/local/bin/attattr"]
CMD ["--help"]
