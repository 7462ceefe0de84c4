#!/usr/bin/env python3
"""lm_torch.py - the PyTorch twin of bench/lm.c: the same decoder shapes
(gpt2s: GPT-2 blocks, width 768, 12 heads, 2 layers, vocab 50257, T 256;
austen: Llama blocks, width 192, 6 heads, 4 layers, hidden 512, vocab 4096;
llama134m: llama2.c's 110M shape with an untied classifier, 134M parameters,
width 768, 12 heads, 12 layers, hidden 2048, vocab 32000, generation only
unless --train) with random weights and ids, timing the same parts and printing the same
`name: value` lines: a training step (forward, backward, clipping, AdamW),
forward + backward in full and frozen (only the input embeddings need a
gradient), one forward over a T-token prompt, and greedy generation with a
key/value cache.

Run with Debian's torch 1.13:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \
      bench/lm_torch.py --model austen --threads 2
A bench, not a test: nothing here checks numbers against crossrec (the twin
in tools/twin_decoder.py does that).
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {
    # arch, C, H, L, NH, V, B, T, tied, train by default
    "gpt2s": ("gpt2", 768, 3072, 2, 12, 50257, 4, 256, True, True),
    "austen": ("llama", 192, 512, 4, 6, 4096, 16, 256, True, True),
    "llama134m": ("llama", 768, 2048, 12, 12, 32000, 1, 256, False, False),
}


class RMSNorm(torch.nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def rope(x, pos0):
    """Rotate pairs (2i, 2i+1) of each head by pos * 10000^(-2i/HD), as llama2.c."""
    _, _, T, HD = x.shape
    pos = torch.arange(pos0, pos0 + T, dtype=torch.float64)
    inv = 10000.0 ** (-torch.arange(0, HD, 2, dtype=torch.float64) / HD)
    ang = torch.outer(pos, inv)
    cos, sin = ang.cos().float(), ang.sin().float()
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


class Block(torch.nn.Module):
    def __init__(self, arch, C, H, NH):
        super().__init__()
        self.arch, self.NH = arch, NH
        llama = arch == "llama"
        self.n1 = RMSNorm(C) if llama else torch.nn.LayerNorm(C, eps=1e-5)
        self.n2 = RMSNorm(C) if llama else torch.nn.LayerNorm(C, eps=1e-5)
        self.qkv = torch.nn.Linear(C, 3 * C, bias=not llama)
        self.wo = torch.nn.Linear(C, C, bias=not llama)
        self.w1 = torch.nn.Linear(C, H, bias=not llama)
        self.w2 = torch.nn.Linear(H, C, bias=not llama)
        self.w3 = torch.nn.Linear(C, H, bias=False) if llama else None

    def forward(self, x, cache=None, pos0=0):
        B, T, C = x.shape
        NH, HD = self.NH, C // self.NH
        q, k, v = self.qkv(self.n1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, NH, HD).transpose(1, 2) for t in (q, k, v))
        if self.arch == "llama":
            q, k = rope(q, pos0), rope(k, pos0)
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), 2)
                v = torch.cat((cache["v"], v), 2)
            cache["k"], cache["v"] = k, v
        Tk = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HD)
        if T > 1:
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(Tk - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.wo(y)
        n = self.n2(x)
        if self.arch == "llama":
            h = F.silu(self.w1(n)) * self.w3(n)
        else:
            h = F.gelu(self.w1(n), approximate="tanh")
        return x + self.w2(h)


class Decoder(torch.nn.Module):
    def __init__(self, arch, C, H, L, NH, V, T, tied=True):
        super().__init__()
        self.arch = arch
        self.tok = torch.nn.Embedding(V, C)
        self.cls = None if tied else torch.nn.Linear(C, V, bias=False)
        self.pos = torch.nn.Embedding(T, C) if arch == "gpt2" else None
        self.blocks = torch.nn.ModuleList(Block(arch, C, H, NH) for _ in range(L))
        self.nf = RMSNorm(C) if arch == "llama" else torch.nn.LayerNorm(C, eps=1e-5)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, emb, caches=None, pos0=0):
        x = emb
        if self.pos is not None:
            x = x + self.pos.weight[pos0:pos0 + emb.shape[1]]
        for i, b in enumerate(self.blocks):
            x = b(x, None if caches is None else caches[i], pos0)
        w = self.tok.weight if self.cls is None else self.cls.weight
        return self.nf(x) @ w.t()


def median_time(fn, seconds, warm=1):
    for _ in range(warm):
        fn()
    ts, total = [], 0.0
    while len(ts) < 3 or (total < seconds and len(ts) < 256):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        ts.append(dt)
        total += dt
    return statistics.median(ts)


def fwd_flops_per_token(arch, C, H, L, V, T):
    per_layer = 3 * C * C + C * C + (2 if arch == "gpt2" else 3) * C * H
    return 2 * (L * per_layer + V * C) + 4.0 * L * T * C


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="austen", choices=sorted(SHAPES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--train", action=argparse.BooleanOptionalAction, default=None,
                    help="time the training parts (default: all shapes but llama134m)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    arch, C, H, L, NH, V, B, T, tied, train = SHAPES[a.model]
    if a.batch > 0:
        B = a.batch
    if a.train is not None:
        train = a.train
    m = Decoder(arch, C, H, L, NH, V, T, tied)
    ids = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))
    decay = [p for n, p in m.named_parameters() if p.dim() == 2 and not n.startswith(("tok", "pos"))]
    rest = [p for n, p in m.named_parameters() if not (p.dim() == 2 and not n.startswith(("tok", "pos")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.95))

    def step():
        opt.zero_grad(set_to_none=False)
        logits = m(m.tok(ids))
        loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        assert math.isfinite(loss.item())

    step_s = full_s = frozen_s = 0.0
    if train:
        step_s = median_time(step, a.seconds)
        emb0 = m.tok(ids).detach()

        def fwd_bwd():
            m.zero_grad(set_to_none=False)
            emb = emb0.clone().requires_grad_(True)
            F.cross_entropy(m(emb).view(-1, V), tgt.view(-1)).backward()

        full_s = median_time(fwd_bwd, a.seconds / 2)
        for p in m.parameters():
            p.requires_grad_(False)
        frozen_s = median_time(fwd_bwd, a.seconds / 2)

    def prefill():
        with torch.no_grad():
            m(m.tok(ids[:1]))

    prefill_s = median_time(prefill, a.seconds / 2)

    def generate():
        with torch.no_grad():
            caches = [dict() for _ in range(L)]
            tok = ids[:1, :1]
            for i in range(a.gen):
                logits = m(m.tok(tok), caches, i)
                tok = logits[:, -1].argmax(-1, keepdim=True)

    gen_s = median_time(generate, a.seconds / 2)
    fpt = fwd_flops_per_token(arch, C, H, L, V, T)
    tps = B * T / step_s if train else 0.0
    print(f"model: {a.model}")
    print(f"shape: {arch} C={C} L={L} NH={NH} H={H} V={V} B={B} T={T}" + ("" if tied else " untied"))
    print(f"threads: {a.threads}")
    print(f"torch: {torch.__version__}")
    if train:
        print(f"train_step_ms: {step_s * 1e3:.2f}")
        print(f"train_tokens_per_s: {tps:.1f}")
        print(f"train_gflops: {tps * 3 * fpt * 1e-9:.2f}")
        print(f"fwd_bwd_full_ms: {full_s * 1e3:.2f}")
        print(f"fwd_bwd_frozen_ms: {frozen_s * 1e3:.2f}")
        print(f"frozen_over_full: {frozen_s / full_s:.3f}")
    else:
        print("train: skipped (generation shape; --train adds the training parts)")
    print(f"prefill_{T}_ms: {prefill_s * 1e3:.2f}")
    print(f"gen_tokens_per_s: {a.gen / gen_s:.1f}")


if __name__ == "__main__":
    main()
