#!/usr/bin/env bash
# Downloads what BLIP's retrieval needs (internet required; libblip itself never downloads):
#   * the released retrieval checkpoints (evaluation) and the pre-trained model_<size>.pth that
#     fine-tuning starts from;
#   * the bert-base-uncased vocabulary;
#   * the retrieval annotation files, train/val/test, for COCO (Karpathy split) and Flickr30k;
#   * with `coco-images`, the COCO 2014 images (train2014.zip 13.5 GB, val2014.zip 6.6 GB), unpacked
#     into DEST/coco/images (BLIP's environment guide, step 3). Flickr30k's images are behind a
#     request form (https://shannon.cs.illinois.edu/DenotationGraph/): unpack them yourself and
#     set image_root in configs/retrieval_flickr.yaml.
# Every file goes to a temporary name first and is renamed only once its size matches what the
# server announced (and, for zip archives, once `unzip -t` has checked every member's CRC).
# Usage: scripts/download_blip.sh [DEST=models] [base|large|all] [coco-images]
set -euo pipefail
dest=${1:-models}
which=${2:-base}
images=${3:-}
blip=https://storage.googleapis.com/sfr-vision-language-research/BLIP/models
anns=https://storage.googleapis.com/sfr-vision-language-research/datasets
coco=http://images.cocodataset.org/zips
for tool in curl unzip; do
  command -v "$tool" >/dev/null || { echo "download_blip: needs $tool (apt install $tool)" >&2; exit 1; }
done
mkdir -p "$dest" "$dest/annotation"

remote_size() {  # the Content-Length the server announces for $1 (empty when it does not say)
  curl -fsIL "$1" | tr -d '\r' | awk 'tolower($1) == "content-length:" { n = $2 } END { print n }'
}

fetch() {  # url file
  local url=$1 file=$2 want got
  if [ -s "$file" ]; then echo "have $file"; return; fi
  echo "downloading $url"
  want=$(remote_size "$url")
  curl -fL --retry 3 -C - -o "$file.part" "$url"
  got=$(stat -c %s "$file.part")
  if [ -n "$want" ] && [ "$got" != "$want" ]; then
    echo "download_blip: $url: got $got bytes, the server announced $want; rerun to resume" >&2
    exit 1
  fi
  case "$file" in
    *.zip|*.pth)  # torch.save archives are zip files too
      if ! unzip -tqq "$file.part" >/dev/null; then
        echo "download_blip: $file.part is a damaged archive (unzip -t failed); delete it and rerun" >&2
        exit 1
      fi ;;
  esac
  mv "$file.part" "$file"
}

sizes=(base large)
[ "$which" = all ] || sizes=("$which")
for s in "${sizes[@]}"; do
  fetch "$blip/model_${s}.pth" "$dest/model_${s}.pth"  # pre-trained: what fine-tuning starts from
  fetch "$blip/model_${s}_retrieval_coco.pth" "$dest/model_${s}_retrieval_coco.pth"
  fetch "$blip/model_${s}_retrieval_flickr.pth" "$dest/model_${s}_retrieval_flickr.pth"
done
fetch https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt "$dest/bert-base-uncased-vocab.txt"
for f in coco_karpathy_train.json coco_karpathy_val.json coco_karpathy_test.json \
         flickr30k_train.json flickr30k_val.json flickr30k_test.json; do
  fetch "$anns/$f" "$dest/annotation/$f"
done

if [ "$images" = coco-images ]; then
  mkdir -p "$dest/coco/images"
  for z in train2014 val2014; do
    fetch "$coco/$z.zip" "$dest/coco/$z.zip"
    if [ ! -d "$dest/coco/images/$z" ]; then
      echo "unpacking $z.zip"
      unzip -q "$dest/coco/$z.zip" -d "$dest/coco/images.part.$z"
      mv "$dest/coco/images.part.$z/$z" "$dest/coco/images/$z" && rmdir "$dest/coco/images.part.$z"
    fi
  done
  echo "COCO images: set image_root: '$(cd "$dest/coco/images" && pwd)' in configs/retrieval_coco.yaml"
fi
echo "done: $dest"
