#!/usr/bin/env python3
"""Writes the tiny seed inputs of fuzz_unpickle, fuzz_pth and fuzz_safetensors (no PyTorch needed:
stand-in torch globals are pickled under their real names). Run from fuzz/corpus/."""
import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

# Stand-ins that pickle as torch's globals.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules.update({"torch": torch, "torch._utils": torch_utils})


def _storage_class(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


FloatStorage, LongStorage, HalfStorage = (_storage_class(n) for n in ("FloatStorage", "LongStorage", "HalfStorage"))


def _rebuild_tensor_v2(*a):
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)


def dumps(obj):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.persistent_id = lambda o: ("storage", o.cls, o.key, "cpu", o.numel) if isinstance(o, Storage) else None
    p.dump(obj)
    return buf.getvalue()


w = Storage(FloatStorage, "0", 4)
ids = Storage(LongStorage, "1", 2)
state = collections.OrderedDict([
    ("w", Tensor(w, 0, [2, 2], [2, 1])),
    ("w.t", Tensor(w, 0, [2, 2], [1, 2])),  # a view of the same storage
    ("ids", Tensor(ids, 0, [2], [1])),
])
storages = {"0": struct.pack("<4f", 1, 2, 3, 4), "1": struct.pack("<2q", 7, -1)}

plain = dumps(state)
ckpt = dumps({"model": state, "epoch": 3, "config": {"lr": 1e-5, "name": "x", "sizes": [1, 2], "ok": True,
                                                     "none": None, "t": (1,)}})
open("fuzz_unpickle/state_dict.pkl", "wb").write(plain)
open("fuzz_unpickle/checkpoint.pkl", "wb").write(ckpt)
open("fuzz_unpickle/values.pkl", "wb").write(pickle.dumps(
    [0, -1, 2**40, 2**70, 1.5, "s\u00e9", b"b", (), (1, 2), {}, {"k": [None, True]}], protocol=2))


def pth(records):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            z.writestr("archive/" + name, data)
    return buf.getvalue()


open("fuzz_pth/state_dict.pth", "wb").write(pth(
    [("data.pkl", plain), ("data/0", storages["0"]), ("data/1", storages["1"]), ("version", "3\n")]))
open("fuzz_pth/checkpoint.pth", "wb").write(pth(
    [("data.pkl", ckpt), ("data/0", storages["0"]), ("data/1", storages["1"]), ("version", "3\n"),
     ("byteorder", "little")]))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


open("fuzz_safetensors/two.safetensors", "wb").write(safetensors(
    [("w", "F32", [2, 2], storages["0"]), ("ids", "I64", [2], storages["1"])], {"format": "pt"}))
open("fuzz_safetensors/dtypes.safetensors", "wb").write(safetensors(
    [("h", "F16", [2], b"\x00\x3c\x00\xc0"), ("b", "BF16", [1], b"\x80\x3f"), ("u", "U8", [3], b"abc"),
     ("z", "F64", [0], b""), ("s", "BOOL", [], b"\x01"), ("i", "I32", [1, 1], b"\x05\x00\x00\x00")]))
