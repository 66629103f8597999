// SPDX-License-Identifier: Apache-2.0
// The device and dtype the model tests run on, and how far their results may land from the float32 CPU fixtures.
//
//   SAN_TEST_DEVICE   cpu (default), cuda or cuda:N
//   SAN_TEST_DTYPE    float32 (default), float16 or bfloat16: what SanModel tests and the tiny-export parity cases
//                     compute in; tests of the runtime itself (argument conversion, type round trips) stay in
//                     float32, since a float16 model casts every floating input by design.
//
// scripts/device/run-cuda-suite.sh runs the whole suite with cuda/float32, then cuda/float16.
import type { ModelDtype } from '../../lib/runtime/torch-model';
import type { Tolerance } from '../native/support';

const DEVICES = /^(cpu|cuda(:\d{1,2})?)$/;
const DTYPES: readonly ModelDtype[] = ['float32', 'float16', 'bfloat16'];

function readEnv(): { device: string; dtype: ModelDtype } {
  const device = process.env.SAN_TEST_DEVICE || 'cpu';
  const dtype = (process.env.SAN_TEST_DTYPE || 'float32') as ModelDtype;
  if (!DEVICES.test(device)) throw new Error(`SAN_TEST_DEVICE must be cpu, cuda or cuda:N, not '${device}'`);
  if (!DTYPES.includes(dtype)) throw new Error(`SAN_TEST_DTYPE must be one of ${DTYPES.join(', ')}, not '${dtype}'`);
  if (dtype !== 'float32' && device === 'cpu') throw new Error(`SAN_TEST_DTYPE=${dtype} needs SAN_TEST_DEVICE=cuda`);
  return { device, dtype };
}

export const { device: testDevice, dtype: testDtype } = readEnv();
export const onCuda = testDevice !== 'cpu';
/** The device name a loaded model reports: 'cuda' resolves to 'cuda:0'. */
export const resolvedTestDevice = testDevice === 'cuda' ? 'cuda:0' : testDevice;

/** Load options for a model under test: the test device, one CPU thread, and the test dtype unless overridden. */
export function testRuntime(dtype: ModelDtype = testDtype): { device: string; dtype: ModelDtype; threads: number } {
  return { device: testDevice, dtype, threads: 1 };
}

/**
 * How far a float result may be from the float32 fixture that Python wrote on the CPU, for a computation done in
 * `dtype` on the test device. The CUDA figures are the worst seen on an H100 with margin (docs/benchmarks.md):
 * float32 there runs convolutions in TF32, as PyTorch does by default; float16 keeps an 11-bit mantissa, bfloat16
 * an 8-bit one.
 */
export function fixtureTolerance(dtype: ModelDtype = testDtype): Tolerance {
  if (!onCuda) return { atol: 1e-5, rtol: 0 };
  switch (dtype) {
    case 'float16': return { atol: 2e-2, rtol: 2e-2 };
    case 'bfloat16': return { atol: 8e-2, rtol: 8e-2 };
    default: return { atol: 1e-3, rtol: 1e-3 };
  }
}

/** How close two classes' scores must be for a label to pick either: only exact ties on the CPU. */
export function labelTolerance(dtype: ModelDtype = testDtype): Tolerance {
  return onCuda ? fixtureTolerance(dtype) : { atol: 0, rtol: 0 };
}
