#!/usr/bin/env bash
# The container test: installs podman, runc and debootstrap from Debian's packages when they
# are missing, makes the local base image, builds the runner image from the Dockerfile and
# runs one complete handoff through the container (tests/container); then builds the transcode
# example as a container image function on the same base (and a copy of it without node) and
# hands invocations off through it (packages/examples/tests/container).
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

# A container image function: the transcode example's Dockerfile on the local base.
examples="$root/packages/examples"
(cd "$examples" && node build.mjs)
function_image=localhost/immortal-example-transcode:test
podman build --quiet --build-arg "BASE_IMAGE=$base" -t "$function_image" "$examples/dist/transcode" >/dev/null
printf 'FROM %s\nRUN rm -f /usr/local/bin/node\n' "$function_image" \
  | podman build --quiet -t localhost/immortal-example-transcode-no-node:test -f - "$examples/dist/transcode" >/dev/null
cd "$examples"
IMMORTAL_RUNNER_IMAGE=immortal-runner:test IMMORTAL_FUNCTION_IMAGE="$function_image" \
  IMMORTAL_NO_NODE_IMAGE=localhost/immortal-example-transcode-no-node:test \
  "$pnpm" exec vitest run --config vitest.container.config.ts
