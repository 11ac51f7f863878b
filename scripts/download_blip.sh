#!/usr/bin/env bash
# Downloads BLIP's released retrieval checkpoints, the bert-base-uncased vocabulary and the
# retrieval annotation files (needs internet; libblip itself never downloads anything).
# Usage: scripts/download_blip.sh [DEST=models] [base|large|all]
set -euo pipefail
dest=${1:-models}
which=${2:-base}
blip=https://storage.googleapis.com/sfr-vision-language-research/BLIP/models
anns=https://storage.googleapis.com/sfr-vision-language-research/datasets
mkdir -p "$dest" "$dest/annotation"
fetch() {  # url file: download to a temporary name, then rename, so a broken download never looks done
  [ -s "$2" ] && { echo "have $2"; return; }
  echo "downloading $1"
  curl -fL --retry 3 -o "$2.part" "$1" && mv "$2.part" "$2"
}
sizes=(base large)
[ "$which" = all ] || sizes=("$which")
for s in "${sizes[@]}"; do
  fetch "$blip/model_${s}_retrieval_coco.pth" "$dest/model_${s}_retrieval_coco.pth"
  fetch "$blip/model_${s}_retrieval_flickr.pth" "$dest/model_${s}_retrieval_flickr.pth"
done
fetch https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt "$dest/bert-base-uncased-vocab.txt"
for f in coco_karpathy_val.json coco_karpathy_test.json flickr30k_val.json flickr30k_test.json; do
  fetch "$anns/$f" "$dest/annotation/$f"
done
echo "done: $dest"
