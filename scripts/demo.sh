#!/usr/bin/env bash
# The main job on a fresh clone, with nothing beside it (no downloads, no ../shared): installs the
# dependencies, builds the tools, writes a synthetic image-text retrieval dataset (coloured shapes
# with templated captions, in BLIP's annotation formats), trains a SentencePiece tokenizer on its
# captions, trains a small BLIP retrieval model FROM SCRATCH on the CPU (configs/demo/), evaluates
# the best checkpoint on the test split and prints BLIP's recall table. Training and evaluation
# take about 4-8 minutes on 2 cores; test recall@1 climbs from chance (1% for 100 images) to
# 50-75% (README: the spread over seeds and float rounding).
# Usage: scripts/demo.sh   (BUILD_DIR=build, THREADS=all cores; everything it writes is in demo/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
THREADS=${THREADS:-$(nproc)}
# LibTorch's OpenMP threads spin while they wait; with the image-decoding threads beside them on
# a 2-core machine that made training 2.5x slower than one thread. Passive waiting fixes it.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# The demo's matrices are tiny: LibTorch's OpenMP threads do the parallel work, while OpenBLAS's
# own pthreads, spinning on sched_yield between calls, only competed with them (1.6x slower
# steps, half the CPU time in the kernel). One BLAS thread per call is faster here.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
CONFIG=configs/demo/retrieval_demo.yaml
DEMO=demo  # the paths in $CONFIG point here
OUT=$DEMO/output

bash scripts/install_deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target blip_demo_data blip_train blip_eval blip_index blip_search

# Start from nothing: a checkpoint_last.pth left by an earlier run would be resumed.
rm -rf "$DEMO"
mkdir -p "$DEMO"
t0=$(date +%s)
echo "== data: $DEMO/data"
"$BUILD_DIR/tools/blip_demo_data" --out "$DEMO/data" --train 2000 --val 100 --test 100 --size 64 --seed 0

echo "== tokenizer: $DEMO/spm.model (log in $DEMO/spm_train.log)"
# BPE over the train captions; the special tokens take the ids our SentencePiece tokenizer and the
# med config expect ([PAD] = pad_token_id 0), and vocab_size is the med config's.
spm_train --input="$DEMO/data/captions.txt" --model_prefix="$DEMO/spm" --model_type=bpe --vocab_size=160 \
  --character_coverage=1.0 --pad_id=0 --pad_piece='[PAD]' --unk_id=1 --unk_piece='[UNK]' \
  --bos_id=2 --bos_piece='[CLS]' --eos_id=3 --eos_piece='[SEP]' \
  --user_defined_symbols='[MASK],[DEC],[ENC]' --num_threads="$THREADS" >"$DEMO/spm_train.log" 2>&1 ||
  { tail -5 "$DEMO/spm_train.log" >&2; echo "demo: spm_train failed (log: $DEMO/spm_train.log)" >&2; exit 1; }

echo "== training from scratch: $OUT (log.txt, checkpoints)"
t1=$(date +%s)
"$BUILD_DIR/tools/blip_train" --config "$CONFIG" --output_dir "$OUT" --seed 42 --threads "$THREADS"
t2=$(date +%s)

echo "== evaluation of $OUT/checkpoint_best.pth on the test split"
"$BUILD_DIR/tools/blip_eval" --config "$CONFIG" --checkpoint "$OUT/checkpoint_best.pth" --split test \
  --output_dir "$OUT" --threads "$THREADS" --quiet
t3=$(date +%s)

echo "== search: the test images indexed, then searched by text with the ITM rerank ($DEMO/search.html)"
"$BUILD_DIR/tools/blip_index" --config "$CONFIG" --checkpoint "$OUT/checkpoint_best.pth" \
  --images "$DEMO/data/images/test" --out "$DEMO/test_index.safetensors" --threads "$THREADS" --quiet
"$BUILD_DIR/tools/blip_search" --config "$CONFIG" --checkpoint "$OUT/checkpoint_best.pth" \
  --index "$DEMO/test_index.safetensors" --query "three big purple squares on a grey background" \
  --top-k 5 --rerank 20 --html "$DEMO/search.html" --threads "$THREADS"
echo "demo: data and tokenizer $((t1 - t0)) s, training $((t2 - t1)) s, evaluation $((t3 - t2)) s" \
  "(training + evaluation $((t3 - t1)) s on $THREADS threads)"
