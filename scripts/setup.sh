#!/usr/bin/env bash
# The one set-up behind `npm test`, `npm run demo` and CI. It installs or rebuilds only what is missing or older
# than its sources, so a second run with everything in place takes a second or two.
#
#   bash scripts/setup.sh            # everything
#   SAN_SKIP_APT=1 bash scripts/…    # never call apt-get (report missing packages instead)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh

say() { printf '[setup] %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------------------------------------------
# g++, make: node-gyp's build (node-gyp itself comes with npm and runs gyp on python3). libtorch-dev: LibTorch 1.13
# headers and libraries the addon links against. python3-torch: the exporter and the Python tests (run by
# /usr/bin/python3). libopenblas0-pthread: without it Debian's reference BLAS makes every matrix product ~30x slower.
# libopenblas0-openmp: the OpenBLAS scripts/build-default-model.sh trains with. redis-server: the real Redis the
# worker-fleet tests (test/queue/) start on a loopback port.
APT_PACKAGES=(g++ make libtorch-dev python3-torch python3-pytest python3-regex
  libopenblas0-pthread libopenblas0-openmp python3-scipy python3-pil redis-server)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || [ -n "${SAN_SKIP_APT:-}" ]; then
    say "missing Debian packages: ${missing[*]}"
    say "install them as root: apt-get install --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# OpenBLAS must be the BLAS that LibTorch and NumPy actually load, not merely installed.
for lib in libblas.so.3 liblapack.so.3; do
  alt="$lib-$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
  want=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-pthread | head -n 1 || true)
  have=$(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p')
  if [ -n "$want" ] && [ "$want" != "$have" ]; then
    if [ "$(id -u)" = 0 ]; then
      say "making OpenBLAS the active $lib"
      update-alternatives --set "$alt" "$want" >/dev/null
    else
      say "warning: $lib is $have, not OpenBLAS; as root: update-alternatives --set $alt $want"
    fi
  fi
done

# --- npm packages -----------------------------------------------------------------------------------------------
if stale node_modules/.package-lock.json package-lock.json; then
  say "npm ci"
  npm ci --no-audit --no-fund
fi

# --- native addon and dist/ ----------------------------------------------------------------------------------
# The addon is built by node-gyp through scripts/install.js, the package's own install script (which `npm ci` also
# runs); test/native/smoke.test.ts asserts that the binary the tests load came from it.
bash scripts/build.sh

# --- test models ------------------------------------------------------------------------------------------------
# Seeded random exports made by the project's own exporter; tests and the demo load them.
if [ -f models/make_tiny.py ] && stale "$SAN_TEST_MODELS/tiny/manifest.json" models; then
  say "exporting the tiny test model"
  rm -rf "$SAN_TEST_MODELS/tiny"
  "$SAN_PYTHON" -m models.make_tiny --out "$SAN_TEST_MODELS/tiny" --seed 0
fi
if [ -f test/native/make_modules.py ] && stale "$SAN_TEST_MODELS/native/cases.json" test/native/make_modules.py; then
  say "exporting the native test modules"
  rm -rf "$SAN_TEST_MODELS/native"
  "$SAN_PYTHON" test/native/make_modules.py --out "$SAN_TEST_MODELS/native"
fi
