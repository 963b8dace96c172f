#!/usr/bin/env bash
# Build the base image: Debian bookworm minbase from debootstrap, with the distribution's
# security archive (bookworm-security) and point-release updates (bookworm-updates) in its
# sources and applied. It is kept in local container storage and reused, but never kept
# stale: every run asks the archives (apt-get -s upgrade inside the cached image) and
# rebuilds it when Debian has published updates for any of its packages. No registry needed.
#   deploy/container/build-base.sh [image]      (default localhost/waymark-base:bookworm)
#   deploy/container/build-base.sh --check [image]   only check: exit 0 up to date, 1 stale
#                                                    (updates published), 2 could not check
#   REBUILD_BASE=1 deploy/container/build-base.sh    rebuild whatever the check says
# Mirrors: DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR, else this host's apt sources, else
# deb.debian.org.
set -euo pipefail
CHECK_ONLY=0
if [ "${1:-}" = --check ]; then CHECK_ONLY=1; shift; fi
IMAGE=${1:-localhost/waymark-base:bookworm}
SUITE=bookworm
SOURCES=/etc/apt/sources.list.d/debian.sources
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$SOURCES" 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' "$SOURCES" 2>/dev/null || true)}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

# Packages of the cached image that have a newer version in its archives; "all" for an image
# made before the security archive was in its sources; "unknown" when the archives cannot be
# reached or apt cannot plan an upgrade (then the cached image is used, and the build says so).
pending_updates() {
  local ctr count err attempt
  err=$(mktemp)
  for attempt in 1 2; do  # once more on a failure: container storage may be busy
    ctr=$(buildah from --pull-never "$IMAGE" 2>"$err") || ctr=
    if [ -n "$ctr" ] && count=$(buildah run --isolation chroot "$ctr" -- sh -c \
      'grep -qs -- "-security" /etc/apt/sources.list || { echo all; exit 0; }
       apt-get update -qq >/dev/null 2>&1 || exit 3
       apt-get -s upgrade >/tmp/upgrade.txt 2>&1 || exit 3
       grep -c "^Inst " /tmp/upgrade.txt || true' 2>>"$err"); then
      buildah rm "$ctr" >/dev/null 2>&1 || true
      rm -f "$err"
      echo "${count:-unknown}"
      return
    fi
    [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1
    echo "update check, attempt $attempt: buildah or apt failed: $(tail -n 3 "$err" | tr '\n' ' ')" >&2
  done
  rm -f "$err"
  echo unknown
}

if [ $CHECK_ONLY = 1 ]; then
  podman image exists "$IMAGE" || { echo "base image $IMAGE: missing"; exit 1; }
  updates=$(pending_updates)
  case "$updates" in
    0) echo "base image $IMAGE: up to date"; exit 0 ;;
    unknown) echo "base image $IMAGE: could not check the archives for updates"; exit 2 ;;
    *) echo "base image $IMAGE: stale: $updates package update(s) published"; exit 1 ;;
  esac
fi

if podman image exists "$IMAGE" && [ "${REBUILD_BASE:-0}" != 1 ]; then
  updates=$(pending_updates)
  case "$updates" in
    0) echo "base image $IMAGE: cached, no package updates published"; exit 0 ;;
    unknown) echo "base image $IMAGE: cached; WARNING: could not check the archives for updates" >&2; exit 0 ;;
    *) echo "base image $IMAGE: $updates package update(s) published (security or point release): rebuilding" ;;
  esac
fi

ROOTFS=$(mktemp -d /tmp/waymark-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap $SUITE from $MIRROR (security updates from $SECURITY)"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
cat > "$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
chroot "$ROOTFS" apt-get update -qq
chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade >/dev/null
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" - "$IMAGE" >/dev/null
echo "base image $IMAGE: built with the $SUITE, $SUITE-updates and $SUITE-security archives"
