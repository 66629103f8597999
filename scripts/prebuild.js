#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Makes the prebuilt addon that the package ships (run by `prepack`): the node-gyp build against Debian 12's LibTorch
// 1.13 (CPU), copied to prebuilds/linux-x64/ in node-gyp-build's layout with the LibTorch it needs beside it, which
// scripts/install.js compares with the LibTorch it finds at install time. build/Release is only rebuilt when stale.
//
//   node scripts/prebuild.js          SAN_SKIP_PREBUILD=1 packs without one (installs then always build from source)
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { locate } = require('./libtorch');
const { BUILT, PREBUILD, PREBUILD_LIBTORCH, fail, installFromSource } = require('./install');

if (process.env.SAN_SKIP_PREBUILD) {
  fs.rmSync(path.dirname(PREBUILD), { recursive: true, force: true });
  process.stdout.write('san-node: SAN_SKIP_PREBUILD is set: no prebuilt addon in the package\n');
} else {
  const libtorch = locate();
  if (libtorch.source !== 'Debian libtorch-dev' || libtorch.cuda || libtorch.error) {
    fail([`The prebuilt addon is built against Debian 12's libtorch-dev (CPU), not ${libtorch.source}.`,
      '  unset LIBTORCH_DIR Torch_DIR; apt-get install libtorch-dev    (or SAN_SKIP_PREBUILD=1 to pack without one)']);
  }
  installFromSource(libtorch);
  fs.mkdirSync(path.dirname(PREBUILD), { recursive: true });
  fs.copyFileSync(BUILT, PREBUILD);
  fs.writeFileSync(PREBUILD_LIBTORCH, `${JSON.stringify(libtorch, null, 2)}\n`);
  process.stdout.write(`san-node: ${path.relative(process.cwd(), PREBUILD)} (LibTorch ${libtorch.version})\n`);
}
