#!/usr/bin/env bash
# Installs every build and test dependency of libblip from Debian 12's packages.
# Usage: sudo scripts/install_deps.sh   (idempotent; run as root or through sudo)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev          # LibTorch 1.13 (CPU)
  libgloo-dev           # needed by c10d's ProcessGroupGloo headers
  libopenblas0-pthread  # without it torch multiplies on the reference BLAS (~30x slower)
  libopencv-dev         # image decoding
  libsentencepiece-dev
  sentencepiece         # spm_train: the demo trains its tokenizer (scripts/demo.sh)
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev
  zlib1g-dev            # CRC-32 of checkpoint records
  libicu-dev            # Unicode case mapping, categories and NFD for the tokenizer
  libfaiss-dev          # optional: approximate image search (FaissIndex); without it exact search only
  python3-torch         # optional: tests that Python's torch.load reads our .pth
  chromium              # tests: headless rendering of the training report (report.html)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install_deps: all dependencies present"
