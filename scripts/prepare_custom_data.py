#!/usr/bin/env python3
"""Turns a folder of images and a captions file into BLIP's retrieval annotation files for
libblip's `dataset: custom`, plus a config to train (blip_train) and evaluate (blip_eval) with.

  prepare_custom_data.py --images DIR --captions FILE --out DIR
                         [--val-fraction F] [--test-fraction F] [--seed N] [--format auto|csv|jsonl]
                         [--base-config YAML] [--config-name NAME] [--pretrained FILE]
                         [--set KEY=VALUE ...]

Captions file (UTF-8), one (image, caption) pair per row; an image may have several rows:
  CSV with a header naming the columns `image` and `caption` (other columns are ignored), or
  JSON lines: {"image": "dogs/rex.jpg", "caption": "a dog on the grass"} (caption: a string or a
  list of strings). `image` is a path relative to --images (or an absolute path inside it).

Writes (see docs/custom_data.md):
  <out>/annotation/retrieval_train.json  [{"image", "caption", "image_id"}, ...]  one per caption
  <out>/annotation/retrieval_val.json    [{"image", "caption": [...]}, ...]       one per image
  <out>/annotation/retrieval_test.json   same
  <out>/<config-name>                    the base config with image_root, ann_root, dataset set
The split is by image (an image's captions stay together), seeded and deterministic: the same
image set, seed and fractions give the same split whatever the captions file's order.
Bad input (a missing image, an empty caption, a malformed CSV or JSON line) is reported on one line
on stderr with exit status 1; nothing is written then. Python 3 standard library only.
"""

import argparse
import csv
import io
import json
import os
import random
import re
import sys
import tempfile

PROG = "prepare_custom_data"
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BASE_CONFIG = os.path.join(SCRIPT_DIR, os.pardir, "configs", "retrieval_coco.yaml")
# File names libblip's data layer reads for dataset "custom" (blip/data/train_dataset.h,
# blip/data/retrieval_dataset.h), in ann_root.
ANNOTATION_DIR = "annotation"
SPLIT_FILES = {"train": "retrieval_train.json", "val": "retrieval_val.json", "test": "retrieval_test.json"}
# Config keys holding paths that the config loader resolves against the YAML file's folder: the
# copy lives elsewhere, so relative ones are rewritten as absolute paths.
PATH_KEYS = ("pretrained", "med_config", "tokenizer")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
YAML_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 1."""


# ---- reading the captions file ----

class Problems:
    """Collects input problems, so that one run reports the first and how many there are."""

    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append("%s: %s" % (where, what))

    def raise_if_any(self):
        if self.items:
            more = len(self.items) - 1
            raise InputError(self.items[0] + (" (and %d more problem%s)" % (more, "s" if more > 1 else "")
                                              if more else ""))


def detect_format(path, requested):
    if requested != "auto":
        return requested
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def read_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError("%s: cannot read the captions file: %s" % (path, e.strerror or e))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError("%s line %d: not UTF-8 text (byte 0x%02x)" % (path, line, data[e.start]))


def read_csv_pairs(path, text):
    """(line, image, caption) for each data row of a CSV file with image and caption columns."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("%s: empty file (expected a CSV header with columns image,caption)" % path)
        names = [h.strip().lower() for h in header]
        missing = [c for c in ("image", "caption") if c not in names]
        if missing:
            raise InputError("%s line 1: the CSV header %s lacks column%s %s (expected image,caption)"
                             % (path, ",".join(header), "s" if len(missing) > 1 else "", " and ".join(missing)))
        col_image, col_caption = names.index("image"), names.index("caption")
        pairs = []
        start = reader.line_num + 1
        for row in reader:
            where = "%s line %d" % (path, start)
            start = reader.line_num + 1
            if not row or all(not f.strip() for f in row):
                continue  # blank line
            if len(row) != len(header):
                raise InputError("%s: %d field%s, the header has %d (quote captions that contain commas)"
                                 % (where, len(row), "" if len(row) == 1 else "s", len(header)))
            pairs.append((where, row[col_image], row[col_caption]))
        return pairs
    except csv.Error as e:
        raise InputError("%s line %d: malformed CSV: %s" % (path, reader.line_num, e))


def read_jsonl_pairs(path, text):
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = "%s line %d" % (path, number)
        try:
            entry = json.loads(line)
        except ValueError as e:
            raise InputError("%s: not a JSON object (%s)" % (where, e))
        if not isinstance(entry, dict):
            raise InputError("%s: expected a JSON object {\"image\": ..., \"caption\": ...}, got %s"
                             % (where, type(entry).__name__))
        for key in ("image", "caption"):
            if key not in entry:
                raise InputError("%s: missing key \"%s\"" % (where, key))
        if not isinstance(entry["image"], str):
            raise InputError("%s: \"image\" must be a string" % where)
        captions = entry["caption"]
        if isinstance(captions, str):
            captions = [captions]
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise InputError("%s: \"caption\" must be a string or a list of strings" % where)
        if not captions:
            raise InputError("%s: \"caption\" is an empty list" % where)
        for caption in captions:
            pairs.append((where, entry["image"], caption))
    return pairs


def image_key(images_dir, value):
    """The image's path relative to images_dir (with '/'), or raises ValueError saying why not."""
    value = value.strip()
    if not value:
        raise ValueError("empty image path")
    if os.path.isabs(value):
        rel = os.path.relpath(os.path.normpath(value), images_dir)
    else:
        rel = os.path.normpath(value)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        raise ValueError("image '%s' is outside %s" % (value, images_dir))
    full = os.path.join(images_dir, rel)
    if not os.path.isfile(full):
        raise ValueError("image '%s' not found (%s)" % (value, "not a regular file" if os.path.exists(full)
                                                        else "no file " + full))
    return rel.replace(os.sep, "/")


def collect_captions(images_dir, pairs):
    """{image: [captions in file order]}; every problem is collected, the first is raised."""
    by_image = {}
    problems = Problems()
    for where, image, caption in pairs:
        try:
            key = image_key(images_dir, image)
        except ValueError as e:
            problems.add(where, str(e))
            continue
        caption = caption.strip()
        if not caption:
            problems.add(where, "empty caption for image '%s'" % image.strip())
            continue
        if not any(ch.isalnum() for ch in caption):
            problems.add(where, "caption %r of image '%s' has no words" % (caption, image.strip()))
            continue
        by_image.setdefault(key, []).append(caption)
    problems.raise_if_any()
    return by_image


def count_unused_images(images_dir, used):
    unused = 0
    for root, dirs, files in os.walk(images_dir):
        dirs.sort()
        for name in files:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                rel = os.path.relpath(os.path.join(root, name), images_dir).replace(os.sep, "/")
                unused += rel not in used
    return unused


# ---- the split ----

def split_sizes(n, val_fraction, test_fraction):
    """(train, val, test) image counts: each evaluation split gets at least one image."""
    n_val = max(1, int(round(n * val_fraction)))
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_val - n_test < 1:
        raise InputError("%d image%s with captions: too few for a train, a val and a test split "
                         "(val %d, test %d; need at least %d images)"
                         % (n, "" if n == 1 else "s", n_val, n_test, n_val + n_test + 1))
    return n - n_val - n_test, n_val, n_test


def split_images(images, seed, val_fraction, test_fraction):
    """{split: sorted image list}; a seeded shuffle of the sorted images, so the captions file's
    order does not matter."""
    order = sorted(images)
    random.Random(seed).shuffle(order)
    _, n_val, n_test = split_sizes(len(order), val_fraction, test_fraction)
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def annotation_entries(split, images, by_image):
    if split == "train":  # BLIP's *_train.json: one entry per caption; image_id names the image
        return [{"image": im, "caption": c, "image_id": im} for im in images for c in by_image[im]]
    return [{"image": im, "caption": list(by_image[im])} for im in images]


def annotation_json(entries):
    # One entry per line: valid JSON that is easy to read and diff.
    return "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n"


# ---- the config ----

def yaml_quote(value):
    return "'" + value.replace("'", "''") + "'"


def yaml_scalar(raw):
    """The text of a YAML scalar value: quotes removed, a trailing comment dropped."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        q = raw[0]
        end = raw.find(q, 1)
        while q == "'" and end != -1 and raw[end + 1:end + 2] == "'":
            end = raw.find(q, end + 2)
        return raw[1:end].replace("''", "'") if end != -1 else raw[1:]
    return raw.split(" #", 1)[0].strip()


def is_url(value):
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value) is not None


def make_config(base_path, settings, path_overrides, extra_sets):
    """The base config's text with `settings` (key -> quoted value) replacing its keys, relative
    PATH_KEYS made absolute, and `extra_sets` (key -> raw YAML value) replacing or appended."""
    try:
        with open(base_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError("%s: cannot read the base config: %s" % (base_path, getattr(e, "strerror", None) or e))
    base_dir = os.path.dirname(os.path.abspath(base_path))
    values = dict((k, yaml_quote(v)) for k, v in settings.items())
    values.update((k, yaml_quote(v)) for k, v in path_overrides.items())
    values.update(extra_sets)
    seen = set()
    out = ["# Written by scripts/prepare_custom_data.py from %s (dataset: custom)." % os.path.abspath(base_path)]
    for line in lines:
        m = YAML_KEY_LINE.match(line)
        if not m:
            out.append(line)
            continue
        key = m.group(1)
        seen.add(key)
        if key in values:
            out.append("%s: %s" % (key, values[key]))
        elif key in PATH_KEYS:
            value = yaml_scalar(m.group(2))
            if value and not is_url(value) and not os.path.isabs(value):
                value = os.path.normpath(os.path.join(base_dir, value))
            out.append("%s: %s" % (key, yaml_quote(value)))
        else:
            out.append(line)
    added = [k for k in values if k not in seen]
    if added:
        out.append("")
        out.append("# added by prepare_custom_data.py")
        out.extend("%s: %s" % (k, values[k]) for k in added)
    return "\n".join(out) + "\n"


# ---- writing ----

def write_atomic(path, text):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fraction(text):
    """A share of the images, in (0, 1) (argparse names the flag in its message)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:  # also false for nan
        raise argparse.ArgumentTypeError("expected a number in (0, 1), got '%s'" % text)
    return value


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line and exit status 1, like libblip's tools."""

    def error(self, message):
        sys.stderr.write("%s: %s (see --help)\n" % (PROG, message))
        sys.exit(1)


def parse_args(argv):
    p = OneLineParser(prog="prepare_custom_data.py",
                      description="Images + captions file -> BLIP annotation files and a config for dataset: custom.")
    p.add_argument("--images", required=True, help="the image folder (becomes the config's image_root)")
    p.add_argument("--captions", required=True, help="CSV (header image,caption) or JSON lines file")
    p.add_argument("--out", required=True, help="output folder (annotation/ and the config go here)")
    p.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="share of the images in the val split (default 0.1; at least one image)")
    p.add_argument("--test-fraction", type=fraction, default=0.1,
                   help="share of the images in the test split (default 0.1; at least one image)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--format", choices=("auto", "csv", "jsonl"), default="auto",
                   help="captions file format (default: by extension, .csv or .jsonl)")
    p.add_argument("--base-config", default=DEFAULT_BASE_CONFIG,
                   help="config to copy (default configs/retrieval_coco.yaml)")
    p.add_argument("--config-name", default="retrieval_custom.yaml", help="file name of the config in --out")
    p.add_argument("--pretrained", help="checkpoint to start from (replaces the base config's pretrained)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="also set a config key (raw YAML value; repeatable), e.g. --set max_epoch=3")
    args = p.parse_args(argv)
    if args.val_fraction + args.test_fraction >= 1.0:
        p.error("--val-fraction + --test-fraction must be below 1 (the rest is the train split)")
    sets = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()) or not value.strip():
            p.error("--set: expected KEY=VALUE, got '%s'" % item)
        sets[key.strip()] = value.strip()
    for key in ("image_root", "ann_root", "dataset"):
        if key in sets:
            p.error("--set %s: this key is what the script writes" % key)
    if os.path.basename(args.config_name) != args.config_name or not args.config_name:
        p.error("--config-name: expected a file name, got '%s'" % args.config_name)
    args.sets = sets
    return args


def main(argv):
    args = parse_args(argv)
    images_dir = os.path.abspath(args.images)
    if not os.path.isdir(images_dir):
        raise InputError("%s: --images is not a folder" % args.images)
    if not os.path.isfile(args.captions):
        raise InputError("%s: captions file not found" % args.captions)
    if not os.path.isfile(args.base_config):
        raise InputError("%s: base config not found" % args.base_config)

    text = read_text(args.captions)
    fmt = detect_format(args.captions, args.format)
    pairs = read_csv_pairs(args.captions, text) if fmt == "csv" else read_jsonl_pairs(args.captions, text)
    if not pairs:
        raise InputError("%s: no captions" % args.captions)
    by_image = collect_captions(images_dir, pairs)
    splits = split_images(list(by_image), args.seed, args.val_fraction, args.test_fraction)

    path_overrides = {}
    if args.pretrained:
        if not is_url(args.pretrained) and not os.path.isfile(args.pretrained):
            raise InputError("%s: --pretrained checkpoint not found" % args.pretrained)
        path_overrides["pretrained"] = args.pretrained if is_url(args.pretrained) else os.path.abspath(args.pretrained)
    config = make_config(args.base_config,
                         {"image_root": images_dir, "ann_root": ANNOTATION_DIR, "dataset": "custom"},
                         path_overrides, args.sets)

    out_dir = os.path.abspath(args.out)
    ann_dir = os.path.join(out_dir, ANNOTATION_DIR)
    try:
        os.makedirs(ann_dir, exist_ok=True)
        written = []
        for split in ("train", "val", "test"):
            path = os.path.join(ann_dir, SPLIT_FILES[split])
            write_atomic(path, annotation_json(annotation_entries(split, splits[split], by_image)))
            written.append(path)
        config_path = os.path.join(out_dir, args.config_name)
        write_atomic(config_path, config)
    except OSError as e:
        raise InputError("%s: cannot write: %s" % (e.filename or out_dir, e.strerror or e))
    except UnicodeEncodeError:
        raise InputError("%s: an image path is not valid UTF-8 (rename it)" % images_dir)

    captions = dict((s, sum(len(by_image[im]) for im in splits[s])) for s in splits)
    n_images = len(by_image)
    print("images: %d (train %d, val %d, test %d); captions: %d (train %d, val %d, test %d)"
          % (n_images, len(splits["train"]), len(splits["val"]), len(splits["test"]),
             sum(captions.values()), captions["train"], captions["val"], captions["test"]))
    unused = count_unused_images(images_dir, by_image)
    if unused:
        print("note: %d image file%s under %s %s no caption and %s left out"
              % (unused, "" if unused == 1 else "s", images_dir, "has" if unused == 1 else "have",
                 "is" if unused == 1 else "are"))
    for path in written:
        print("wrote " + path)
    print("wrote " + config_path)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        sys.exit(1)
