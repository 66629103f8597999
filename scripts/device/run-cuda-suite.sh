#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds san-node against the CUDA LibTorch of a GPU machine's own PyTorch and runs the test suite and benchmarks on
# CUDA there. Made for a machine with no network and no Node: everything npm would fetch travels in one tarball made
# beforehand by scripts/device/pack-runtime.sh (.device/runtime.tar.xz: a Node 20 binary and node_modules).
#
#   bash scripts/device/run-cuda-suite.sh [STEP...]     STEPs, in the order given (default: setup test):
#     setup     unpack the runtime, build the addon (node-gyp through scripts/install.js, LIBTORCH_DIR from
#               python3's torch), dist/, test models
#     test      jest, all of it, with SAN_TEST_DEVICE=cuda SAN_TEST_DTYPE=float32; then the tests that honour the
#               dtype (test/native, test/api) again with float16
#     parity    scripts/device/parity.js: how far float16/bfloat16 land from float32 (tiny fixtures, ViT-B/16)
#     bench-float32, bench-float16, bench-bfloat16
#               npm run bench on cuda in that dtype (BENCH_ARGS: more flags), the report in $OUT/bench-DTYPE.md
#     peak      the GPU's bf16 matmul rate through PyTorch (8192³, median of 20 after warm-up), to $OUT/peak.json
#
# Logs and reports go to $OUT (default out/device). Every step runs even when an earlier test step failed; the exit
# status is the first failure's. See docs/benchmarks.md (GPU section) for what it measured.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-out/device}
mkdir -p "$OUT"
status=0
export PATH="$PWD/node-bin/bin:$PWD/node_modules/.bin:$PATH"  # no npm there: tools run from node_modules/.bin
export SAN_PYTHON=${SAN_PYTHON:-$(command -v python3)}
# The PyTorch wheel is a LibTorch: headers, libraries and share/cmake/Torch (docs/install.md#cuda).
export LIBTORCH_DIR=${LIBTORCH_DIR:-$("$SAN_PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')}
source scripts/env.sh

say() { printf '[device %s] %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/steps.log"; }
# run NAME CMD...: runs CMD with its output in $OUT/NAME.log (and on stdout), and records a failure.
run() {
  local name=$1; shift
  say "$name: $*"
  local started=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.log"
  local code=${PIPESTATUS[0]}
  say "$name: exit $code after $((SECONDS - started)) s"
  [ "$code" = 0 ] || { [ "$status" != 0 ] || status=$code; }
  return "$code"
}

setup() {
  [ -f .device/runtime.tar.xz ] || { say "no .device/runtime.tar.xz: run scripts/device/pack-runtime.sh"; exit 1; }
  tar -xJf .device/runtime.tar.xz
  {
    echo "node $(node --version)"
    "$SAN_PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
torch.backends.cudnn.version(), torch.cuda.get_device_name(0))'
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    nproc; uname -r
  } | tee "$OUT/versions.txt"
  run build-addon node scripts/install.js --build-from-source || exit 1
  node -p "JSON.stringify(require('./build/Release/san_node.node').versions())" | tee -a "$OUT/versions.txt"
  run build-ts tsc -p tsconfig.json || exit 1
  rm -rf "$SAN_TEST_MODELS/tiny" "$SAN_TEST_MODELS/native"
  run export-tiny "$SAN_PYTHON" -m models.make_tiny --out "$SAN_TEST_MODELS/tiny" --seed 0 || exit 1
  run export-native "$SAN_PYTHON" test/native/make_modules.py --out "$SAN_TEST_MODELS/native" || exit 1
}

# jest_on DTYPE NAME [jest args]: the suite on CUDA in DTYPE, summary and failures in $OUT/NAME.log.
jest_on() {
  local dtype=$1 name=$2; shift 2
  SAN_TEST_DEVICE=cuda SAN_TEST_DTYPE=$dtype run "$name" jest --maxWorkers=4 "$@"
}

test_suite() {
  jest_on float32 jest-cuda-float32
  jest_on float16 jest-cuda-float16 test/native test/api
}

parity() {
  run parity node scripts/device/parity.js "$OUT/parity.json"
}

# bench DTYPE: npm run bench on cuda (no npm there: its script, bench/run.js), the report in $OUT/bench-DTYPE.md.
# BENCH_ARGS adds flags, e.g. '--budget-s 200 --models vit_b_16'.
bench() {
  run "bench-$1" node bench/run.js --device cuda --dtype "$1" ${BENCH_ARGS:-} --out "$OUT/bench-$1.md"
}

peak() {
  run peak "$SAN_PYTHON" - "$OUT/peak.json" <<'PY'
import json, sys, torch
n, reps = 8192, 20
a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
for _ in range(5): a @ b
times = []
for _ in range(reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); a @ b; end.record(); end.synchronize()
    times.append(start.elapsed_time(end) / 1e3)
median = sorted(times)[reps // 2]
peak = {"n": n, "dtype": "bfloat16", "median_s": median, "tflops": 2 * n ** 3 / median / 1e12,
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
json.dump(peak, open(sys.argv[1], "w"), indent=2)
print(json.dumps(peak))
PY
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(setup test)
for step in "${steps[@]}"; do
  case $step in
    setup) setup ;;
    test) test_suite ;;
    parity) parity ;;
    bench-*) bench "${step#bench-}" ;;
    peak) peak ;;
    *) say "unknown step '$step' (setup, test, parity, bench-DTYPE, peak)"; exit 2 ;;
  esac
done
say "done, exit $status"
exit "$status"
