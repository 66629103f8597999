// SPDX-License-Identifier: Apache-2.0
/**
 * What `npm run bench` reports: the machine and library versions it ran on, and the measurements as Markdown
 * tables (printed, and written to docs/benchmarks.md).
 */
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');

/** Path of the first library mapped into this process whose file name matches `pattern`, or ''. */
function loadedLibrary(pattern) {
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const file = line.split(/\s+/).pop() ?? '';
    if (pattern.test(file.split('/').pop() ?? '')) return file;
  }
  return '';
}

/** Output of a command, trimmed, or '' when it fails. */
function tryRun(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** The machine: CPU model, cores, memory, kernel, load average. */
function machine() {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '').split(' ');
  return {
    cpu,
    simd: ['avx512f', 'avx2', 'fma'].filter((flag) => flags.includes(flag)).join(', ') || 'none of avx2, avx512f, fma',
    cores: os.availableParallelism(),
    ramGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()}`,
  };
}

/** The versions and settings of this process (after the addon is loaded). */
function nodeSide(binding, { device, dtype, threads }) {
  const versions = binding.versions();
  return {
    node: process.version,
    libtorch: versions.libtorch,
    libtorchBuild: versions.cuda ? `${versions.build}, CUDA ${versions.cuda}` : versions.build,
    device,
    dtype,
    libtorchCpu: loadedLibrary(/^libtorch_cpu/),
    openblas: loadedLibrary(/^libopenblas/),
    openblasPackage: tryRun('dpkg-query', ['-W', '-f=${Version}', 'libopenblas0-pthread']),
    openblasThreadsEnv: process.env.OPENBLAS_NUM_THREADS ?? '(unset)',
    ompWaitPolicyEnv: process.env.OMP_WAIT_POLICY ?? '(unset)',
    ompThreadsEnv: process.env.OMP_NUM_THREADS ?? '(unset)',
    threads,
    commit: tryRun('git', ['rev-parse', '--short', 'HEAD']),
    // Other work in progress in the same checkout is part of what was measured: say so.
    uncommitted: tryRun('git', ['status', '--porcelain', '--untracked-files=no']) !== '',
    os: tryRun('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']) || os.type(),
  };
}

const fmt = {
  ms: (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3)),
  ratio: (x) => x.toFixed(2),
  rate: (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)),
  g: (flops) => (flops >= 1e11 ? (flops / 1e9).toFixed(0) : (flops / 1e9).toFixed(2)),
  timing: (t) => `${fmt.ms(t.ms)} (n=${t.n})`,
};

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const check = (ok) => (ok ? 'met' : '**not met**');

/** The batch size with the most images/s through the addon. */
const bestBatch = (m) => m.throughput.filter((row) => row.addon)
  .sort((a, b) => b.batch / b.addon.ms - a.batch / a.addon.ms)[0];

function environmentTable({ env, args, command, started, elapsedS, load }) {
  const { machine: mc, node, python } = env;
  const rows = [
    ['date', started],
    ['machine', `${mc.cpu} (${mc.simd}), ${mc.cores} cores, ${mc.ramGiB.toFixed(1)} GiB RAM`],
  ];
  if (python.gpu) rows.push(['GPU', `${python.gpu} (CUDA ${python.cuda} in PyTorch)`]);
  rows.push(
    ['load average (1 min)', `${load.start.toFixed(2)} at start, ${load.mean.toFixed(2)} mean, ${load.max.toFixed(2)} max, `
      + `${load.end.toFixed(2)} at end, on ${mc.cores} cores`],
    ['OS', `${node.os}, ${mc.kernel}`],
    ['san-node', `commit ${node.commit}${node.uncommitted ? ', with uncommitted changes in the checkout' : ''}`],
    ['Node.js', node.node],
    ['LibTorch (addon)', `${node.libtorch} (${node.libtorchBuild}), \`${node.libtorchCpu}\``],
    ['PyTorch (baseline)', `${python.torch} on Python ${python.python}, \`${python.libtorch_cpu}\``],
    ['OpenBLAS', python.openblas.config ? `${python.openblas.config} (Debian libopenblas0-pthread `
      + `${node.openblasPackage || '?'}), \`${node.openblas}\`` : `none loaded in Python; \`${node.openblas || 'none'}\` in the addon`],
    ['device, dtype', `${args.device}, ${args.dtype} (addon and Python)`],
    ['threads', `LibTorch intra-op ${node.threads} (addon \`threads\`) / ${python.intra_op_threads} `
      + `(Python \`torch.set_num_threads\`); OPENBLAS_NUM_THREADS=${node.openblasThreadsEnv} and `
      + `OMP_WAIT_POLICY=${node.ompWaitPolicyEnv} in both`
      + `${python.openblas.num_threads === undefined ? '' : ` (OpenBLAS reports ${python.openblas.num_threads} in Python)`}`],
    ['run time', `${elapsedS.toFixed(0)} s`],
    ['reproduce', `\`${command}\` (after \`bash scripts/setup.sh\`)`],
  );
  return table(['', ''], rows);
}

function summaryTable(models, matmul, cpu) {
  const rows = [];
  for (const m of models) {
    const { ratio } = m.overhead;
    const target = m.name === 'vit_b_16' ? (cpu ? '≤ 1.05' : '≤ 1.05 on CPU') : 'none (see below)';
    rows.push([`\`segment()\` / network, ${m.label}, batch 1`, fmt.ratio(ratio), target,
      m.name === 'vit_b_16' && cpu ? check(ratio <= 1.05) : '']);
  }
  for (const m of models) {
    for (const row of m.pythonRows.filter((r) => r.method === 'segment')) {
      const x = row.python.ms / row.addon.ms;
      rows.push([`Python time / addon time, ${m.label}, batch ${row.batch}`, fmt.ratio(x), '≥ 1.0', check(x >= 1.0)]);
    }
  }
  for (const m of models) {
    rows.push([`text encoding cold / cached, ${m.label}, ${m.text.classes} classes`,
      fmt.rate(m.text.cold.ms / m.text.cached.ms), '', '']);
  }
  for (const m of models.filter((x) => x.flops)) {
    const best = bestBatch(m);
    const rate = (m.flops.segment.total * best.batch) / (best.addon.ms / 1000);
    rows.push([`achieved / matmul FLOP/s, ${m.label} \`segment\`, batch ${best.batch}`,
      `${fmt.rate(rate / 1e9)} / ${fmt.rate(matmul.addon.flops / 1e9)} GFLOP/s = ${((100 * rate) / matmul.addon.flops).toFixed(0)} %`,
      '', '']);
  }
  return table(['what', 'measured', 'target', ''], rows);
}

function throughputTable(models) {
  const rows = [];
  for (const m of models) {
    for (const row of m.throughput) {
      if (row.skipped) {
        rows.push([m.label, row.batch, `skipped: ${row.skipped}`, '', '', '', '', '', '']);
        continue;
      }
      const perImageFlops = m.flops?.segment?.total;
      rows.push([
        m.label, row.batch, fmt.timing(row.addon), fmt.rate((1000 * row.batch) / row.addon.ms),
        row.e2e ? fmt.timing(row.e2e) : 'not run', row.e2e ? fmt.rate((1000 * row.batch) / row.e2e.ms) : '',
        row.python ? fmt.timing(row.python) : 'not run', row.python ? fmt.ratio(row.python.ms / row.addon.ms) : '',
        perImageFlops ? fmt.rate((perImageFlops * row.batch) / (row.addon.ms / 1000) / 1e9) : '',
      ]);
    }
  }
  return table(['model (network input)', 'batch', 'addon ms', 'addon images/s', '`segment()` ms', '`segment()` images/s',
    'Python ms', 'Python / addon', 'addon GFLOP/s'], rows);
}

function overheadTable(models) {
  return table(['model', '`segment()` ms', 'network `segment` ms', 'ratio', 'network `forward` ms',
    '`segment()` / `forward`', 'decode + resize ms'], models.map((m) => {
    const o = m.overhead;
    return [m.label, fmt.timing(o.e2e), fmt.timing(o.raw), fmt.ratio(o.ratio), fmt.timing(o.forward),
      fmt.ratio(o.e2e.ms / o.forward.ms), fmt.timing(o.decode)];
  }));
}

function pythonTable(models) {
  const rows = [];
  for (const m of models) {
    for (const row of m.pythonRows) {
      rows.push([m.label, `\`${row.method}\``, row.batch, fmt.timing(row.addon), fmt.timing(row.python),
        fmt.ratio(row.python.ms / row.addon.ms)]);
    }
  }
  return table(['model', 'method', 'batch', 'addon ms', 'Python ms', 'Python / addon'], rows);
}

function textTable(models) {
  return table(['model', 'classes', 'prompts', 'cold ms', 'cold ms / class', 'padded to longest ms (tokens)',
    'cached ms', 'cold / cached'], models.map((m) => {
    const t = m.text;
    return [m.label, t.classes, t.prompts, fmt.timing(t.cold), fmt.ms(t.cold.ms / t.classes),
      `${fmt.timing(t.trimmed)}, ${t.trimmed.longest}`, fmt.timing(t.cached), fmt.rate(t.cold.ms / t.cached.ms)];
  }));
}

function flopTable(models, matmul) {
  const rows = [];
  for (const m of models.filter((x) => x.flops)) {
    const f = m.flops;
    const entries = [
      ['`forward`, batch 1', f.forward.total, m.overhead.forward.ms],
      ['`segment`, batch 1', f.segment.total, m.overhead.raw.ms],
    ];
    const best = bestBatch(m);
    if (best.batch !== 1) entries.push([`\`segment\`, batch ${best.batch}`, f.segment.total * best.batch, best.addon.ms]);
    if (m.textFlops) {
      entries.push([`text encoder, ${m.text.prompts} prompts × ${m.text.contextLength} tokens (cold)`,
        m.textFlops.total * m.text.prompts, m.text.cold.ms]);
    }
    for (const [what, flops, ms] of entries) {
      const rate = flops / (ms / 1000);
      rows.push([m.label, what, fmt.g(flops), fmt.ms(ms), fmt.rate(rate / 1e9),
        `${((100 * rate) / matmul.addon.flops).toFixed(0)} %`]);
    }
  }
  return table(['model', 'work', 'GFLOP', 'addon ms', 'GFLOP/s', 'of matmul rate'], rows);
}

/**
 * The bench's Markdown: environment, summary, one section per measurement, then how it was measured. It goes
 * between the bench markers of docs/benchmarks.md, or under a title of its own with `--out`.
 */
function render(results) {
  const { args, models, matmul } = results;
  const cpu = args.device === 'cpu';
  const b16 = models.find((m) => m.name === 'vit_b_16');
  const out = [];
  out.push(`## \`npm run bench\` on ${cpu ? 'CPU' : `${args.device}, ${args.dtype}`}`, '');
  out.push('Written by `npm run bench` (`bench/run.js`); rerun it rather than editing by hand. Every number below '
    + `was measured in the one run described here${args.quick ? ', a `--quick` smoke run (fewer repeats, smaller '
      + 'batches)' : ''}. Times are medians over the n timed calls shown, after warm-up calls. The models have `
    + 'random weights: the amount of computation does not depend on the weights\' values.', '');
  const { load } = results;
  // The bench's own threads keep the load average near args.threads; more than one runnable thread beyond them
  // is other work.
  if (load.mean > args.threads + 1) {
    out.push(`**Measured on a shared machine.** The 1-minute load average was ${load.mean.toFixed(1)} on average `
      + `(${load.max.toFixed(1)} at most) on ${os.availableParallelism()} cores while this ran with ${args.threads} `
      + 'threads of its own: other processes took '
      + 'CPU time, so every time here is longer than on a quiet machine and single ratios are noisy (the side-by-side '
      + 'series make the ratios fairer than the absolute times). Rerun on a quiet machine for figures to quote.', '');
  }
  out.push(environmentTable(results), '');

  out.push('### Summary', '');
  out.push(summaryTable(models, matmul, cpu), '');

  out.push('### Throughput and latency by batch size', '');
  out.push('One call of san.pt\'s `segment` (network, classification of the '
    + `${results.classSource === 'ADE-150' ? 'ADE-150' : '150'} classes, post-processing to labels at 640×640) on `
    + '`batch` copies of the image: through `TorchModel.run` (addon), through `batch` concurrent `SanModel.segment()` '
    + 'calls on the PNG file that the dynamic batcher runs as one batch (end to end: read, decode and resize the '
    + 'file, cached text embeddings, network, labels to JS), and through Python (`torch.jit.load` of the same '
    + 'san.pt). Latency is the time of the whole batch; images/s is batch / latency.', '');
  out.push(throughputTable(models), '');

  out.push('### Overhead of `segment()` over the network', '');
  out.push('Batch 1, the same 640×640 PNG file. The network time is one `TorchModel.run` of san.pt\'s `segment` with the '
    + 'tensors `SanModel` would build (made once, beforehand); `forward` is the network alone, without '
    + 'classification and post-processing, its calls interleaved with the other two. Decode is sharp reading, decoding and resizing the file as `segment()` '
    + 'does. The ≤ 1.05 target is for the ViT-B/16 on a CPU, a real network; `tiny`\'s row shows the same overhead '
    + 'next to a far smaller one.', '');
  out.push(overheadTable(models), '');

  out.push('### The addon against Python on the same export', '');
  out.push('Same san.pt, same input tensors (the decoded image and class embeddings are handed to Python as files), same '
    + 'method, device, dtype, intra-op threads and OPENBLAS_NUM_THREADS, `torch.inference_mode()` in Python as in '
    + 'the addon, calls taking turns with the addon\'s. Both sides time a call from host memory to host memory: '
    + 'inputs to the device (floating ones cast to the dtype), the method, outputs back as float32; on CUDA Python '
    + 'synchronises before reading the clock. The addon\'s time also includes handing the tensors to and from JS. '
    + 'Above 1.0 the addon is faster.', '');
  out.push(pythonTable(models), '');

  out.push('### Text encoding', '');
  out.push('Cold: `encodeText(classes)` on a model without a text cache, so every class goes through the text encoder '
    + 'as on a cache miss (classes × the `vild` templates, in chunks of 256 prompts padded to the context length). '
    + 'Cached: the same call on a model whose cache holds them. "Padded to longest" runs the same prompts through '
    + 'text_encoder.pt with each chunk cut after its longest prompt (the same result, the mask being causal): what '
    + '`lib/model.ts` would gain by padding less.', '');
  out.push(textTable(models), '');
  if (b16 && b16.text.classes < 150) {
    out.push(`${b16.label} is measured on the first ${b16.text.classes} classes to keep the run short; the cost `
      + 'per class is what scales.', '');
  }

  out.push('### Achieved FLOP/s', '');
  out.push(`Reference: ${matmul.addon.reps} ${args.dtype} ${matmul.addon.n}×${matmul.addon.n} \`torch.mm\` in one call `
    + 'of a TorchScript probe (bench/make_random_model.py) on the same device and threads: '
    + `**${fmt.rate(matmul.addon.flops / 1e9)} GFLOP/s** through the addon (n=${matmul.addon.repeats}), `
    + `${fmt.rate(matmul.python.flops / 1e9)} GFLOP/s through Python (n=${matmul.python.repeats}).`, '');
  out.push(flopTable(models, matmul), '');
  if (b16?.flops) {
    const byOp = Object.entries(b16.flops.segment.by_op).map(([op, flops]) => `\`${op}\` ${fmt.g(flops)}`).join(', ');
    out.push(`FLOPs of one ${b16.label} \`segment\` by op (GFLOP): ${byOp}; the other ops wrote `
      + `${(b16.flops.segment.other_output_elements / 1e6).toFixed(0)} M output elements (not counted as FLOPs).`, '');
  }

  out.push('### Method', '');
  out.push(...methodNotes(results.classSource, models), '');
  return out.join('\n');
}

function methodNotes(classSource, models) {
  return [
    '* Models: `tiny` is the test model (`test-models/tiny`, seeded random weights; its resize policy brings '
      + 'the 640×640 input to 64×64). `ViT-B/16` is the full SAN ViT-B/16 (CLIP ViT-B/16 with the side adapter) with '
      + 'seeded random weights, written by `bench/make_random_model.py` through the project\'s own '
      + '`models.export.write_model_dir` into `build/bench-models/vit_b_16`, never downloaded.',
    '* Input: `assets/sample-scene.svg` rendered to a 640×640 PNG file (in a temporary folder) with seeded noise '
      + `(±8 per channel, so that it decodes like a photo rather than flat colour). Classes: ${classSource}. `
      + 'For the network and end-to-end rows the class embeddings are seeded random unit vectors, put in the text cache before timing, so that '
      + '`segment()` finds them cached; the text-encoding section times the encoder.',
    '* Order: side by side. For each batch size the addon\'s network call, the `segment()` round and the Python '
      + 'call (bench/python_baseline.py, a child process holding the same san.pt, idle while the addon runs) each '
      + 'make their warm-up calls, then take turns for the timed calls, so that a load that drifts on a shared '
      + 'machine weighs on all three alike. Text encoding and the matmul rate run on their own.',
    ...models.map(({ label, plan }) => {
      const byBatch = Object.entries(plan.repeats).map(([batch, n]) => `${n} at batch ${batch}`).join(', ');
      return `* Repeats, ${label}: ${plan.warmup} warm-up and ${byBatch} timed calls a series; \`segment()\` at `
        + `batch ${plan.e2eBatches.join(', ')}; Python at batch ${plan.pythonBatches.join(', ')} and \`forward\` at 1; `
        + `cold text encoding of ${plan.textClasses} classes, ${plan.textRepeats} timed. \`--warmup\`, \`--repeats\`, `
        + '`--batches` and `--text-classes` override these.';
    }),
    '* FLOPs: `bench/python_baseline.py` runs one call of the method on a float32 CPU copy of the same san.pt under '
      + 'a `TorchDispatchMode` that sees every op LibTorch dispatches and counts 2 × multiply-adds of the '
      + 'matmul-class ops (`mm`, `bmm`, `addmm`, `baddbmm`, `matmul`, `linear`, two-operand `einsum`, convolution) '
      + 'from their shapes. Element-wise ops, softmax, layer norm, interpolation and argmax are not counted. '
      + 'Achieved FLOP/s is that count over the addon\'s median time.',
    ...(models.some((m) => m.name === 'vit_b_16') ? ['* Cross-check of the ViT-B/16 count by hand (24·N·D² + '
      + '4·N²·D a transformer layer): CLIP sees the image at half size, 401 tokens, 9 layers ≈ 56 GFLOP; its last 3 '
      + 'layers with 100 query tokens ≈ 24; the side adapter, 1600 + 100 tokens of width 240, 8 layers ≈ 41; about '
      + '121 GFLOP before the patch embeddings, the decoder and the classifier.'] : []),
    '* Matmul rate: the probe makes two random n×n matrices and multiplies them `reps` times in one call; the rate '
      + 'is 2n³·reps over the time of that call minus the time of a call with no product.',
  ];
}

/**
 * Replaces what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `file` with `markdown`, leaving the
 * rest (other tools' regions) as it is; appends the region when the file lacks it.
 */
function writeRegion(file, name, markdown) {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  const from = text.indexOf(begin);
  const to = text.indexOf(end, from);
  const region = `${begin}\n${markdown.trim()}\n${end}`;
  const updated = from >= 0 && to >= 0
    ? text.slice(0, from) + region + text.slice(to + end.length)
    : `${text.trimEnd()}\n\n${region}\n`;
  fs.writeFileSync(file, updated);
}

module.exports = { machine, nodeSide, render, writeRegion };
