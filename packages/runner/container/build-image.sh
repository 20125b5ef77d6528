#!/usr/bin/env bash
# Builds the runner image with podman.
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
(cd "$root" && "$pnpm" --filter @immortal-lambda/runner deploy --prod --legacy "$context/app" >/dev/null)
podman build --quiet -f "$root/packages/runner/Dockerfile" ${base:+--build-arg "BASE_IMAGE=$base"} -t "$tag" "$context/app"
