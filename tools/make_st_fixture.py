#!/usr/bin/python3
"""make_st_fixture.py - write tests/fixtures/st_reference.safetensors, a small
safetensors file made independently of the C writer, for tests/test_safetensors.c.

The format is written by hand (struct + json, as the `safetensors` package
does): u64 little-endian header length, a JSON header padded with spaces to a
multiple of 8 bytes, then the raw little-endian tensor bytes. torch supplies
the bfloat16 rounding. Run with /usr/bin/python3 (Debian's python3-torch):

    /usr/bin/python3 tools/make_st_fixture.py [out_path]

The C test hardcodes the expected values printed below; re-running this
script must reproduce the committed file byte for byte.
"""
import json
import struct
import sys

import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/st_reference.safetensors"

# name -> (dtype, shape, raw bytes); insertion order is the data order.
tensors = {}

f32 = [0.5, -1.25, 3.0, 1e-3, -0.0, 100.0]
tensors["dense.weight"] = ("F32", [2, 3], struct.pack("<6f", *f32))

# bf16 through torch (round to nearest even), stored as the raw 16-bit words.
bf_src = [1.5, -2.25, 0.1, 3.14159]
bf = torch.tensor(bf_src, dtype=torch.float32).to(torch.bfloat16)
bf_words = bf.view(torch.int16).tolist()
tensors["emb.weight"] = ("BF16", [2, 2], struct.pack("<4h", *bf_words))

f16 = [1.0, -0.5, 65504.0, 2.0 ** -24]  # includes the largest and the smallest subnormal half
tensors["norm.scale"] = ("F16", [4], struct.pack("<4e", *f16))

i64 = [1, -2, 2 ** 40]
tensors["ids"] = ("I64", [3], struct.pack("<3q", *i64))

header = {"__metadata__": {"format": "pt", "producer": "tools/make_st_fixture.py"}}
data = b""
for name, (dtype, shape, raw) in tensors.items():
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw

hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * ((8 - len(hjson) % 8) % 8)
with open(OUT, "wb") as fp:
    fp.write(struct.pack("<Q", len(hjson)))
    fp.write(hjson)
    fp.write(data)

print("wrote", OUT, 8 + len(hjson) + len(data), "bytes")
print("bf16 as float32:", [repr(v) for v in bf.float().tolist()])
print("bf16 words:", [hex(w & 0xFFFF) for w in bf_words])
