#!/usr/bin/env bash
# Builds the runner image with podman, from the runner package as it is published (`pnpm pack`:
# what a user's install holds, and what the CDK construct builds from), with no network: the
# image needs nothing from a registry but its base.
#   container/build-image.sh [tag] [base image]
# The base defaults to the Dockerfile's (Lambda's public Node.js image); pass a local one
# where no registry can be reached (container/make-base.sh makes one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tag="${1:-immortal-runner:local}"
base="${2:-}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
pnpm="pnpm"
command -v pnpm >/dev/null || pnpm="$root/.tools/pnpm/node_modules/.bin/pnpm"

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
(cd "$root/packages/runner" && "$pnpm" pack --pack-destination "$context" >/dev/null)
tar -xzf "$context"/*.tgz -C "$context"
network="--network=none"
# Without a local base the default one is pulled: that needs the network.
[ -n "$base" ] || network=""
podman build --quiet $network ${base:+--build-arg "BASE_IMAGE=$base"} -t "$tag" "$context/package"
