#!/usr/bin/env bash
# Installs the dependencies, builds libblip with its tools, tests and benchmarks, runs every test,
# and checks that an installed libblip works from other CMake projects (find_package(blip)): the
# minimal consumer, and examples/image_search run on the fixtures' tiny model.
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
# The tools also run with idle threads sleeping (src/core/blas_kernels.cpp, thread_env_to_set).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4}
echo "tests run with OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, as in the tools}, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
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

# A real client against the same prefix: examples/image_search indexes the fixture images with the
# tiny fixture model and searches them by text (Retriever::load, build_index, search with an ITM
# rerank, match). Always built; run only where the fixtures are.
cmake -S examples/image_search -B "$prefix/image_search" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix/install" >/dev/null
cmake --build "$prefix/image_search" -j "$JOBS" >/dev/null
fixtures=${BLIP_FIXTURES_DIR:-../shared/fixtures}
if [ -f "$fixtures/blip_ref/tiny_config.yaml" ] && [ -f "$fixtures/bert-base-uncased-vocab.txt" ]; then
  if ! out=$("$prefix/image_search/image_search" --config "$fixtures/blip_ref/tiny_config.yaml" \
      --images "$fixtures/blip_ref/images" --query "a dog running on the beach" --top-k 3 --rerank 2); then
    echo "image_search example: 0 passed, 1 failed (non-zero exit)"
    exit 1
  fi
  echo "$out"
  # A table headed "rank score itc itm path" with exactly 3 ranked rows, the first reranked (an
  # itm value, not "-"), and the top hit's ITM probability.
  rows=$(grep -cE '^ *[0-9]+ +-?[0-9.]+ ' <<<"$out" || true)
  if grep -qE '^rank +score +itc +itm +path$' <<<"$out" && [ "$rows" -eq 3 ] &&
      grep -qE '^ *1( +-?[0-9]+\.[0-9]+){3} ' <<<"$out" && grep -q 'ITM match probability' <<<"$out"; then
    echo "image_search example: 1 passed, 0 failed"
  else
    echo "image_search example: 0 passed, 1 failed (no ranked, reranked table in its output)"
    exit 1
  fi
else
  echo "image_search example: built, not run (no fixtures at '$fixtures'; set BLIP_FIXTURES_DIR)"
fi
