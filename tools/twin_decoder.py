#!/usr/bin/python3
"""twin_decoder.py - PyTorch twin of the decoder language model
(src/nn/decoder*.c; the math is in docs/decoder.md).

Written from the formulas, not from the C code: RMSNorm (eps 1e-5), RoPE
in llama2.c's pairing, SwiGLU, grouped-query attention, tied classifier;
GPT-2 with LayerNorm, learned positions, GELU-tanh, fused biased qkv.
Writes, under tests/fixtures/:

  dec_stories.safetensors   for data/models/stories260K.bin (parsed here,
                            independently of the C loader): ids (T) I32, the
                            logits (T, V) of that sequence, and greedy (64)
                            I32, the greedy ids from BOS = 1 (full recompute
                            each step, no cache)
  dec_llama.safetensors     a tiny random Llama (dim 32, 2 layers, 4 heads,
                            2 kv heads, vocab 50, B 2, T 8): init.<name>
                            every parameter (C names), batch.ids (-1 at soft
                            positions), batch.emb (B, T, C) the input
                            embeddings with soft tokens spliced in,
                            batch.targets (-1 = ignore), logits, loss,
                            grad.<name> every parameter gradient (tok_emb
                            includes the lookup of the token positions),
                            grad.emb, steps.loss (loss before each of 3
                            AdamW steps)
  dec_gpt2.safetensors      the same for a tiny random GPT-2, whose weights
                            are in dec_gpt2_hf.safetensors in Hugging Face's
                            GPT2LMHeadModel layout (transformer.h.0.attn.
                            c_attn.weight, Conv1D (in, out)); gradients use
                            the C names and layout

tests/test_decoder.c replays them. Needs only torch (safetensors written by
hand). Run with Debian's interpreter from the repository root:

    /usr/bin/python3 tools/twin_decoder.py [outdir]
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

EPS = 1e-5
LR, WD, BETAS, ADAM_EPS = 1e-2, 0.1, (0.9, 0.999), 1e-8
STEPS = 3


# ---- safetensors -------------------------------------------------------------------
def dtype_name(t):
    return {torch.float32: "F32", torch.int32: "I32"}[t.dtype]


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, t in tensors:
        raw = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype_name(t), "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


# ---- the two architectures ---------------------------------------------------------------
def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, pos0=0):
    """x (B, T, nh, hd): rotate pairs (2i, 2i+1) by (pos0+t) * 10000^(-2i/hd)."""
    T, hd = x.shape[1], x.shape[3]
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = 10000.0 ** (-2.0 * i / hd)
    ang = torch.outer(torch.arange(pos0, pos0 + T, dtype=torch.float64), freq)
    cos, sin = ang.cos().float()[None, :, None, :], ang.sin().float()[None, :, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


def attention(q, k, v):
    """q (B, T, nh, hd), k, v (B, T, nkv, hd): causal softmax(q k^T / sqrt(hd)) v."""
    B, T, nh, hd = q.shape
    g = nh // k.shape[2]
    k = k.repeat_interleave(g, dim=2)
    v = v.repeat_interleave(g, dim=2)
    s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(hd)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    p = s.masked_fill(mask, float("-inf")).softmax(-1)
    return torch.einsum("bhts,bshd->bthd", p, v).reshape(B, T, nh * hd)


def llama_forward(P, cfg, x):
    """x (B, T, C) input embeddings -> logits (B, T, V)."""
    B, T, C = x.shape
    nh, nkv = cfg["n_heads"], cfg["n_kv_heads"]
    hd = C // nh
    for l in range(cfg["n_layers"]):
        p = lambda n: P[f"layers.{l}.{n}"]
        h = rmsnorm(x, p("attn_norm"))
        q = rope((h @ p("wq").T).view(B, T, nh, hd))
        k = rope((h @ p("wk").T).view(B, T, nkv, hd))
        v = (h @ p("wv").T).view(B, T, nkv, hd)
        x = x + attention(q, k, v) @ p("wo").T
        h = rmsnorm(x, p("ffn_norm"))
        x = x + (F.silu(h @ p("w1").T) * (h @ p("w3").T)) @ p("w2").T
    x = rmsnorm(x, P["final_norm"])
    return x @ (P["tok_emb"] if cfg["tied"] else P["wcls"]).T


def gpt2_forward(P, cfg, x):
    B, T, C = x.shape
    nh = cfg["n_heads"]
    hd = C // nh
    x = x + P["pos_emb"][:T]
    for l in range(cfg["n_layers"]):
        p = lambda n: P[f"layers.{l}.{n}"]
        h = F.layer_norm(x, (C,), p("attn_norm"), p("attn_norm_bias"), EPS)
        qkv = h @ p("wqkv").T + p("bqkv")
        q, k, v = qkv.split(C, dim=-1)
        a = attention(q.view(B, T, nh, hd), k.view(B, T, nh, hd), v.view(B, T, nh, hd))
        x = x + a @ p("wo").T + p("bo")
        h = F.layer_norm(x, (C,), p("ffn_norm"), p("ffn_norm_bias"), EPS)
        h = F.gelu(h @ p("w1").T + p("b1"), approximate="tanh")
        x = x + h @ p("w2").T + p("b2")
    x = F.layer_norm(x, (C,), P["final_norm"], P["final_norm_bias"], EPS)
    return x @ P["tok_emb"].T


def param_shapes(cfg):
    """(name, shape) in the C registration order (docs/decoder.md)."""
    C, H, V, L = cfg["dim"], cfg["hidden_dim"], cfg["vocab"], cfg["n_layers"]
    kv = cfg["n_kv_heads"] * (C // cfg["n_heads"])
    g = cfg["arch"] == "gpt2"
    out = [("tok_emb", (V, C))]
    if g:
        out.append(("pos_emb", (cfg["max_seq"], C)))
    for l in range(L):
        p = f"layers.{l}."
        out.append((p + "attn_norm", (C,)))
        if g:
            out += [(p + "attn_norm_bias", (C,)), (p + "wqkv", (3 * C, C)), (p + "bqkv", (3 * C,))]
        else:
            out += [(p + "wq", (C, C)), (p + "wk", (kv, C)), (p + "wv", (kv, C))]
        out.append((p + "wo", (C, C)))
        if g:
            out.append((p + "bo", (C,)))
        out.append((p + "ffn_norm", (C,)))
        if g:
            out.append((p + "ffn_norm_bias", (C,)))
        out.append((p + "w1", (H, C)))
        if g:
            out.append((p + "b1", (H,)))
        out.append((p + "w2", (C, H)))
        if g:
            out.append((p + "b2", (C,)))
        else:
            out.append((p + "w3", (H, C)))
    out.append(("final_norm", (C,)))
    if g:
        out.append(("final_norm_bias", (C,)))
    if not cfg["tied"]:
        out.append(("wcls", (V, C)))
    return out


def random_params(cfg, g):
    """Larger than GPT-2's init so every gradient is well above rounding."""
    P = {}
    for name, shape in param_shapes(cfg):
        if len(shape) == 1:
            base = 1.0 if "norm" in name and "bias" not in name else 0.0
            t = base + 0.1 * torch.randn(shape, generator=g)
        else:
            t = torch.randn(shape, generator=g) * (0.3 / math.sqrt(shape[1]) * 2)
        P[name] = t.float().requires_grad_(True)
    return P


# ---- the tiny twins ---------------------------------------------------------------------------
def tiny_case(cfg, seed, outdir, name, hf_path=None):
    g = torch.Generator().manual_seed(seed)
    P = random_params(cfg, g)
    B, T, C, V = 2, 8, cfg["dim"], cfg["vocab"]
    ids = torch.randint(0, V, (B, T), generator=g).to(torch.int32)
    targets = torch.randint(0, V, (B, T), generator=g).to(torch.int32)
    soft_pos = [(0, 2), (0, 3), (1, 0)]
    for b, t in soft_pos:
        ids[b, t] = -1
    targets[0, 2] = -1  # ignored targets, one on a soft position
    targets[1, 5] = -1
    soft = torch.randn(len(soft_pos), C, generator=g) * 0.5
    fwd = gpt2_forward if cfg["arch"] == "gpt2" else llama_forward

    def make_emb():
        rows = []
        for b in range(B):
            for t in range(T):
                if ids[b, t] >= 0:
                    rows.append(P["tok_emb"][ids[b, t].long()])
                else:
                    rows.append(soft[soft_pos.index((b, t))])
        return torch.stack(rows).view(B, T, C)

    def loss_of(emb):
        logits = fwd(P, cfg, emb)
        return logits, F.cross_entropy(logits.view(-1, V), targets.view(-1).long(),
                                       ignore_index=-1)

    init = {n: p.detach().clone() for n, p in P.items()}
    emb = make_emb()
    emb.retain_grad()
    logits, loss = loss_of(emb)
    loss.backward()
    tensors = [("batch.ids", ids), ("batch.targets", targets), ("batch.emb", emb.detach()),
               ("logits", logits.detach()), ("loss", loss.detach().reshape(1)),
               ("grad.emb", emb.grad.detach())]
    if hf_path is None:
        tensors += [(f"init.{n}", t) for n, t in init.items()]
    tensors += [(f"grad.{n}", P[n].grad.detach().clone()) for n, _ in param_shapes(cfg)]

    for p in P.values():
        p.grad = None
    decay = [p for n, p in P.items() if p.dim() >= 2]
    nodecay = [p for n, p in P.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=ADAM_EPS, foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        _, l = loss_of(make_emb())
        losses.append(l.item())
        l.backward()
        opt.step()
    tensors.append(("steps.loss", torch.tensor(losses, dtype=torch.float32)))
    meta = {"config": json.dumps(cfg), "lr": repr(LR), "weight_decay": repr(WD),
            "betas": json.dumps(BETAS), "eps": repr(ADAM_EPS)}
    save_safetensors(os.path.join(outdir, name), tensors, meta)
    if hf_path is not None:
        save_hf_gpt2(os.path.join(outdir, hf_path), init, cfg)
    print(f"{name}: loss {loss.item():.6f}, steps {losses}")


def save_hf_gpt2(path, P, cfg):
    """GPT2LMHeadModel's names; Conv1D weights stored (in, out)."""
    pre = "transformer."
    out = [(pre + "wte.weight", P["tok_emb"]), (pre + "wpe.weight", P["pos_emb"])]
    for l in range(cfg["n_layers"]):
        p, h = f"layers.{l}.", f"{pre}h.{l}."
        out += [(h + "ln_1.weight", P[p + "attn_norm"]), (h + "ln_1.bias", P[p + "attn_norm_bias"]),
                (h + "attn.c_attn.weight", P[p + "wqkv"].T), (h + "attn.c_attn.bias", P[p + "bqkv"]),
                (h + "attn.c_proj.weight", P[p + "wo"].T), (h + "attn.c_proj.bias", P[p + "bo"]),
                (h + "ln_2.weight", P[p + "ffn_norm"]), (h + "ln_2.bias", P[p + "ffn_norm_bias"]),
                (h + "mlp.c_fc.weight", P[p + "w1"].T), (h + "mlp.c_fc.bias", P[p + "b1"]),
                (h + "mlp.c_proj.weight", P[p + "w2"].T), (h + "mlp.c_proj.bias", P[p + "b2"])]
    out += [(pre + "ln_f.weight", P["final_norm"]), (pre + "ln_f.bias", P["final_norm_bias"]),
            ("lm_head.weight", P["tok_emb"])]
    save_safetensors(path, [(n, t.contiguous()) for n, t in out], {"format": "pt"})


# ---- stories260K -----------------------------------------------------------------------------
def load_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, L, nh, nkv, vocab, seq = struct.unpack("<7i", raw[:28])
    tied = vocab > 0
    V = abs(vocab)
    w = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32)
    kv = nkv * (dim // nh)
    cfg = {"arch": "llama", "dim": dim, "hidden_dim": hidden, "n_layers": L, "n_heads": nh,
           "n_kv_heads": nkv, "vocab": V, "max_seq": seq, "tied": tied}
    off = 0

    def take(*shape):
        nonlocal off
        n = math.prod(shape)
        t = w[off:off + n].view(*shape).clone()
        off += n
        return t

    P = {"tok_emb": take(V, dim)}
    stacked = [("attn_norm", (dim,)), ("wq", (dim, dim)), ("wk", (kv, dim)), ("wv", (kv, dim)),
               ("wo", (dim, dim)), ("ffn_norm", (dim,)), ("w1", (hidden, dim)),
               ("w2", (dim, hidden)), ("w3", (hidden, dim))]
    for n, shape in stacked:
        t = take(L, *shape)
        for l in range(L):
            P[f"layers.{l}.{n}"] = t[l]
    P["final_norm"] = take(dim)
    off += seq * (dim // nh)  # freq_cis_real and freq_cis_imag, (seq, hd/2) each
    if not tied:
        P["wcls"] = take(V, dim)
    assert off == w.numel(), (off, w.numel())
    return P, cfg


def stories_case(outdir, model):
    P, cfg = load_llama2c(model)
    ids = torch.tensor([1, 50, 120, 300, 7, 411, 29, 511], dtype=torch.int32)
    with torch.no_grad():
        logits = llama_forward(P, cfg, P["tok_emb"][ids.long()][None])[0]
        seq = [1]
        for _ in range(64):
            x = P["tok_emb"][torch.tensor(seq)][None]
            seq.append(int(llama_forward(P, cfg, x)[0, -1].argmax()))
    greedy = torch.tensor(seq[1:], dtype=torch.int32)
    save_safetensors(os.path.join(outdir, "dec_stories.safetensors"),
                     [("ids", ids), ("logits", logits), ("greedy", greedy)],
                     {"model": "data/models/stories260K.bin"})
    print("stories260K greedy:", " ".join(map(str, seq[1:])))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    torch.manual_seed(0)
    stories_case(outdir, "data/models/stories260K.bin")
    llama = {"arch": "llama", "dim": 32, "hidden_dim": 48, "n_layers": 2, "n_heads": 4,
             "n_kv_heads": 2, "vocab": 50, "max_seq": 16, "tied": True}
    gpt2 = {"arch": "gpt2", "dim": 32, "hidden_dim": 128, "n_layers": 2, "n_heads": 4,
            "n_kv_heads": 4, "vocab": 50, "max_seq": 16, "tied": True}
    tiny_case(llama, 1, outdir, "dec_llama.safetensors")
    tiny_case(gpt2, 2, outdir, "dec_gpt2.safetensors", hf_path="dec_gpt2_hf.safetensors")


if __name__ == "__main__":
    main()
