#!/usr/bin/env python3
"""lm_gguf.py - write a random-weight GGUF (v3, float32) of a decoder shape
of bench/lm.c for the llama.cpp anchor of scripts/bench_lm.sh
(bench/lm_llamacpp.mjs):
  austen     (default) the austen-small shape: Llama blocks, C 192, 4 layers,
             6 heads, SwiGLU 512, vocab 4096, context 256, tied output;
  llama134m  llama2.c's 110M shape with an untied classifier (134M
             parameters): C 768, 12 layers, 12 heads, SwiGLU 2048, vocab
             32000, context 256, a separate output.weight.
Bench-only: the weights are N(0, 0.02) noise and the vocabulary is
placeholder pieces (the control tokens, the 256 byte pieces llama.cpp looks
up, then "w<i>"), enough for llama.cpp to load the file and time its
forward passes. Needs only numpy (Debian's /usr/bin/python3 has it).

Usage: python3 bench/lm_gguf.py [--shape austen|llama134m] OUT.gguf
"""
import argparse
import struct

import numpy as np

SHAPES = {
    # C, H, L, NH, NKV, V, T, tied
    "austen": (192, 512, 4, 6, 6, 4096, 256, True),
    "llama134m": (768, 2048, 12, 12, 12, 32000, 256, False),
}
ALIGN = 32


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = s(key) + struct.pack("<I", vtype)
    if vtype == 4:  # uint32
        return out + struct.pack("<I", value)
    if vtype == 6:  # float32
        return out + struct.pack("<f", value)
    if vtype == 8:  # string
        return out + s(value)
    raise ValueError(vtype)


def arr(key, etype, values):
    out = s(key) + struct.pack("<IIQ", 9, etype, len(values))
    if etype == 8:
        return out + b"".join(s(v) for v in values)
    fmt = {5: "<i", 6: "<f"}[etype]
    return out + b"".join(struct.pack(fmt, v) for v in values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="austen", choices=sorted(SHAPES))
    ap.add_argument("out")
    args = ap.parse_args()
    C, H, L, NH, NKV, V, T, tied = SHAPES[args.shape]
    rng = np.random.default_rng(1)
    tensors = []  # (name, array in torch (out, in) layout)

    def w(name, *shape, norm=False):
        a = np.ones(shape, np.float32) if norm else rng.normal(0, 0.02, shape).astype(np.float32)
        tensors.append((name, a))

    w("token_embd.weight", V, C)
    for i in range(L):
        p = f"blk.{i}."
        w(p + "attn_norm.weight", C, norm=True)
        w(p + "attn_q.weight", C, C)
        w(p + "attn_k.weight", C // NH * NKV, C)
        w(p + "attn_v.weight", C // NH * NKV, C)
        w(p + "attn_output.weight", C, C)
        w(p + "ffn_norm.weight", C, norm=True)
        w(p + "ffn_gate.weight", H, C)
        w(p + "ffn_up.weight", H, C)
        w(p + "ffn_down.weight", C, H)
    w("output_norm.weight", C, norm=True)
    if not tied:  # without output.weight llama.cpp ties the output to token_embd
        w("output.weight", V, C)

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    while len(tokens) < V:
        tokens.append(f"\u2581w{len(tokens)}")
        types.append(1)
    meta = [
        kv("general.architecture", 8, "llama"),
        kv("general.name", 8, f"crossrec-bench-{args.shape}-shape"),
        kv("llama.context_length", 4, T),
        kv("llama.embedding_length", 4, C),
        kv("llama.block_count", 4, L),
        kv("llama.feed_forward_length", 4, H),
        kv("llama.attention.head_count", 4, NH),
        kv("llama.attention.head_count_kv", 4, NKV),
        kv("llama.rope.dimension_count", 4, C // NH),
        kv("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
        kv("general.alignment", 4, ALIGN),
        kv("tokenizer.ggml.model", 8, "llama"),
        arr("tokenizer.ggml.tokens", 8, tokens),
        arr("tokenizer.ggml.scores", 6, [0.0] * V),
        arr("tokenizer.ggml.token_type", 5, types),
        kv("tokenizer.ggml.bos_token_id", 4, 1),
        kv("tokenizer.ggml.eos_token_id", 4, 2),
        kv("tokenizer.ggml.unknown_token_id", 4, 0),
    ]
    info, off = b"", 0
    for name, a in tensors:
        dims = a.shape[::-1]  # GGUF lists the fastest-moving dimension first
        info += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        info += struct.pack("<IQ", 0, off)  # type F32, offset in the data section
        off += (a.nbytes + ALIGN - 1) // ALIGN * ALIGN
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + info
    with open(args.out, "wb") as f:
        f.write(head)
        f.write(b"\0" * (-len(head) % ALIGN))
        for _, a in tensors:
            f.write(a.tobytes())
            f.write(b"\0" * (-a.nbytes % ALIGN))


if __name__ == "__main__":
    main()
