#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds what the package runs, each part only when missing or older than its sources: the native addon (node-gyp,
# through scripts/install.js, the same path as `npm install`) and dist/ (tsc). Run by scripts/setup.sh and by
# `prepack`, so that a packed tarball always holds a current dist/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh

say() { printf '[build] %s\n' "$*"; }

if stale "$SAN_ADDON" cpp binding.gyp scripts/libtorch.js scripts/install.js package-lock.json; then
  say "building the native addon (node-gyp, LibTorch $(node scripts/libtorch.js version 2>/dev/null || echo '?'))"
  node scripts/install.js --build-from-source
  touch "$SAN_ADDON"  # make leaves an up-to-date binary's date alone; this records that it was checked
fi

if stale dist/.built lib index.mjs tsconfig.json; then
  say "compiling TypeScript"
  rm -rf dist
  npx tsc -p tsconfig.json
  touch dist/.built
fi
