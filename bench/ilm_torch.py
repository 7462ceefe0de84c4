#!/usr/bin/env python3
"""ilm_torch.py - the PyTorch twin of bench/ilm.c: one Item-Language Model
training step at the same shapes, timed the same way, with the same
`name: value` output lines.

  --phase 1  the phase-1 Q-Former (8 queries, 2 layers, width 64, 4 heads,
             ffn 256, 4 CF tokens, CF size 32, text length 32, vocabulary
             2051, batch 32): ITC, ITM (hard negatives from the uniforms,
             3B sequences), ITG, item-item and user-item InfoNCE summed, one
             backward, clip to norm 1, AdamW.
  --phase 2  a 4-query Q-Former (queries only, as phase 2 runs it) and the
             linear adapter into the frozen austen-small LM (parameters with
             requires_grad=False, so autograd computes only what flows back
             to the soft tokens), batch 8 x T tokens with E entities' soft
             tokens spliced in; clip, AdamW on the Q-Former's query path and
             the adapter.

The Q-Former is tools/twin_qformer.py's math with its sizes as arguments and
its per-element Python loops (attention masks, hard-negative draws) written
as tensor operations, so the framework rather than the interpreter is timed.
The LM is tools/twin_decoder.py's llama_forward, imported, on the real
weights of data/models/austen-small/model.safetensors.

Run with Debian's torch 1.13:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_WAIT_POLICY=passive \
      /usr/bin/python3 bench/ilm_torch.py --phase 1 --threads 1
A bench, not a test: the twins in tools/ check the numbers against crossrec.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from twin_decoder import llama_forward  # noqa: E402

EPS = 1e-5
ITC, ITM, ITG = 0, 1, 2


# ---- the Q-Former (tools/twin_qformer.py, sized by arguments) ------------------------------
class QFormer:
    def __init__(self, nq, layers, width, heads, ffn, n_kv, d_cf, vocab, max_text, embed, g):
        self.NQ, self.L, self.W, self.NH, self.NKV, self.V = nq, layers, width, heads, n_kv, vocab
        self.HD = width // heads
        self.CLS, self.DEC, self.EOS = vocab - 3, vocab - 2, vocab - 1
        W, Fd = width, ffn
        s = {"query": (nq, W), "cf_w": (n_kv * W, d_cf), "cf_b": (n_kv * W,),
             "cf_type": (2, W), "cf_ln_w": (W,), "cf_ln_b": (W,), "tok_emb": (vocab, W),
             "pos_emb": (max_text, W), "lnf_w": (W,), "lnf_b": (W,),
             "proj_item": (embed, W), "proj_text": (embed, W), "itm_w": (1, W),
             "itm_b": (1,), "logit_scale": (3,)}
        layer = {"ln1_w": (W,), "ln1_b": (W,), "qkv_w": (3 * W, W), "qkv_b": (3 * W,),
                 "proj_w": (W, W), "proj_b": (W,), "lnc_w": (W,), "lnc_b": (W,),
                 "cq_w": (W, W), "cq_b": (W,), "ckv_w": (2 * W, W), "ckv_b": (2 * W,),
                 "co_w": (W, W), "co_b": (W,)}
        for st in "qt":
            layer.update({f"ln2{st}_w": (W,), f"ln2{st}_b": (W,), f"fc1{st}_w": (Fd, W),
                          f"fc1{st}_b": (Fd,), f"fc2{st}_w": (W, Fd), f"fc2{st}_b": (W,)})
        for l in range(layers):
            for k, v in layer.items():
                s[f"layers.{l}.{k}"] = v
        # crossrec's init (qformer.h): weights N(0, 0.02), biases 0, gains 1
        self.P = {}
        for name, shape in s.items():
            if name == "logit_scale":
                t = torch.full(shape, math.log(1 / 0.07))
            elif len(shape) == 1:
                t = torch.ones(shape) if name.endswith("_w") else torch.zeros(shape)
            else:
                t = 0.02 * torch.randn(shape, generator=g)
            self.P[name] = t.float().requires_grad_(True)
        self.layer_p = [{k[len(f"layers.{l}."):]: v for k, v in self.P.items()
                         if k.startswith(f"layers.{l}.")} for l in range(layers)]

    def ln(self, x, P, n):
        return F.layer_norm(x, (self.W,), P[n + "_w"], P[n + "_b"], EPS)

    def mha(self, q, k, v, mask):
        NH, HD, W = self.NH, self.HD, self.W
        Bq, Tq, Tk = q.shape[0], q.shape[1], k.shape[1]
        q = q.reshape(Bq, Tq, NH, HD).transpose(1, 2)
        k = k.reshape(Bq, Tk, NH, HD).transpose(1, 2)
        v = v.reshape(Bq, Tk, NH, HD).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(HD)
        if mask is not None:
            s = s + mask[:, None]
        return (s.softmax(-1) @ v).transpose(1, 2).reshape(Bq, Tq, W)

    def make_mask(self, mode, lens, n, t):
        """BLIP-2's masks as tensors: padding is never seen; ITM sees all,
        ITC keeps queries and text apart, ITG lets text see the queries and
        earlier text, the queries only each other."""
        NQ, S = self.NQ, self.NQ + t
        i = torch.arange(S)
        q = i < NQ
        valid = q[None, :] | ((i[None, :] - NQ) < lens[:, None])  # (n, S) keys
        if mode == ITM:
            vis = torch.ones(S, S, dtype=torch.bool)
        elif mode == ITC:
            vis = q[:, None] == q[None, :]
        else:
            vis = q[None, :] | (~q[:, None] & (i[None, :] <= i[:, None]))
        vis = vis[None] & valid[:, None, :]
        m = torch.zeros(n, S, S)
        return m.masked_fill(~vis, float("-inf"))

    def forward(self, cf, kind, ids, lens, mode):
        P, NQ, W, NKV = self.P, self.NQ, self.W, self.NKV
        n = cf.shape[0]
        t = 0 if ids is None else ids.shape[1]
        kv = (cf @ P["cf_w"].T + P["cf_b"]).view(n, NKV, W) + P["cf_type"][kind][:, None, :]
        kv = self.ln(kv, P, "cf_ln")
        x = P["query"].expand(n, NQ, W)
        mask = None
        if t:
            ids2 = ids.clone()
            ids2[:, 0] = self.DEC if mode == ITG else self.CLS
            ids2 = ids2.masked_fill(torch.arange(t)[None, :] >= lens[:, None], self.EOS)
            x = torch.cat([x, P["tok_emb"][ids2] + P["pos_emb"][:t]], 1)
            mask = self.make_mask(mode, lens, n, t)
        elif mode != ITC:
            raise ValueError("queries alone run in ITC mode")
        for p in self.layer_p:
            h = self.ln(x, p, "ln1")
            q, k, v = (h @ p["qkv_w"].T + p["qkv_b"]).split(W, -1)
            x = x + self.mha(q, k, v, mask) @ p["proj_w"].T + p["proj_b"]
            xq, xt = x[:, :NQ], x[:, NQ:]
            cq = self.ln(xq, p, "lnc") @ p["cq_w"].T + p["cq_b"]
            ck, cv = (kv @ p["ckv_w"].T + p["ckv_b"]).split(W, -1)
            xq = xq + self.mha(cq, ck, cv, None) @ p["co_w"].T + p["co_b"]

            def ffn(z, st):
                h = F.gelu(self.ln(z, p, "ln2" + st) @ p[f"fc1{st}_w"].T + p[f"fc1{st}_b"],
                           approximate="tanh")
                return z + h @ p[f"fc2{st}_w"].T + p[f"fc2{st}_b"]
            x = torch.cat([ffn(xq, "q"), ffn(xt, "t")], 1) if t else ffn(xq, "q")
        out = self.ln(x, P, "lnf")
        return out[:, :NQ], out[:, NQ:]


def scale(P, i):
    return P["logit_scale"][i].clamp(max=math.log(100)).exp()


def infonce(logits, excl=None):
    if excl is not None:
        logits = logits.masked_fill(excl, float("-inf"))
    lab = torch.arange(logits.shape[0])
    return 0.5 * (F.cross_entropy(logits, lab) + F.cross_entropy(logits.T, lab))


def draw(L, u):
    """Row-wise inverse CDF over softmax(L[i]) without the anchor i, in double."""
    L = L.double().clone()
    n = L.shape[0]
    L.fill_diagonal_(float("-inf"))
    w = (L - L.max(1, keepdim=True).values).exp()
    cdf = w.cumsum(1)
    x = (u.double() * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, x, right=True)[:, 0].clamp(max=n - 1)


def phase1_losses(m, bt, ii, ui):
    P, B = m.P, bt["cf"].shape[0]
    zero = torch.zeros(B, dtype=torch.long)
    oq, ot = m.forward(bt["cf"], zero, bt["ids"], bt["len"], ITC)
    zq = F.normalize(oq @ P["proj_item"].T, dim=-1)
    zt = F.normalize(ot[:, 0] @ P["proj_text"].T, dim=-1)
    sim = torch.einsum("bke,ce->bck", zq, zt).max(-1).values
    logits = scale(P, 0) * sim
    l_itc = infonce(logits)
    L = logits.detach()
    neg_t = draw(L, bt["u"][:B])
    neg_i = draw(L.T, bt["u"][B:])
    ar = torch.arange(B)
    items = torch.cat([ar, ar, neg_i])
    texts = torch.cat([ar, neg_t, ar])
    oq3, _ = m.forward(bt["cf"][items], torch.zeros(3 * B, dtype=torch.long), bt["ids"][texts],
                       bt["len"][texts], ITM)
    logit = (oq3.mean(1) @ P["itm_w"].T + P["itm_b"])[:, 0]
    y = torch.cat([torch.ones(B), torch.zeros(2 * B)])
    l_itm = F.binary_cross_entropy_with_logits(logit, y)
    _, og = m.forward(bt["cf"], zero, bt["ids"], bt["len"], ITG)
    T = bt["ids"].shape[1]
    glog = og @ P["tok_emb"].T
    l_itg = F.cross_entropy(glog.reshape(B * T, m.V), bt["tgt"].reshape(-1), ignore_index=-1)

    def pair(pb, kinds, si):
        cf = torch.cat([pb["a"], pb["b"]])
        kind = torch.tensor([kinds[0]] * B + [kinds[1]] * B)
        o, _ = m.forward(cf, kind, None, None, ITC)
        z = F.normalize(o.mean(1) @ P["proj_item"].T, dim=-1)
        lg = scale(P, si) * z[:B] @ z[B:].T
        ka, kb = pb["key_a"], pb["key_b"]
        excl = (ka[:, None] == ka[None, :]) | (kb[:, None] == kb[None, :])
        excl &= ~torch.eye(B, dtype=torch.bool)
        return infonce(lg, excl)
    return l_itc + l_itm + l_itg + pair(ii, (0, 0), 1) + pair(ui, (1, 0), 2)


def adamw(params, lr, wd):
    """AdamW as the phase loops configure it (betas 0.9, 0.999, eps 1e-8);
    matrices decay, vectors do not, as in tools/twin_qformer.py."""
    decay = [p for p in params if p.dim() == 2]
    nodecay = [p for p in params if p.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                              {"params": nodecay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def timed(step, seconds):
    """2 warm-up steps, then at least 5 until `seconds` pass: (times, wall, cpu)."""
    for _ in range(2):
        loss = step()
    ts, total = [], 0.0
    c0, w0 = time.process_time(), time.perf_counter()
    while len(ts) < 5 or (total < seconds and len(ts) < 4096):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        ts.append(dt)
        total += dt
    if not math.isfinite(loss):
        raise SystemExit("bench ilm_torch: the loss is not finite")
    return ts, time.perf_counter() - w0, time.process_time() - c0, loss


def report(ph, B, ts, wall, cpu, loss):
    med = statistics.median_high(ts) if len(ts) % 2 == 0 else statistics.median(ts)
    print(f"{ph}_examples_per_s: {B / med:.1f}")
    print(f"{ph}_ms_per_step: {med * 1e3:.3f}")
    print(f"{ph}_steps: {len(ts)}")
    print(f"{ph}_cpu_share: {cpu / wall if wall > 0 else 0:.2f}")
    print(f"{ph}_last_loss: {loss:.4f}")


def phase1(seconds):
    B, T, D, V, NU, NI = 32, 32, 32, 2051, 600, 2000
    g = torch.Generator().manual_seed(1)
    m = QFormer(8, 2, 64, 4, 256, 4, D, V, T, 64, g)
    # text lengths 12..32 by the rule of bench/ilm.c
    lens = torch.tensor([12 + (b * 7) % (T - 11) for b in range(B)])
    ids = torch.randint(0, V - 3, (B, T), generator=g)
    ids[:, 0] = m.CLS
    ids[torch.arange(B), lens - 1] = m.EOS
    tgt = torch.full((B, T), -1, dtype=torch.long)
    for b in range(B):
        tgt[b, :lens[b] - 1] = ids[b, 1:lens[b]]
    bt = {"cf": 0.3 * torch.randn(B, D, generator=g), "ids": ids, "len": lens, "tgt": tgt,
          "u": torch.rand(2 * B, generator=g)}
    pairs = []
    for na in (NI, NU):
        pairs.append({"a": 0.3 * torch.randn(B, D, generator=g),
                      "b": 0.3 * torch.randn(B, D, generator=g),
                      "key_a": torch.randint(0, na, (B,), generator=g),
                      "key_b": torch.randint(0, NI, (B,), generator=g)})
    params = list(m.P.values())
    opt = adamw(params, 1e-3, 0.05)
    print(f"phase1_shape: B {B}, T {T}, NQ 8, W 64, layers 2, heads 4, ffn 256, kv 4, D {D}, V {V}")

    def step():
        opt.zero_grad(set_to_none=False)
        loss = phase1_losses(m, bt, pairs[0], pairs[1])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()
    report("phase1", B, *timed(step, seconds))


# ---- phase 2 ---------------------------------------------------------------------------------
def load_decoder(path):
    """crossrec's decoder safetensors: tensors by C name, config in
    __metadata__["decoder"] (read here without the safetensors package)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    cfg = json.loads(hdr.pop("__metadata__")["decoder"])
    P = {}
    for name, h in hdr.items():
        a, b = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(h["shape"])
        P[name] = t.requires_grad_(False)  # frozen: no weight gradients at all
    return P, cfg


def phase2(seconds, lm_path, T, E, ntgt):
    B, NQ, D, NI, NU = 8, 4, 32, 2000, 600
    g = torch.Generator().manual_seed(2)
    LP, cfg = load_decoder(lm_path)
    C, V = cfg["dim"], cfg["vocab"]
    qf = QFormer(NQ, 2, 64, 4, 256, 4, D, 1024 + 3, 32, 64, g)
    emb_rms = LP["tok_emb"].pow(2).mean().sqrt().item()
    ad_w = (emb_rms / math.sqrt(64) * torch.randn(C, 64, generator=g)).requires_grad_(True)
    ad_b = torch.zeros(C, requires_grad=True)
    # the query path only: phase 2 freezes the text branch and the heads
    frozen = ("tok_emb", "pos_emb", "proj_item", "proj_text", "itm_w", "itm_b", "logit_scale",
              "ln2t_", "fc1t_", "fc2t_")
    train = [p for k, p in qf.P.items() if not any(f in k for f in frozen)]
    train += [ad_w, ad_b]
    opt = adamw(train, 1e-3, 0.01)
    cf = 0.3 * torch.randn(E, D, generator=g)
    kind = torch.zeros(E, dtype=torch.long)
    kind[0] = 1
    # a layout like cr_p2_batch_add's: per row BOS, a prompt with the row's
    # entities' NQ soft tokens after a few words, the target at the end
    ids = torch.randint(0, V, (B, T), generator=g)
    soft = torch.full((B, T), -1, dtype=torch.long)
    for e in range(E):
        r = e % B
        col = 4 + (e // B) * (NQ + 2)
        soft[r, col:col + NQ] = torch.arange(e * NQ, (e + 1) * NQ)
    tgt = torch.full((B, T), -1, dtype=torch.long)
    per = ntgt // B
    for r in range(B):
        n = per + (1 if r < ntgt % B else 0)
        tgt[r, T - 1 - n:T - 1] = ids[r, T - n:T]
    pos = (soft >= 0).nonzero(as_tuple=True)
    src = soft[pos]
    print(f"phase2_shape: B {B}, T {T}, entities {E}, soft tokens {E * NQ}, targets {ntgt}, "
          f"NQ {NQ}, LM width {C}, layers {cfg['n_layers']}, V {V}")
    print(f"phase2_trainable: {sum(p.numel() for p in train)}")

    def step():
        opt.zero_grad(set_to_none=False)
        oq, _ = qf.forward(cf, kind, None, None, ITC)
        st = (oq @ ad_w.T + ad_b).reshape(E * NQ, C)
        x = LP["tok_emb"][ids].index_put((pos[0], pos[1]), st[src])
        logits = llama_forward(LP, cfg, x)
        loss = F.cross_entropy(logits.reshape(B * T, V), tgt.reshape(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train, 1.0)
        opt.step()
        return loss.item()
    report("phase2", B, *timed(step, seconds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phase", type=int, choices=(1, 2), default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--lm", default=os.path.join(HERE, "..", "data", "models", "austen-small",
                                                 "model.safetensors"))
    # the phase-2 batch bench/ilm.c builds (it prints phase2_T, _entities, _targets)
    ap.add_argument("--p2-T", type=int, default=80)
    ap.add_argument("--p2-entities", type=int, default=11)
    ap.add_argument("--p2-targets", type=int, default=197)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"threads: {torch.get_num_threads()}")
    if a.phase == 1:
        phase1(a.seconds)
    else:
        phase2(a.seconds, a.lm, a.p2_T, a.p2_entities, a.p2_targets)


if __name__ == "__main__":
    main()
