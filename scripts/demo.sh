#!/usr/bin/env bash
# The main job on a fresh machine: installs the dependencies, builds the tools and extracts BLIP
# features for the reference fixture's images and captions with the tiny fixture checkpoint.
# Usage: scripts/demo.sh   (BLIP_FIXTURES_DIR to point at the fixtures; OUT=demo_features.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
fixtures=${BLIP_FIXTURES_DIR:-$(cd .. && pwd)/shared/fixtures}
ref="$fixtures/blip_ref"
out=${OUT:-demo_features.safetensors}

bash scripts/install_deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target blip_extract

if [ ! -f "$ref/tiny_config.yaml" ]; then
  echo "demo: the reference fixtures are not at $fixtures (set BLIP_FIXTURES_DIR)" >&2
  exit 1
fi
"$BUILD_DIR/tools/blip_extract" --config "$ref/tiny_config.yaml" \
  --image "$ref/images/v0_rgb_640x480.jpg" --image "$ref/images/v1_rgb_500x333.png" \
  --image "$ref/images/v2_gray_384x384.jpg" --image "$ref/images/v3_rgba_97x211.png" \
  --caption "a man riding a wave on top of a surfboard." \
  --caption "Two dogs (brown & white) play in the snow!" \
  --caption "a plate of food with broccoli and rice" \
  --out "$out"
