#!/usr/bin/env bash
# Installs the dependencies, builds libblip with its tools, tests and benchmarks, runs every test,
# and checks that an installed libblip works from another CMake project (find_package(blip)).
# Usage: scripts/test.sh            (BUILD_DIR=build by default; BLIP_FIXTURES_DIR to point at fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

bash scripts/install_deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$JOBS"
# Every test must pass under the BLAS kernels the tools run with. The tools re-execute themselves
# with OPENBLAS_CORETYPE set to the CPU's best OpenBLAS core when OpenBLAS picked generic kernels
# (src/core/blas_kernels.cpp); the test binaries do not, so give them the value the tools choose,
# as `blip_convert --blas-info` reports it. A value the user set is kept, as the tools keep it.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -x "$BUILD_DIR/tools/blip_convert" ]; then
  chosen=$("$BUILD_DIR/tools/blip_convert" --blas-info | sed -n 's/^openblas core: .*(OPENBLAS_CORETYPE=\([^,)]*\).*/\1/p')
  if [ -n "$chosen" ]; then export OPENBLAS_CORETYPE="$chosen"; fi
fi
echo "tests run with OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, as in the tools}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 900

# The installed package must be usable by another project.
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$BUILD_DIR" --prefix "$prefix/install" >/dev/null
cmake -S examples/find_package -B "$prefix/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix/install" >/dev/null
cmake --build "$prefix/consumer" -j "$JOBS" >/dev/null
"$prefix/consumer/blip_consumer"
echo "find_package(blip) consumer: 1 passed, 0 failed"
