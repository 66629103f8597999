// SPDX-License-Identifier: Apache-2.0
/**
 * The command line of `npm run bench` (bench/run.js), parsed into one plain object. `usage` is what `--help` prints.
 */
'use strict';

const os = require('node:os');

const MODELS = ['tiny', 'vit_b_16'];
const DEVICE_PATTERN = /^(cpu|cuda(:\d+)?)$/;
const DTYPES = ['float32', 'float16', 'bfloat16'];

const usage = `node bench/run.js [flags]       (npm run bench -- [flags])

Measures san-node on this machine: images/s and latency by batch size (addon, segment() end to end, Python on the
same export), segment() over the network alone, text encoding cold and cached, and achieved FLOP/s against the
machine's matmul rate. Without --out it rewrites the bench region of docs/benchmarks.md.

  --device D       cpu, cuda or cuda:N, for the addon and for Python (default cpu)
  --dtype T        float32, or float16/bfloat16 on CUDA (default float32)
  --threads N      LibTorch intra-op threads, addon and Python alike (default: the machine's cores)
  --models LIST    comma-separated, of: ${MODELS.join(', ')} (default both)
  --batches LIST   batch sizes, e.g. 1,2,4,8; batch 1 always runs (default 1,2,4 on CPU, 1,2,4,8,16 on CUDA)
  --warmup N       untimed calls before each timed series (default per model; see defaultPlan in bench/run.js)
  --repeats N      timed calls of every series (default per model and batch size)
  --text-classes N classes for cold text encoding (default 150 for tiny; 10 for vit_b_16 on CPU, 150 on CUDA)
  --quick          fewer repeats, smaller batches (a smoke run of a few minutes)
  --budget-s S     skip the batch sizes (above 1) predicted to end the run after S seconds (default 600)
  --wait-idle S    first wait up to S seconds for the 1-minute load average to fall below 1 (default 0)
  --only cpu       only the CPU comparison (float32 and bfloat16 segment(), page faults and text encoding against
                   the eager models/san), which a CPU float32 run also ends with; it rewrites the cpu region
  --out FILE       write the report to FILE (a whole Markdown page) instead of docs/benchmarks.md; '-' prints only
  --help           this text
`;

function parseList(flag, text, check) {
  const items = String(text).split(',').map((item) => item.trim()).filter(Boolean);
  if (items.length === 0) throw new RangeError(`Expected a comma-separated list for ${flag}, got '${text}'`);
  return items.map((item) => check(item));
}

function positiveInteger(flag, text, min = 1) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`Expected an integer of at least ${min} for ${flag}, got '${text}'`);
  return n;
}

/** Parses `argv` (without node and the script); throws a RangeError that names the flag on bad input. */
function parseArgs(argv) {
  const args = {
    device: 'cpu', dtype: 'float32', threads: os.availableParallelism(), models: [...MODELS], batches: undefined,
    warmup: undefined, repeats: undefined, textClasses: undefined, quick: false, budgetS: 600, waitIdleS: 0,
    out: undefined, only: undefined, help: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const at = argv[i].indexOf('=');
    const flag = at > 0 ? argv[i].slice(0, at) : argv[i];
    const value = () => {
      if (at > 0) return argv[i].slice(at + 1);
      i += 1;
      if (i >= argv.length) throw new RangeError(`Expected a value after ${flag}`);
      return argv[i];
    };
    switch (flag) {
      case '--device': args.device = value(); break;
      case '--dtype': args.dtype = value(); break;
      case '--threads': args.threads = positiveInteger(flag, value()); break;
      case '--models': args.models = parseList(flag, value(), (name) => {
        if (!MODELS.includes(name)) throw new RangeError(`Unknown model '${name}' for --models; expected some of: ${MODELS.join(', ')}`);
        return name;
      }); break;
      case '--batches': args.batches = [...new Set(parseList(flag, value(), (b) => positiveInteger(flag, b)))]
        .sort((a, b) => a - b); break;
      case '--warmup': args.warmup = positiveInteger(flag, value(), 0); break;
      case '--repeats': args.repeats = positiveInteger(flag, value()); break;
      case '--text-classes': args.textClasses = positiveInteger(flag, value()); break;
      case '--quick': args.quick = true; break;
      case '--budget-s': args.budgetS = positiveInteger(flag, value(), 0); break;
      case '--wait-idle': args.waitIdleS = positiveInteger(flag, value(), 0); break;
      case '--out': args.out = value(); break;
      case '--only': args.only = value();
        if (args.only !== 'cpu') throw new RangeError(`Expected cpu for --only, got '${args.only}'`);
        break;
      case '--help': case '-h': args.help = true; break;
      default: throw new RangeError(`Unknown flag '${argv[i]}'; \`node bench/run.js --help\` lists the flags`);
    }
  }
  if (!DEVICE_PATTERN.test(args.device)) throw new RangeError(`Expected cpu, cuda or cuda:N for --device, got '${args.device}'`);
  if (!DTYPES.includes(args.dtype)) throw new RangeError(`Expected one of ${DTYPES.join(', ')} for --dtype, got '${args.dtype}'`);
  if (args.dtype === 'float16' && args.device === 'cpu') {
    throw new RangeError('--dtype float16 needs --device cuda: the CPU runs float32, and bfloat16 where it has AVX512-BF16 or AMX');
  }
  if (args.only === 'cpu' && (args.device !== 'cpu' || args.dtype !== 'float32')) {
    throw new RangeError('--only cpu compares float32 and bfloat16 on the CPU: leave --device and --dtype out');
  }
  return args;
}

module.exports = { parseArgs, usage };
