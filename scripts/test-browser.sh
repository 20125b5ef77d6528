#!/usr/bin/env bash
# The dashboard in a real headless browser: Debian's Chromium (installed here when missing, as
# root or through sudo) driven by puppeteer-core. Screenshots go to packages/local/tests/output.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi
export PATH="$PWD/.tools/pnpm/node_modules/.bin:$PATH"
pnpm --filter @immortal-lambda/local run test:browser
