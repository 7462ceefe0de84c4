#!/usr/bin/python3
"""twin_qformer.py - PyTorch twin of the item encoder (src/ilm/qformer*.c)
and its phase-1 losses (src/ilm/phase1_losses.c); the math is in
docs/ilm.md.

Written from the formulas, not from the C code: pre-norm Q-Former layers
(shared self-attention over [queries; text] under BLIP-2's masks, queries'
cross-attention to the CF tokens every layer, separate query and text
feed-forward blocks), final LayerNorm, tied LM head; ITC (max over queries
of the cosine, learnable temperature), ITM (hard negatives by inverse CDF
with given uniforms), ITG, item-item and user-item InfoNCE on pooled query
outputs. Writes tests/fixtures/qf_twin.safetensors at a tiny size:

  init.<name>          every parameter (C names and layouts)
  batch.cf/ids/len/u   an item-text batch (ids I32 [CLS] t.. [EOS], padded)
  ii.a, ii.b, ii.key_a, ii.key_b   an item-item batch (a duplicate key)
  ui.a, ui.b, ui.key_a, ui.key_b   a user-item batch (users as CR_QF_USER)
  out.query, out.text  ITC-mode outputs (B, NQ, W), (B, T, W)
  neg                  (2B) I32 the ITM hard negatives drawn
  loss.<k>             each loss alone (k = itc, itm, itg, ii, ui)
  grad.<k>.<name>      each loss's gradient of every parameter
  steps.loss           the summed loss before each of 3 AdamW steps

tests/test_qformer.c replays it. Needs only torch (safetensors written by
hand). From the repository root:

    /usr/bin/python3 tools/twin_qformer.py [outdir]
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

CFG = dict(nq=3, layers=2, width=16, heads=2, ffn=24, n_kv=2, d_cf=6, vocab=23,
           max_text=7, embed=8)
B, T = 4, 6
LENS = [6, 4, 5, 2]
LR, WD, BETAS, ADAM_EPS, STEPS = 1e-3, 0.05, (0.9, 0.999), 1e-8, 3
EPS = 1e-5
NQ, W, NH, NKV, V = CFG["nq"], CFG["width"], CFG["heads"], CFG["n_kv"], CFG["vocab"]
HD = W // NH
CLS, DEC, EOS = V - 3, V - 2, V - 1
ITC, ITM, ITG = 0, 1, 2
LOSSES = ["itc", "itm", "itg", "ii", "ui"]


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, t in tensors:
        raw = t.detach().contiguous().numpy().tobytes()
        dt = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
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


def param_shapes():
    c = CFG
    Wd, Fd = c["width"], c["ffn"]
    s = {"query": (NQ, Wd), "cf_w": (NKV * Wd, c["d_cf"]), "cf_b": (NKV * Wd,),
         "cf_type": (2, Wd), "cf_ln_w": (Wd,), "cf_ln_b": (Wd,), "tok_emb": (V, Wd),
         "pos_emb": (c["max_text"], Wd), "lnf_w": (Wd,), "lnf_b": (Wd,),
         "proj_item": (c["embed"], Wd), "proj_text": (c["embed"], Wd), "itm_w": (1, Wd),
         "itm_b": (1,), "logit_scale": (3,)}
    layer = {"ln1_w": (Wd,), "ln1_b": (Wd,), "qkv_w": (3 * Wd, Wd), "qkv_b": (3 * Wd,),
             "proj_w": (Wd, Wd), "proj_b": (Wd,), "lnc_w": (Wd,), "lnc_b": (Wd,),
             "cq_w": (Wd, Wd), "cq_b": (Wd,), "ckv_w": (2 * Wd, Wd), "ckv_b": (2 * Wd,),
             "co_w": (Wd, Wd), "co_b": (Wd,)}
    for st in "qt":
        layer.update({f"ln2{st}_w": (Wd,), f"ln2{st}_b": (Wd,), f"fc1{st}_w": (Fd, Wd),
                      f"fc1{st}_b": (Fd,), f"fc2{st}_w": (Wd, Fd), f"fc2{st}_b": (Wd,)})
    for l in range(c["layers"]):
        for k, v in layer.items():
            s[f"layers.{l}.{k}"] = v
    return s


def init_params(g):
    P = {}
    for name, shape in param_shapes().items():
        if name == "logit_scale":
            t = torch.full(shape, math.log(1 / 0.07))
        elif name.split(".")[-1].startswith(("ln", "cf_ln")) and name.endswith("_w"):
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = 0.3 * torch.randn(shape, generator=g)
        P[name] = t.float().requires_grad_(True)
    return P


def ln(x, P, n):
    return F.layer_norm(x, (W,), P[n + "_w"], P[n + "_b"], EPS)


def mha(q, k, v, mask):
    Bq, Tq, Tk = q.shape[0], q.shape[1], k.shape[1]
    q = q.reshape(Bq, Tq, NH, HD).transpose(1, 2)
    k = k.reshape(Bq, Tk, NH, HD).transpose(1, 2)
    v = v.reshape(Bq, Tk, NH, HD).transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(HD)
    if mask is not None:
        s = s + mask[:, None]
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(Bq, Tq, W)


def make_mask(mode, lens, n, t):
    S = NQ + t
    m = torch.zeros(n, S, S)
    for b in range(n):
        for i in range(S):
            for j in range(S):
                iq, jq = i < NQ, j < NQ
                if not jq and j - NQ >= lens[b]:
                    vis = False
                elif mode == ITM:
                    vis = True
                elif mode == ITC:
                    vis = iq == jq
                else:
                    vis = jq or (not iq and j <= i)
                if not vis:
                    m[b, i, j] = float("-inf")
    return m


def qformer(P, cf, kind, ids, lens, mode):
    n = cf.shape[0]
    t = 0 if ids is None else ids.shape[1]
    kv = (cf @ P["cf_w"].T + P["cf_b"]).view(n, NKV, W) + P["cf_type"][kind][:, None, :]
    kv = ln(kv, P, "cf_ln")
    x = P["query"].expand(n, NQ, W)
    if t:
        ids2 = ids.clone().long()
        ids2[:, 0] = DEC if mode == ITG else CLS
        for b in range(n):
            ids2[b, lens[b]:] = EOS
        x = torch.cat([x, P["tok_emb"][ids2] + P["pos_emb"][:t]], 1)
    mask = make_mask(mode, lens if t else [0] * n, n, t)
    for l in range(CFG["layers"]):
        p = {k[len(f"layers.{l}."):]: v for k, v in P.items() if k.startswith(f"layers.{l}.")}
        h = ln(x, p, "ln1")
        q, k, v = (h @ p["qkv_w"].T + p["qkv_b"]).split(W, -1)
        x = x + mha(q, k, v, mask) @ p["proj_w"].T + p["proj_b"]
        xq, xt = x[:, :NQ], x[:, NQ:]
        cq = ln(xq, p, "lnc") @ p["cq_w"].T + p["cq_b"]
        ck, cv = (kv @ p["ckv_w"].T + p["ckv_b"]).split(W, -1)
        xq = xq + mha(cq, ck, cv, None) @ p["co_w"].T + p["co_b"]

        def ffn(z, st):
            h = F.gelu(ln(z, p, "ln2" + st) @ p[f"fc1{st}_w"].T + p[f"fc1{st}_b"],
                       approximate="tanh")
            return z + h @ p[f"fc2{st}_w"].T + p[f"fc2{st}_b"]
        x = torch.cat([ffn(xq, "q"), ffn(xt, "t")], 1)
    out = ln(x, P, "lnf")
    return out[:, :NQ], out[:, NQ:]


def scale(P, i):
    return P["logit_scale"][i].clamp(max=math.log(100)).exp()


def infonce(logits, excl=None):
    if excl is not None:
        logits = logits.masked_fill(excl, float("-inf"))
    lab = torch.arange(logits.shape[0])
    return 0.5 * (F.cross_entropy(logits, lab) + F.cross_entropy(logits.T, lab))


def itc(P, bt):
    oq, ot = qformer(P, bt["cf"], torch.zeros(B, dtype=torch.long), bt["ids"], bt["len"], ITC)
    zq = F.normalize(oq @ P["proj_item"].T, dim=-1)
    zt = F.normalize(ot[:, 0] @ P["proj_text"].T, dim=-1)
    sim = torch.einsum("bke,ce->bck", zq, zt).max(-1).values
    logits = scale(P, 0) * sim
    return infonce(logits), logits, oq, ot


def draw(L, anchor, u):
    """inverse CDF over softmax(L) without the anchor, in double"""
    L = L.double()
    mx = max(L[j].item() for j in range(len(L)) if j != anchor)
    w = [0.0 if j == anchor else math.exp(L[j].item() - mx) for j in range(len(L))]
    tot, cum, last = sum(w), 0.0, None
    for j in range(len(L)):
        if j == anchor:
            continue
        cum += w[j]
        last = j
        if u * tot < cum:
            return j
    return last


def itm(P, bt, logits):
    L = logits.detach()
    neg_t = [draw(L[i], i, bt["u"][i].item()) for i in range(B)]
    neg_i = [draw(L[:, j], j, bt["u"][B + j].item()) for j in range(B)]
    items = list(range(B)) + list(range(B)) + neg_i
    texts = list(range(B)) + neg_t + list(range(B))
    cf = bt["cf"][items]
    ids = bt["ids"][texts]
    lens = [bt["len"][t] for t in texts]
    oq, _ = qformer(P, cf, torch.zeros(3 * B, dtype=torch.long), ids, lens, ITM)
    logit = (oq.mean(1) @ P["itm_w"].T + P["itm_b"])[:, 0]
    y = torch.tensor([1.0] * B + [0.0] * (2 * B))
    return F.binary_cross_entropy_with_logits(logit, y), neg_t + neg_i


def itg(P, bt):
    _, ot = qformer(P, bt["cf"], torch.zeros(B, dtype=torch.long), bt["ids"], bt["len"], ITG)
    logits = ot @ P["tok_emb"].T
    tgt = torch.full((B, T), -1, dtype=torch.long)
    for b in range(B):
        tgt[b, :bt["len"][b] - 1] = bt["ids"][b, 1:bt["len"][b]].long()
    return F.cross_entropy(logits.reshape(B * T, V), tgt.reshape(-1), ignore_index=-1)


def pair(P, pb, kinds, si):
    cf = torch.cat([pb["a"], pb["b"]])
    kind = torch.tensor([kinds[0]] * B + [kinds[1]] * B)
    oq, _ = qformer(P, cf, kind, None, None, ITC)
    z = F.normalize(oq.mean(1) @ P["proj_item"].T, dim=-1)
    logits = scale(P, si) * z[:B] @ z[B:].T
    ka, kb = pb["key_a"], pb["key_b"]
    excl = (ka[:, None] == ka[None, :]) | (kb[:, None] == kb[None, :])
    excl &= ~torch.eye(B, dtype=torch.bool)
    return infonce(logits, excl)


def all_losses(P, bt, ii, ui):
    l_itc, logits, oq, ot = itc(P, bt)
    l_itm, neg = itm(P, bt, logits)
    return {"itc": l_itc, "itm": l_itm, "itg": itg(P, bt), "ii": pair(P, ii, (0, 0), 1),
            "ui": pair(P, ui, (1, 0), 2)}, neg, oq, ot


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    g = torch.Generator().manual_seed(1234)
    P = init_params(g)
    D = CFG["d_cf"]
    ids = torch.randint(0, V - 3, (B, T), generator=g).int()
    for b in range(B):
        ids[b, 0] = CLS
        ids[b, LENS[b] - 1] = EOS
        ids[b, LENS[b]:] = 0
    bt = {"cf": torch.randn(B, D, generator=g), "ids": ids, "len": LENS,
          "u": torch.rand(2 * B, generator=g)}
    ii = {"a": torch.randn(B, D, generator=g), "b": torch.randn(B, D, generator=g),
          "key_a": torch.tensor([5, 6, 7, 8]), "key_b": torch.tensor([1, 2, 1, 3])}
    ui = {"a": torch.randn(B, D, generator=g), "b": torch.randn(B, D, generator=g),
          "key_a": torch.tensor([0, 1, 2, 3]), "key_b": torch.tensor([4, 5, 6, 7])}
    tensors = [("init." + k, v.detach().clone()) for k, v in P.items()]
    tensors += [("batch.cf", bt["cf"]), ("batch.ids", ids),
                ("batch.len", torch.tensor(LENS, dtype=torch.int32)), ("batch.u", bt["u"])]
    for nm, pb in (("ii", ii), ("ui", ui)):
        tensors += [(f"{nm}.a", pb["a"]), (f"{nm}.b", pb["b"]),
                    (f"{nm}.key_a", pb["key_a"].int()), (f"{nm}.key_b", pb["key_b"].int())]
    losses, neg, oq, ot = all_losses(P, bt, ii, ui)
    tensors += [("out.query", oq.detach()), ("out.text", ot.detach()),
                ("neg", torch.tensor(neg, dtype=torch.int32))]
    for k in LOSSES:
        for p in P.values():
            p.grad = None
        losses, _, _, _ = all_losses(P, bt, ii, ui)
        losses[k].backward()
        tensors.append((f"loss.{k}", losses[k].detach().reshape(1)))
        for name, p in P.items():
            gr = p.grad if p.grad is not None else torch.zeros_like(p)
            tensors.append((f"grad.{k}.{name}", gr.detach().clone()))
    decay = [p for n, p in P.items() if p.dim() == 2]
    nodecay = [p for n, p in P.items() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=ADAM_EPS)
    steps = []
    for _ in range(STEPS):
        opt.zero_grad()
        losses, _, _, _ = all_losses(P, bt, ii, ui)
        tot = sum(losses.values())
        steps.append(tot.item())
        tot.backward()
        opt.step()
    tensors.append(("steps.loss", torch.tensor(steps, dtype=torch.float32)))
    meta = {k: str(v) for k, v in CFG.items()}
    meta.update({"B": str(B), "T": str(T), "lr": str(LR), "weight_decay": str(WD)})
    save_safetensors(os.path.join(outdir, "qf_twin.safetensors"), tensors, meta)
    print("wrote", os.path.join(outdir, "qf_twin.safetensors"), {k: round(v.item(), 5)
                                                                 for k, v in losses.items()})


if __name__ == "__main__":
    main()
