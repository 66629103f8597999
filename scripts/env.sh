# Paths, settings and helpers shared by the shell scripts; sourced, never run. test/helpers/paths.ts reads the same
# variables with the same defaults for the jest side.
export SAN_PYTHON=${SAN_PYTHON:-/usr/bin/python3}            # Debian's Python, the one with python3-torch
export SAN_ADDON=${SAN_ADDON:-build/Release/san_node.node}    # what node-gyp builds (scripts/install.js)
# Seeded exports made by scripts/setup.sh: outside build/, which node-gyp wipes on a rebuild; ignored by git.
export SAN_TEST_MODELS=${SAN_TEST_MODELS:-test-models}
# OpenBLAS's own threads fight LibTorch's OpenMP pool; one BLAS thread per LibTorch thread is faster.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

# stale TARGET SOURCE... : true when TARGET is missing or any SOURCE file (searched recursively) is newer.
stale() {
  local target=$1; shift
  [ -e "$target" ] || return 0
  local newer
  newer=$(find "$@" -type f -newer "$target" -not -path '*/__pycache__/*' -print -quit 2>/dev/null)
  [ -n "$newer" ]
}
