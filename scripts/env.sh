# Paths and settings shared by the shell scripts; sourced, never run. test/helpers/paths.ts reads the same
# variables with the same defaults for the jest side.
export SAN_PYTHON=${SAN_PYTHON:-/usr/bin/python3}            # Debian's Python, the one with python3-torch
export SAN_ADDON=${SAN_ADDON:-build/Release/san_node.node}    # what cmake-js builds
export SAN_TEST_MODELS=${SAN_TEST_MODELS:-build/test-models}  # seeded exports made by scripts/setup.sh
# OpenBLAS's own threads fight LibTorch's OpenMP pool; one BLAS thread per LibTorch thread is faster.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
