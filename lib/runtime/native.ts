// SPDX-License-Identifier: Apache-2.0
/**
 * Finds and loads the native addon, explains any failure, and declares what it exports.
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isNativeError } from 'node:util/types';
import { ErrorCode, SanError } from '../errors';
import { PACKAGE_ROOT } from '../package-root';
import type { Argument, ModelDtype, Result } from './values';
import type { CpuAllocatorStats } from './cpu-allocator';

/** Options of `new NativeModel()`, complete and checked by TorchModel. @ignore */
export interface NativeModelOptions {
  device: string;
  dtype: ModelDtype;
  /** Modules left in float32; none when absent. */
  float32Modules?: string[];
  threads: number;
  queueLimit: number;
}

/** What `NativeModel.load()` resolves with. @ignore */
export interface NativeLoadResult {
  /** The device in use, resolved: `'cpu'` or `'cuda:N'`. */
  device: string;
  dtype: ModelDtype;
  /** Every loaded module's methods, by module name. */
  methods: Record<string, string[]>;
}

/** @ignore */
export interface NativeRunOptions {
  float32Outputs: boolean;
  copyOutputs: boolean;
  /** true when absent. */
  castInputs?: boolean;
}

/** The native model (cpp/model_wrap.h). Every method returns a Promise and never throws. @ignore */
export interface NativeModel {
  load(files: Record<string, string>): Promise<NativeLoadResult>;
  run(module: string, method: string, args: readonly Argument[], options: NativeRunOptions): Promise<Result>;
  dispose(): Promise<void>;
  /** As requested until load() settles, then as resolved. */
  readonly device: string;
  readonly dtype: string;
  /** Calls submitted and not yet settled. */
  readonly queueDepth: number;
  readonly disposed: boolean;
}

/** The LibTorch the addon runs on. */
export interface Versions {
  /** LibTorch version, e.g. `'1.13.0'`. */
  libtorch: string;
  /** Whether the addon was linked against a CPU-only or a CUDA LibTorch. */
  build: 'cpu' | 'cuda';
  /** CUDA runtime version LibTorch was built with, when its CUDA library is loaded; else null. */
  cuda: string | null;
  /** Whether LibTorch and the addon use libstdc++'s C++11 ABI. */
  cxx11Abi: boolean;
  /** Node-API version the addon targets. */
  napi: number;
  /** The tool that built the addon (compiled in by binding.gyp): `'node-gyp'`, the package's one builder. */
  builder: string;
}

/** One GPU's memory as LibTorch's caching allocator counts it, or why it cannot be read. */
export type CudaMemory =
  | {
    /** Bytes that live tensors hold now. */
    allocatedBytes: number;
    /** Bytes the allocator holds from the driver: tensors plus its cache for reuse (what nvidia-smi shows, less
     * the CUDA context). */
    reservedBytes: number;
    /** The most `allocatedBytes` has been since the process started. */
    peakAllocatedBytes: number;
  }
  | {
    /** Why there is no figure: a CPU-only LibTorch, no such GPU, or a build that cannot read it. */
    unavailable: string;
  };

/** Everything the addon exports. @ignore */
export interface Binding {
  NativeModel: new (options: NativeModelOptions) => NativeModel;
  versions(): Versions;
  /** Whether LibTorch sees a CUDA device (synchronous; the first call initialises the driver). */
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  /** GPU `index`'s memory, from LibTorch's caching allocator (synchronous, cheap). */
  cudaMemory(index: number): CudaMemory;
  /** The caching CPU allocator's counters and the process's intra-op thread budget (see cpu-allocator.ts). */
  cpuAllocator(): CpuAllocatorStats;
  setCpuCacheLimit(bytes: number): void;
  /** null when dtype bfloat16 runs on this CPU (AVX512-BF16 or AMX-BF16), else what the CPU lacks. */
  cpuBfloat16(): string | null;
  /** How a raw LibTorch message reaches JS: its first meaningful line and the code it maps to. For tests. */
  _describeError(message: string): { code: string; message: string };
}

/** The package folder (the parent of lib/ and dist/). */
const packageRoot = PACKAGE_ROOT;
/** node-gyp-build's resolver: the package's build/Release/*.node, else its prebuilds/<platform>-<arch>/ match. */
const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };

/**
 * Where the addon is loaded from: `SAN_ADDON` (relative to the package, or absolute) when set; else what
 * node-gyp-build picks, a binary built on this machine (build/Release, by scripts/install.js) before the prebuilt one
 * shipped in prebuilds/linux-x64/; else where a build would put it, so that the load failure says it is not built.
 */
export function addonPath(): string {
  if (process.env.SAN_ADDON) return path.resolve(packageRoot, process.env.SAN_ADDON);
  try {
    return nodeGypBuild.path(packageRoot);
  } catch {
    return path.join(packageRoot, 'build', 'Release', 'san_node.node');
  }
}

let loaded: Binding | undefined;

/** The addon, loaded on first use. @throws SanError ERR_SAN_ADDON_LOAD explaining what failed and how to fix it. */
export function binding(): Binding {
  loaded ??= loadAddon(addonPath());
  return loaded;
}

/**
 * Loads the addon at `file`. OpenBLAS and libgomp (which LibTorch loads) read their environment once, when they are
 * loaded; unless the user set them:
 * - OPENBLAS_NUM_THREADS is set to 1 first, because OpenBLAS's own threads fight LibTorch's OpenMP pool (1.27x faster
 *   measured on the SAN model);
 * - OMP_WAIT_POLICY is set to PASSIVE: libgomp's threads otherwise keep spinning after each call, on the cores that
 *   the process's own threads (JS, sharp's decoding, the next batch's staging) need between calls. `san-seg serve` on
 *   the tiny model answered 175 requests/s instead of 102 (p99 77 ms instead of 117); ViT-B/16's `forward` stayed
 *   within run-to-run noise (docs/install.md).
 * @throws SanError ERR_SAN_ADDON_LOAD
 */
export function loadAddon(file: string): Binding {
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  try {
    return require(file) as Binding;
  } catch (error) {
    throw new SanError(ErrorCode.ADDON_LOAD, explainLoadFailure(file, error));
  }
}

interface LibTorchLayout {
  libDir: string;
  version?: string;
  error?: string;
}

function locateLibTorch(): LibTorchLayout | undefined {
  try {
    const script = require(path.join(packageRoot, 'scripts', 'libtorch.js')) as { locate(): LibTorchLayout };
    return script.locate();
  } catch {
    return undefined;
  }
}

/** The page every hint links to, as a path into the installed package (which ships docs/). */
const DOCS = path.join(packageRoot, 'docs', 'install.md');
/** What rebuilds the addon in an app: npm runs the package's install script (scripts/install.js) again. */
const REBUILD = 'npm rebuild san-node --foreground-scripts';
/** The same, but never the prebuilt binary: for the failures that a binary built elsewhere can cause. */
const REBUILD_FROM_SOURCE = `SAN_BUILD_FROM_SOURCE=1 ${REBUILD}`;
const IN_CHECKOUT = '(in a git checkout of san-node: npm run build:addon)';
const CUDA_LIBRARIES = ['cuda', 'cudart', 'cublas\\w*', 'cudnn\\w*', 'nvrtc\\w*', 'nvToolsExt', 'cufft', 'curand',
  'cusparse', 'cusolver', 'nccl', 'torch_cuda', 'c10_cuda'].join('|');
const CUDA_LIBRARY = new RegExp(`lib(${CUDA_LIBRARIES})[.\\w-]*\\.so`);

/** What failed, on which platform, the causes recognised in the error, and the commands that fix each. @ignore */
export function explainLoadFailure(file: string, error: unknown): string {
  const message = isNativeError(error) ? error.message : String(error);
  const libtorch = locateLibTorch();
  const libDir = libtorch?.libDir ?? '/path/to/libtorch/lib';
  const hints: string[] = [];
  const symbolVersion = /(GLIBCXX|CXXABI)_[\d.]+/.exec(message);

  if (!fs.existsSync(file)) {
    hints.push('The addon is not built, and no prebuilt one fits (was the install run with --ignore-scripts?). ' +
      `Run the package's install script, which uses the prebuilt addon or builds it with node-gyp: ${REBUILD} ` +
      `${IN_CHECKOUT}. ${DOCS}#building-from-source`);
  } else if (/lib(torch|torch_cpu|c10)\.so[^:]*: cannot open shared object file/.test(message)) {
    hints.push(`LibTorch's libraries are not on the library path. Install Debian's: apt-get install libtorch-dev; ` +
      `or, for a LibTorch unpacked elsewhere: export LD_LIBRARY_PATH=${libDir}:$LD_LIBRARY_PATH. ` +
      `${DOCS}#libtorch-libraries-not-found`);
  } else if (CUDA_LIBRARY.test(message)) {
    hints.push('A CUDA library of the CUDA LibTorch is missing. Install the CUDA runtime it was built for, or put ' +
      'its lib folder on LD_LIBRARY_PATH; or rebuild against a CPU-only LibTorch: unset LIBTORCH_DIR && ' +
      `${REBUILD_FROM_SOURCE}. ${DOCS}#cuda-libraries-not-found`);
  } else if (symbolVersion) {
    hints.push(`This system's libstdc++ lacks ${symbolVersion[0]}, which the addon or LibTorch was built with. ` +
      `Rebuild on this machine: ${REBUILD_FROM_SOURCE}. ${DOCS}#glibcxx-or-cxxabi-not-found`);
  } else if (/undefined symbol/.test(message)) {
    hints.push('The addon was built against another LibTorch than the one being loaded' +
      `${libtorch?.version ? ` (${libtorch.version} from ${libDir})` : ''}. Rebuild: ${REBUILD_FROM_SOURCE}. ` +
      `${DOCS}#undefined-symbol`);
  } else {
    hints.push(`Rebuild the addon: ${REBUILD_FROM_SOURCE} ${IN_CHECKOUT}. ${DOCS}#building-from-source`);
  }
  if (libtorch?.error) {
    hints.push(`${libtorch.error}. Set LIBTORCH_DIR or Torch_DIR, or unset both and apt-get install libtorch-dev. ` +
      `${DOCS}#libtorch`);
  }

  return [
    `Could not load the san-node native addon on ${process.platform}-${process.arch} ` +
      `(Node ${process.version}, Node-API ${process.versions.napi}).`,
    `${file}: ${message.split('\n')[0]}`,
    'Possible solutions:',
    ...hints.map((hint) => `- ${hint}`),
    `See ${DOCS} for the prerequisites and each of these errors.`,
  ].join('\n');
}
