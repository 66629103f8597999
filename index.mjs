// SPDX-License-Identifier: Apache-2.0
// The ESM entry (package.json "exports" → "import"): the CommonJS build itself, re-exported by name, so that
// `import { SanModel } from 'san-node'` and `require('san-node')` share one module instance and one loaded addon.
export * from './dist/index.js';
export { default } from './dist/index.js';
