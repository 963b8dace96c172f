#!/usr/bin/env bash
# Build the base image (Debian bookworm minbase from debootstrap) once and keep it in local
# container storage; later runs reuse it. No container registry is needed.
#   deploy/container/build-base.sh [image]      (default localhost/waymark-base:bookworm)
set -euo pipefail
IMAGE=${1:-localhost/waymark-base:bookworm}
if podman image exists "$IMAGE"; then
  echo "base image $IMAGE: cached"
  exit 0
fi
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOTFS=$(mktemp -d /tmp/waymark-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >/dev/null
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE: built"
