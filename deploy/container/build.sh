#!/usr/bin/env bash
# Build the Waymark image with buildah (layers cached in local storage between runs).
#   deploy/container/build.sh [tag]        (default localhost/waymark:dev)
# VERSION and COMMIT default to the project version and the git HEAD. NO_CACHE=1 rebuilds
# every layer (the weekly security build: packages installed in the stages get their
# updates too); the base image is checked for published updates on every build.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-localhost/waymark:dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/waymark-base:bookworm}
VERSION=${VERSION:-$(awk -F'"' '/^version *=/{print $2; exit}' pyproject.toml)}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
# A TLS-intercepting proxy's CA (npm and pip in the build need it): BUILD_CA_BUNDLE, else
# pip's own setting. Passed as a build secret, so it never lands in an image layer.
CA=${BUILD_CA_BUNDLE:-${PIP_CERT:-}}
SECRET=()
if [ -n "$CA" ] && [ -f "$CA" ]; then SECRET=(--secret "id=ca,src=$CA"); fi
CACHE=(--layers)
if [ "${NO_CACHE:-0}" = 1 ]; then CACHE=(--no-cache); fi
deploy/container/build-base.sh "$BASE_IMAGE"
# The version and commit are also set on the final image by --label/--env: buildah 1.28's layer
# cache does not see a changed ARG in LABEL/ENV, so a cached layer would carry the last
# build's commit.
buildah build "${CACHE[@]}" --format docker --isolation chroot "${SECRET[@]}" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$VERSION" --build-arg COMMIT="$COMMIT" \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.revision="$COMMIT" \
  --env WAYMARK_COMMIT="$COMMIT" \
  -f Containerfile -t "$TAG" .
echo "built $TAG (version $VERSION, commit $COMMIT)"
