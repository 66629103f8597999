#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * Writes the summary of a `scripts/device/run-cuda-suite.sh hopper` run from the files it left: the steps and their
 * exit status, the Hopper issue's targets against what was measured, the network probe, end to end, GPU memory, and
 * the bench report verbatim. Every figure comes from those files; nothing is typed in.
 *
 *   node scripts/device/summarize.js RESULTS_DIR SUMMARY.md [--docs docs/benchmarks.md]
 *
 * RESULTS_DIR is the run's folder (results.tar.gz unpacked). With --docs, the same text also replaces the region
 * between `<!-- h200:begin -->` and `<!-- h200:end -->` of that file (added at its end when absent): the only way
 * the H200 section of docs/benchmarks.md is written.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const [dir, outFile, ...rest] = process.argv.slice(2);
if (!dir || !outFile) {
  console.error('usage: node scripts/device/summarize.js RESULTS_DIR SUMMARY.md [--docs docs/benchmarks.md]');
  process.exit(2);
}
const docsFile = rest[0] === '--docs' ? rest[1] : undefined;

const read = (name) => (fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), 'utf8') : undefined);
const readJson = (name) => {
  const text = read(name);
  return text === undefined ? undefined : JSON.parse(text);
};
const fixed = (value, digits = 1) => (typeof value === 'number' ? value.toFixed(digits) : '—');
const table = (header, rows) => [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`,
  ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');

function steps() {
  const log = read('steps.log') ?? '';
  const rows = [];
  for (const match of log.matchAll(/\] (\S+): exit (\d+) after (\d+) s/g)) {
    const [, name, code, seconds] = match;
    const tests = (read(`${name}.log`) ?? '').match(/^Tests:.*$/m)?.[0] ?? (read(`${name}.log`) ?? '').match(/^\d+ passed.*$/m)?.[0] ?? '';
    rows.push([name, code, seconds, tests]);
  }
  const skipped = [...log.matchAll(/skipped \(budget[^)]*\): (.*)$/gm)].map((m) => m[1]);
  return `${table(['step', 'exit', 's', 'tests'], rows)}${skipped.length ? `\n\nSkipped for time: ${skipped.join('; ')}.` : ''}`;
}

function targets(probe, e2e) {
  const decoded = e2e?.results?.decoded?.imagesPerS;
  const jpeg = e2e?.results?.['segment jpeg']?.imagesPerS;
  const speedup = probe?.speedup_vs_eager?.torchscript;
  const graph = probe?.speedup_vs_eager?.cuda_graph;
  const verdict = (value, goal) => (typeof value === 'number' ? (value >= goal ? 'met' : 'not met') : 'not measured');
  return table(['target', 'measured', 'goal', ''], [
    ['the network: `segment()` on decoded images, ViT-B/16 640×640, batches of 16', `${fixed(decoded)} images/s`,
      '≥ 1,200 images/s', verdict(decoded, 1200)],
    ['the TorchScript export (what the addon runs) against eager `models/san`, `forward` at batch 16',
      `${fixed(speedup, 2)}× (a CUDA graph of it: ${fixed(graph, 2)}×)`, '≥ 1.5×', verdict(speedup, 1.5)],
    ['end to end from JPEG bytes against the network', `${fixed(jpeg && decoded ? jpeg / decoded : undefined, 2)}×`,
      '≥ 0.8×', verdict(jpeg && decoded ? jpeg / decoded : undefined, 0.8)],
  ]);
}

function probeSection(name) {
  const probe = readJson(name);
  if (!probe) return `${name}: not written.`;
  const rows = Object.entries(probe.modes).map(([mode, r]) => [mode, fixed(r.ms), fixed(r.images_per_s),
    fixed(r.peak_allocated_mib, 0), r.max_abs_diff_vs_first?.map((d) => d.toExponential(1)).join(', ') ?? '',
    r.compile_s !== undefined ? fixed(r.compile_s) : '', r.error ?? r.skipped ?? '']);
  return `${probe.variant}, batch ${probe.batch}, ${probe.dtype}, ${probe.side}×${probe.side}, ${probe.device}, ` +
    `PyTorch ${probe.torch}, fused attention ${probe.fused_attention}:\n\n` +
    table(['mode', 'ms per batch', 'images/s', 'peak MiB', '|Δ| vs first (logits, embeds)', 'compile s', 'note'], rows);
}

function e2eSection(name) {
  const e2e = readJson(name);
  if (!e2e) return `${name}: not written.`;
  const rows = Object.entries(e2e.results).map(([series, r]) => [series, fixed(r.imagesPerS), fixed(r.p50Ms), fixed(r.p99Ms)]);
  const memory = e2e.memory?.deviceMemory ?? {};
  const { settings, machine } = e2e;
  return `${path.basename(settings.model)} on ${settings.device} in ${settings.dtype}, ${settings.side}×${settings.side} ` +
    `images, ${settings.concurrency} calls at a time, batches up to ${settings.batch}; ${machine.cpus} host cores, ` +
    `UV_THREADPOOL_SIZE ${machine.uvThreadpoolSize}, sharp concurrency ${machine.sharpConcurrency}:\n\n` +
    `${table(['series', 'images/s', 'p50 ms', 'p99 ms'], rows)}\n\nBatch sizes run: ${JSON.stringify(e2e.batches?.sizeHistogram ?? {})}. ` +
    `GPU memory (caching allocator): ${memory.unavailable ?? `${fixed(memory.allocatedBytes / 2 ** 20, 0)} MiB allocated, ` +
    `${fixed(memory.reservedBytes / 2 ** 20, 0)} MiB reserved, peak ${fixed(memory.peakAllocatedBytes / 2 ** 20, 0)} MiB`}.`;
}

const versions = read('versions.txt') ?? 'versions.txt: not written\n';
const probe = readJson('probe-vit_b_16.json');
const e2e = readJson('e2e-vit_b_16.json');
const gpu = probe?.device ?? 'the device';
const bench = fs.readdirSync(dir).filter((f) => /^bench-.*\.md$/.test(f))
  .map((f) => `### ${f}\n\n${fs.readFileSync(path.join(dir, f), 'utf8').replace(/^# .*\n/, '').replace(/^#/gm, '###')}`);
const body = [
  `## On a GPU: ${gpu}, the Hopper plan`,
  `Written by scripts/device/summarize.js from the outputs of \`scripts/device/run-cuda-suite.sh hopper\` ` +
    `(${e2e?.date ?? 'date unknown'}); docs/gpu.md describes the plan.`,
  `\`\`\`\n${versions.trim()}\n\`\`\``,
  '### Steps', steps(),
  '### Targets', targets(probe, e2e),
  '### The network alone (scripts/device/network_probe.py)', probeSection('probe-vit_b_16.json'),
  probeSection('probe-vit_l_14_336.json'), probeSection('aoti-vit_b_16.json'),
  '### End to end (bench/e2e.js)', e2eSection('e2e-vit_b_16.json'), e2eSection('e2e-vit_l_14_336.json'),
  ...bench,
].join('\n\n');

fs.writeFileSync(outFile, `${body}\n`);
if (docsFile) {
  const docs = fs.readFileSync(docsFile, 'utf8');
  const region = `<!-- h200:begin -->\n${body}\n<!-- h200:end -->`;
  const pattern = /<!-- h200:begin -->[\s\S]*?<!-- h200:end -->/;
  fs.writeFileSync(docsFile, pattern.test(docs) ? docs.replace(pattern, region) : `${docs.trimEnd()}\n\n${region}\n`);
}
console.log(`wrote ${outFile}${docsFile ? ` and the h200 region of ${docsFile}` : ''}`);
