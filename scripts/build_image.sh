#!/usr/bin/env bash
# Builds the CPU variant of the Dockerfile into the local image attattr:cpu with buildah, on a
# machine without a Docker engine or registry access (as root: buildah's chroot isolation). The
# only thing it adds to a plain `docker build -t attattr:cpu .` is the two base images, which
# cannot be pulled here: it makes them once from Debian's own archive with debootstrap —
#   localhost/debian:12       `debootstrap --variant=minbase bookworm` (the build stage's base)
#   localhost/debian:12-slim  the same with documentation, man pages, locales and apt caches
#                             removed and kept out of later installs, as the official slim image
#                             does (the runtime stage's base)
# and passes them as BUILD_IMAGE / RUNTIME_IMAGE. The Dockerfile itself is unchanged: on a machine
# with Docker, `docker build -t attattr:cpu .` builds the same stages from Docker Hub's debian:12.
# Layers are cached (buildah --layers): a second build with unchanged sources takes seconds. The
# image is in Docker's format (--format docker), as `docker build` makes it: OCI's has no SHELL,
# and the Dockerfile's RUN steps rely on its `bash -o pipefail`.
#
# usage: scripts/build_image.sh [--tag NAME] [--no-cache] [--bases-only]
#   ATTATTR_DEBIAN_MIRROR   the Debian mirror debootstrap and apt use (default deb.debian.org)
#   ATTATTR_CA_BUNDLE       CA bundle the build trusts for crates.io (default: the host's
#                           /etc/ssl/certs/ca-certificates.crt; passed as the secret ca_bundle)
set -euo pipefail
cd "$(dirname "$0")/.."

tag=attattr:cpu
cache=(--layers)
bases_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --no-cache) cache=(--layers --no-cache); shift ;;
    --bases-only) bases_only=true; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mirror=${ATTATTR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=localhost/debian:12
slim=localhost/debian:12-slim

log() { printf '\n== %s\n' "$*"; }

# 1. Tools (scripts/dev-packages.txt lists them too) --------------------------------------------
missing=()
for p in buildah debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Base images -------------------------------------------------------------------------------
has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# Commits the root file system in directory $1 as image $2.
commit_rootfs() {
  local dir=$1 name=$2 ctr mnt
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$dir" -c . | tar -C "$mnt" -x
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash "$ctr"
  buildah commit --rm --quiet "$ctr" "$name" >/dev/null
}

# What the official slim image leaves out (debuerreotype's slimify list): the files go now, and a
# dpkg configuration keeps later installs from bringing them back.
slimify() {
  local dir=$1
  cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{groff,info,linda,lintian/overrides,man}/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* "$dir"/var/cache/debconf/*-old
}

if ! has_image "$base" || ! has_image "$slim"; then
  rootfs=$(mktemp -d /var/tmp/attattr-debian-XXXXXX)
  trap 'rm -rf "$rootfs" "$rootfs.slim"' EXIT
  log "debootstrap --variant=minbase bookworm ($mirror)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  # As the official image: updates too, and no apt lists or caches in the image.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" \
    > "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  log "committing $base and $slim"
  commit_rootfs "$rootfs" "$base"
  cp -a "$rootfs" "$rootfs.slim"
  slimify "$rootfs.slim"
  commit_rootfs "$rootfs.slim" "$slim"
fi

$bases_only && exit 0

# 3. The image ---------------------------------------------------------------------------------
log "buildah build -t $tag (CPU variant, bases $base and $slim)"
start=$(date +%s)
# The host's CA bundle as the build secret `ca_bundle` (the Dockerfile's cargo and pip steps trust it), so
# the build reaches crates.io and PyPI through whatever TLS-intercepting proxy the host itself trusts.
secret=()
ca_bundle="${ATTATTR_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca_bundle" ] && secret=(--secret "id=ca_bundle,src=$ca_bundle")
buildah build --isolation chroot --network host --pull=never --format docker "${cache[@]}" \
  "${secret[@]}" \
  --build-arg VARIANT=cpu --build-arg BUILD_IMAGE="$base" --build-arg RUNTIME_IMAGE="$slim" \
  -f Dockerfile -t "$tag" .
log "built $tag in $(($(date +%s) - start)) s: $(buildah images --format '{{.Size}}' "$tag" | head -1)"
