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
#     subset    the jest files of the Hopper work on CUDA in bfloat16: staging, the executor's order and queue, the
#               tiny export's cases, two batches in flight, batching
#     attention models/tests/test_attention.py with this PyTorch: scaled_dot_product_attention (picked on >= 2.0)
#               against the written-out path on CUDA per dtype, masked cases through fused kernels only
#     probe-VARIANT   scripts/device/network_probe.py: the network at batch 16 in bfloat16, 640x640, in eager
#               models/san, TorchScript, TorchScript replayed from a CUDA graph; $OUT/probe-VARIANT.json
#     aoti-VARIANT    the same probe's AOTInductor mode alone (compiles for minutes): $OUT/aoti-VARIANT.json
#     e2e-VARIANT     bench/e2e.js on a random-weight VARIANT (vit_b_16, vit_l_14_336): segment() from JPEG and PNG
#               bytes, 32 at a time, batches of 16, against decoded images; GPU memory; $OUT/e2e-VARIANT.json
#     hopper    the prepared plan of the Hopper issue (docs/gpu.md), within H200_BUDGET_S seconds (default 480):
#               setup subset probe-vit_b_16 e2e-vit_b_16 attention bench-bfloat16 (B/16, batches 1 and 16), then
#               e2e-vit_l_14_336 probe-vit_l_14_336 parity aoti-vit_b_16, each only while the budget has room for
#               it and killed when it runs out; then scripts/device/summarize.js writes summary.md, and at most 8
#               files land in $OUT (what the device tool brings back): summary.md, steps.log, the JSON reports,
#               everything in results.tar.gz
#
# DEVICE=cpu runs the same steps on the CPU in float32 with the tiny model, against the addon and dist/ built here
# (setup then only records versions): the dry run that keeps this script working where no GPU is lent, e.g.
#   DEVICE=cpu H200_BUDGET_S=900 OUT=/tmp/dry bash scripts/device/run-cuda-suite.sh hopper
#
# Logs and reports go to $OUT (default out/device). Every step runs even when an earlier test step failed; the exit
# status is the first failure's. See docs/benchmarks.md (GPU section) and docs/gpu.md for what it measured.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-out/device}
mkdir -p "$OUT"
status=0
DEVICE=${DEVICE:-cuda}
# What the Hopper steps run: bfloat16 on the GPU; the tiny model in float32 on the CPU (the dry run).
if [ "$DEVICE" = cpu ]; then DTYPE=float32; else DTYPE=${DTYPE:-bfloat16}; fi
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
  if [ "$DEVICE" = cpu ]; then
    { echo "node $(node --version)"; "$SAN_PYTHON" -c 'import torch; print("torch", torch.__version__)'; nproc; } |
      tee "$OUT/versions.txt"
    return
  fi
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
  run "bench-$1" node bench/run.js --device "$DEVICE" --dtype "$1" ${BENCH_ARGS:-} --out "$OUT/bench-$1.md"
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

subset() {
  SAN_TEST_DEVICE=$DEVICE SAN_TEST_DTYPE=$DTYPE run "jest-subset-$DTYPE" jest --maxWorkers=4 test/native/staging.test.ts \
    test/native/concurrency.test.ts test/native/cases.test.ts test/api/pipelining.test.ts test/api/batching.test.ts
}

attention() {
  run attention "$SAN_PYTHON" -m pytest -q -rs -p no:cacheprovider models/tests/test_attention.py
}

# random_model VARIANT: the folder of a seeded random-weight VARIANT (bench/make_random_model.py), on stdout.
random_model() {
  if [ "$DEVICE" = cpu ]; then echo "$SAN_TEST_MODELS/tiny"; return; fi
  "$SAN_PYTHON" bench/make_random_model.py --out build/bench-models --variant "$1" >/dev/null || return 1
  echo "build/bench-models/$1"
}

# probe VARIANT [MODES]: the network alone, eager against TorchScript (and a CUDA graph, AOTInductor) in one process.
probe() {
  local variant=$1 modes=${2:-eager,torchscript,cuda_graph} name=${3:-probe-$1}
  if [ "$DEVICE" = cpu ]; then
    run "$name" "$SAN_PYTHON" scripts/device/network_probe.py --variant tiny --batch 2 --side 128 --device cpu \
      --dtype float32 --modes "$modes" --warmup 2 --repeats 3 --out "$OUT/$name.json"
  else
    run "$name" "$SAN_PYTHON" scripts/device/network_probe.py --variant "$variant" --batch 16 --side 640 \
      --device cuda --dtype "$DTYPE" --modes "$modes" --out "$OUT/$name.json"
  fi
}

# e2e VARIANT: bench/e2e.js, segment() from JPEG and PNG bytes with every host core decoding (ViT-L: fewer images).
e2e() {
  local dir images=256
  [ "$1" = vit_b_16 ] || images=128
  dir=$(random_model "$1") || { say "e2e-$1: no model folder"; [ "$status" != 0 ] || status=1; return 1; }
  if [ "$DEVICE" = cpu ]; then
    run "e2e-$1" node bench/e2e.js --model "$dir" --device cpu --images 16 --concurrency 8 --batch 4 --classes 20 \
      --out "$OUT/e2e-$1.json"
  else
    run "e2e-$1" node bench/e2e.js --model "$dir" --device cuda --dtype "$DTYPE" --images "$images" \
      --concurrency 32 --batch 16 --classes 150 --out "$OUT/e2e-$1.json"
  fi
}

# hopper: the Hopper issue's plan, most important first. Each step runs as a child of this script, killed when the
# budget runs out, and starts only while the budget leaves it the time it needs; the results are packed either way.
hopper() {
  local results=$OUT budget=${H200_BUDGET_S:-480} started=$SECONDS
  OUT=$(mktemp -d)
  export OUT DEVICE SAN_PYTHON
  left() { echo $((budget - (SECONDS - started))); }
  # step NEED NAME [ENV=VALUE...]: `run-cuda-suite.sh NAME` when NEED seconds are left, for at most what is left.
  step() {
    local need=$1 name=$2; shift 2
    if [ "$(left)" -lt "$need" ]; then
      say "skipped (budget: $(left) s left, $need s wanted): $name"
      return 1
    fi
    env "$@" timeout --kill-after=5 "$(left)" bash "${BASH_SOURCE[0]}" "$name"
    local code=$?
    [ "$code" = 0 ] || { say "$name: ended with $code$([ "$code" = 124 ] && echo ' (out of budget)')"; [ "$status" != 0 ] || status=$code; }
    return "$code"
  }
  if step 0 setup; then
    step 60 subset
    step 60 probe-vit_b_16
    step 60 e2e-vit_b_16
    step 20 attention
    if [ "$DEVICE" = cpu ]; then
      step 60 bench-"$DTYPE" BENCH_ARGS="--models tiny --quick --budget-s 120"
    else
      step 100 bench-"$DTYPE" BENCH_ARGS="--models vit_b_16 --batches 1,16 --warmup 3 --repeats 10 --budget-s 80"
      step 150 e2e-vit_l_14_336
      step 90 probe-vit_l_14_336
      step 60 parity
      step 150 aoti-vit_b_16
    fi
  fi
  run summarize node scripts/device/summarize.js "$OUT" "$OUT/summary.md"
  cp "$OUT/summary.md" "$OUT/steps.log" "$results/" 2>/dev/null
  for file in probe-vit_b_16.json e2e-vit_b_16.json e2e-vit_l_14_336.json "bench-$DTYPE.md"; do
    [ -f "$OUT/$file" ] && cp "$OUT/$file" "$results/"
  done
  tar -czf "$results/results.tar.gz" -C "$OUT" .
  rm -rf "$OUT"
  OUT=$results
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
    subset) subset ;;
    attention) attention ;;
    probe-*) probe "${step#probe-}" ;;
    aoti-*) probe "${step#aoti-}" eager,aoti "$step" ;;
    e2e-*) e2e "${step#e2e-}" ;;
    hopper) hopper ;;
    *) say "unknown step '$step' (setup, test, parity, bench-DTYPE, peak, subset, attention, probe-V, aoti-V, e2e-V,'\
' hopper)"; exit 2 ;;
  esac
done
say "done, exit $status"
exit "$status"
