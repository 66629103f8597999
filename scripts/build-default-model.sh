#!/usr/bin/env bash
# Rebuilds the default model of `npm run demo` from its seed (models/procedural/build_default.py):
#
#   bash scripts/build-default-model.sh --seed 0 --out models/default [--work DIR] [--device cuda]
#
# Loads Debian's OpenMP build of OpenBLAS (libopenblas0-openmp, installed by scripts/setup.sh) in place of the
# pthread one the addon and tests use: its threads are LibTorch's own OpenMP pool, so the build's two threads
# work together instead of fighting (the pthread build, held to one thread by env.sh, gains 1.17x from a second
# PyTorch thread; this one 1.4x on SAN steps and 1.7x on CLIP steps).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
OPENMP_BLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp
if [ ! -e "$OPENMP_BLAS/libopenblas.so.0" ]; then
  echo "missing $OPENMP_BLAS: run bash scripts/setup.sh (it installs libopenblas0-openmp)" >&2
  exit 1
fi
unset OPENBLAS_NUM_THREADS  # OpenMP's pool sizes itself from torch.set_num_threads
export LD_LIBRARY_PATH="$OPENMP_BLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$SAN_PYTHON" -m models.procedural.build_default "$@"
