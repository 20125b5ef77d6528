#!/usr/bin/env bash
# The container test: installs podman, runc and debootstrap from Debian's packages when they
# are missing, makes the local base image, builds the runner image from the Dockerfile and
# runs one complete handoff through the container (tests/container).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  echo "[container] installing podman, runc and debootstrap" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q podman runc debootstrap >/dev/null
fi
export CONTAINERS_CONF="$here/containers.conf"
base="$("$here/make-base.sh" 22)"
"$here/build-image.sh" immortal-runner:test "$base"
pnpm="pnpm"
command -v pnpm >/dev/null || pnpm="$root/.tools/pnpm/node_modules/.bin/pnpm"
cd "$root/packages/runner"
IMMORTAL_RUNNER_IMAGE=immortal-runner:test "$pnpm" exec vitest run --config vitest.container.config.ts
