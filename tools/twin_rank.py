#!/usr/bin/python3
"""twin_rank.py - PyTorch twin of the multi-task ranker (src/rank/ranker.c,
src/rank/loss.c; the math is in docs/ranker.md).

Builds the same model at a tiny size, for shared_bottom, mmoe and ple:
three categorical features (user; item and last_item sharing the item
table), one multi-valued feature (genres, mean pooling, some empty bags),
two dense values, three tasks (click and like binary, rating regression,
with masks and per-example weights) and B = 8. The mmoe case adds a
never-served head on the click tower trained on a soft-label column of
batch.extra (unmasked) and uses uncertainty loss weighting; the ple case
adds one masked by the click task. For each case it writes
tests/fixtures/rank_<arch>.safetensors holding

  __metadata__["config"]   the model config and the schema, as JSON
  batch.*                  cat ids (I32), bag offsets (I64) and ids (I32),
                           dense, label, mask, weight, extra
  init.<name>              every initial parameter and table, C names
  out                      (n_heads, B) raw head outputs
  loss.heads, loss.total   per-head (unweighted, normalised) and total loss
  grad.<name>              every gradient; tables dense-shaped
  steps.loss               the loss before each of 5 optimizer steps
                           (Adam on dense params, SparseAdam on tables)
  final.<name>             every parameter after the 5 steps

tests/test_twin_rank.c replays them. Needs only torch (the safetensors file
is written by hand). Run with Debian's interpreter from the repository root:

    /usr/bin/python3 tools/twin_rank.py [outdir]
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

B = 8
STEPS = 5
TABLES = [("user", 12, 4), ("item", 16, 4), ("genre", 10, 4)]
CAT = [("user", 0), ("item", 1), ("last_item", 1)]  # (feature, table)
MULTI = [("genres", 2, "mean")]
N_DENSE = 2
TASKS = [("click", "binary", 1.0), ("like", "binary", 0.5), ("rating", "regression", 0.25)]
N_EXTRA = 1
EMB_INIT = 0.05


def f32(x):
    """The float32 value nearest x, as a Python float."""
    return torch.tensor(x, dtype=torch.float32).item()


LR = f32(0.01)
BETA1, BETA2, EPS = f32(0.9), f32(0.999), f32(1e-8)


def default_heads():
    return [{"name": n, "tower": k, "kind": kind, "served": 1, "target_kind": "label",
             "target": k, "mask_task": k, "weight": w}
            for k, (n, kind, w) in enumerate(TASKS)]


def case_configs():
    sb = {"arch": "shared_bottom", "bottom_layers": [16, 8], "n_experts": 0,
          "shared_experts": 0, "task_experts": 0, "expert_layers": [],
          "tower_layers": [4], "loss_weighting": "fixed", "heads": default_heads()}
    mmoe = {"arch": "mmoe", "bottom_layers": [], "n_experts": 3, "shared_experts": 0,
            "task_experts": 0, "expert_layers": [8, 6], "tower_layers": [4],
            "loss_weighting": "uncertainty",
            "heads": default_heads() + [
                {"name": "click_soft", "tower": 0, "kind": "binary", "served": 0,
                 "target_kind": "extra", "target": 0, "mask_task": -1, "weight": 0.5}]}
    ple = {"arch": "ple", "bottom_layers": [], "n_experts": 0, "shared_experts": 2,
           "task_experts": 1, "expert_layers": [6], "tower_layers": [5, 3],
           "loss_weighting": "fixed",
           "heads": default_heads() + [
               {"name": "click_soft", "tower": 0, "kind": "binary", "served": 0,
                "target_kind": "extra", "target": 0, "mask_task": 0, "weight": 0.5}]}
    return [sb, mmoe, ple]


class Ranker(nn.Module):
    """The C model, module for module. x = [user | item | last_item | genres | dense]."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        K = len(TASKS)
        self.emb = nn.ModuleDict()
        for ti, (name, rows, dim) in enumerate(TABLES):
            if any(t == ti for _, t, _ in MULTI):
                m = nn.EmbeddingBag(rows, dim, mode="mean", sparse=True,
                                    include_last_offset=True)
            else:
                m = nn.Embedding(rows, dim, sparse=True)
            nn.init.uniform_(m.weight, -EMB_INIT, EMB_INIT)
            self.emb[name] = m
        C = sum(TABLES[t][2] for _, t in CAT) + sum(TABLES[t][2] for _, t, _ in MULTI) + N_DENSE
        self.C = C
        arch = cfg["arch"]
        if arch == "shared_bottom":
            self.bottom = nn.ModuleList()
            prev = C
            for h in cfg["bottom_layers"]:
                self.bottom.append(nn.Linear(prev, h))
                prev = h
            tower_in = prev
        else:
            if arch == "mmoe":
                E, S = cfg["n_experts"], cfg["n_experts"]
                self.sel = [list(range(E)) for _ in range(K)]
            else:
                SH, TE = cfg["shared_experts"], cfg["task_experts"]
                E, S = SH + K * TE, SH + TE
                self.sel = [list(range(SH)) + [SH + k * TE + j for j in range(TE)]
                            for k in range(K)]
            self.E = E
            dims = cfg["expert_layers"]
            # layer 0 of all experts stacked into one Linear; later layers per expert
            self.exp0 = nn.Linear(C, E * dims[0])
            self.exp_w = nn.ParameterList()
            self.exp_b = nn.ParameterList()
            for i in range(1, len(dims)):
                lin = [nn.Linear(dims[i - 1], dims[i]) for _ in range(E)]
                self.exp_w.append(nn.Parameter(torch.stack([l.weight.detach() for l in lin])))
                self.exp_b.append(nn.Parameter(torch.stack([l.bias.detach() for l in lin])))
            self.gates = nn.ModuleList([nn.Linear(C, S) for _ in range(K)])
            tower_in = dims[-1]
        self.towers = nn.ModuleList()
        for _ in range(K):
            layers = nn.ModuleList()
            prev = tower_in
            for h in cfg["tower_layers"]:
                layers.append(nn.Linear(prev, h))
                prev = h
            self.towers.append(layers)
        self.tower_out = prev
        self.heads = nn.ModuleList([nn.Linear(self.tower_out, 1) for _ in cfg["heads"]])
        self.n_served = sum(h["served"] for h in cfg["heads"])
        if cfg["loss_weighting"] == "uncertainty":
            self.log_var = nn.Parameter(torch.zeros(self.n_served))

    def named_c(self):
        """(C name, parameter) for every dense parameter, then every table."""
        out = []
        cfg = self.cfg
        if cfg["arch"] == "shared_bottom":
            for i, l in enumerate(self.bottom):
                out += [(f"bottom.l{i}.weight", l.weight), (f"bottom.l{i}.bias", l.bias)]
        else:
            out += [("experts.l0.weight", self.exp0.weight), ("experts.l0.bias", self.exp0.bias)]
            for i in range(len(self.exp_w)):
                out += [(f"experts.l{i + 1}.weight", self.exp_w[i]),
                        (f"experts.l{i + 1}.bias", self.exp_b[i])]
            for k, g in enumerate(self.gates):
                out += [(f"gates.{k}.weight", g.weight), (f"gates.{k}.bias", g.bias)]
        for k, t in enumerate(self.towers):
            for i, l in enumerate(t):
                out += [(f"towers.{k}.l{i}.weight", l.weight), (f"towers.{k}.l{i}.bias", l.bias)]
        for h, l in zip(cfg["heads"], self.heads):
            out += [(f"heads.{h['name']}.weight", l.weight), (f"heads.{h['name']}.bias", l.bias)]
        if cfg["loss_weighting"] == "uncertainty":
            out.append(("loss.log_var", self.log_var))
        dense = out
        tables = [(f"emb.{name}", self.emb[name].weight) for name, _, _ in TABLES]
        return dense, tables

    def forward(self, batch):
        cols = []
        for j, (_, t) in enumerate(CAT):
            cols.append(self.emb[TABLES[t][0]](batch["cat"][:, j].long()))
        for j, (_, t, _) in enumerate(MULTI):
            cols.append(self.emb[TABLES[t][0]](batch["bag_ids"][j].long(),
                                               batch["bag_off"][j]))
        cols.append(batch["dense"])
        x = torch.cat(cols, dim=1)
        K = len(TASKS)
        if self.cfg["arch"] == "shared_bottom":
            z = x
            for l in self.bottom:
                z = F.relu(l(z))
            tin = [z] * K
        else:
            H0 = self.cfg["expert_layers"][0]
            h = F.relu(self.exp0(x)).view(x.shape[0], self.E, H0)  # (B, E, H0)
            for w, b in zip(self.exp_w, self.exp_b):
                h = F.relu(torch.einsum("beh,eoh->beo", h, w) + b)
            tin = []
            for k in range(K):
                g = F.softmax(self.gates[k](x), dim=-1)  # (B, S)
                tin.append(torch.einsum("bs,bsh->bh", g, h[:, self.sel[k], :]))
        touts = []
        for k in range(K):
            t = tin[k]
            for l in self.towers[k]:
                t = F.relu(l(t))
            touts.append(t)
        outs = [l(touts[h["tower"]]).squeeze(1) for h, l in zip(self.cfg["heads"], self.heads)]
        return torch.stack(outs)  # (n_heads, B)


def loss_fn(model, out, batch):
    """docs/ranker.md: per-head masked, weighted mean; fixed or uncertainty weights."""
    cfg = model.cfg
    total = torch.zeros((), dtype=torch.float64)
    head_losses = []
    k = 0
    for i, h in enumerate(cfg["heads"]):
        p = out[i]
        y = batch["label"][h["target"]] if h["target_kind"] == "label" \
            else batch["extra"][h["target"]]
        m = batch["mask"][h["mask_task"]] if h["mask_task"] >= 0 else torch.ones(B)
        c = m * batch["weight"]
        if h["kind"] == "binary":
            l = F.binary_cross_entropy_with_logits(p, y, reduction="none")
        else:
            l = (p - y) ** 2
        norm = c.double().sum()
        L = (c.double() * l.double()).sum() / norm if norm > 0 else torch.zeros((), dtype=torch.float64)
        head_losses.append(L)
        if cfg["loss_weighting"] == "uncertainty" and h["served"]:
            s = model.log_var[k].double()
            total = total + torch.exp(-s) * h["weight"] * L + s
            k += 1
        else:
            total = total + h["weight"] * L
    return total, torch.stack(head_losses)


def make_batch(g):
    cat = torch.stack([torch.randint(0, TABLES[t][1], (B,), generator=g)
                       for _, t in CAT], dim=1).to(torch.int32)
    cat[3, 2] = cat[3, 1]  # last_item == item in one row: a row read twice by one example
    cat[5, 1] = cat[0, 1]  # and the same item in two rows
    lens = [2, 0, 3, 1, 0, 2, 1, 3]  # empty bags at rows 1 and 4
    off = torch.tensor([0] + list(torch.tensor(lens).cumsum(0)), dtype=torch.int64)
    ids = torch.randint(0, TABLES[2][1], (int(off[-1]),), generator=g).to(torch.int32)
    ids[1] = ids[0]  # a repeated id inside one bag
    dense = torch.randn(B, N_DENSE, generator=g)
    click = (torch.rand(B, generator=g) < 0.5).float()
    like = (torch.rand(B, generator=g) < 0.4).float()
    rating = torch.randint(1, 6, (B,), generator=g).float() / 5.0
    label = torch.stack([click, like, rating])
    mask = torch.ones(3, B)
    mask[1, [2, 6]] = 0.0  # like unknown for two rows
    mask[2] = click  # rating only where clicked
    mask[2, 0] = 1.0  # at least one rating
    weight = 0.5 + torch.rand(B, generator=g)
    extra = torch.sigmoid(torch.randn(N_EXTRA, B, generator=g))
    return {"cat": cat, "bag_off": [off], "bag_ids": [ids], "dense": dense, "label": label,
            "mask": mask, "weight": weight, "extra": extra}


def dtype_name(t):
    return {torch.float32: "F32", torch.int32: "I32", torch.int64: "I64",
            torch.float64: "F64"}[t.dtype]


def save_safetensors(path, tensors, metadata):
    """8-byte LE header length, JSON header, raw little-endian bytes."""
    header = {"__metadata__": metadata}
    blobs = []
    off = 0
    for name, t in tensors:
        t = t.detach().contiguous()
        raw = t.numpy().tobytes()
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


def run_case(cfg, seed, outdir):
    torch.manual_seed(seed)
    model = Ranker(cfg)
    g = torch.Generator().manual_seed(seed + 1000)
    batch = make_batch(g)
    dense, tables = model.named_c()

    tensors = [("batch.cat", batch["cat"]), ("batch.bag_off.0", batch["bag_off"][0]),
               ("batch.bag_ids.0", batch["bag_ids"][0]), ("batch.dense", batch["dense"]),
               ("batch.label", batch["label"]), ("batch.mask", batch["mask"]),
               ("batch.weight", batch["weight"]), ("batch.extra", batch["extra"])]
    tensors += [(f"init.{n}", p.detach().clone()) for n, p in dense + tables]

    out = model(batch)
    total, heads = loss_fn(model, out, batch)
    total.backward()
    tensors += [("out", out.detach()), ("loss.heads", heads.detach().float()),
                ("loss.total", total.detach().float().reshape(1))]
    for n, p in dense:
        tensors.append((f"grad.{n}", p.grad.detach().clone()))
    for n, p in tables:
        tensors.append((f"grad.{n}", p.grad.detach().to_dense()))

    # 5 steps on the same batch, from the same initial values
    for _, p in dense + tables:
        p.grad = None
    opt = torch.optim.Adam([p for _, p in dense], lr=LR, betas=(BETA1, BETA2), eps=EPS,
                           foreach=False)
    sopt = torch.optim.SparseAdam([p for _, p in tables], lr=LR, betas=(BETA1, BETA2), eps=EPS)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        sopt.zero_grad()
        total, _ = loss_fn(model, model(batch), batch)
        losses.append(total.item())
        total.backward()
        opt.step()
        sopt.step()
    tensors.append(("steps.loss", torch.tensor(losses, dtype=torch.float32)))
    tensors += [(f"final.{n}", p.detach().clone()) for n, p in dense + tables]

    meta_cfg = dict(cfg)
    meta_cfg["emb_init"] = EMB_INIT
    meta_cfg["schema"] = {
        "tables": [{"name": n, "rows": r, "dim": d} for n, r, d in TABLES],
        "cat": [{"name": n, "table": t} for n, t in CAT],
        "multi": [{"name": n, "table": t, "pooling": p} for n, t, p in MULTI],
        "n_dense": N_DENSE,
        "tasks": [{"name": n, "kind": k, "weight": w} for n, k, w in TASKS],
        "n_extra": N_EXTRA,
    }
    meta_cfg["B"] = B
    meta_cfg["steps"] = STEPS
    meta_cfg["lr"] = LR
    meta_cfg["beta1"], meta_cfg["beta2"], meta_cfg["eps"] = BETA1, BETA2, EPS
    path = os.path.join(outdir, f"rank_{cfg['arch']}.safetensors")
    save_safetensors(path, tensors, {"config": json.dumps(meta_cfg)})
    print(f"{path}: loss {losses[0]:.6f} -> {losses[-1]:.6f}, {os.path.getsize(path)} bytes")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    torch.set_num_threads(1)
    for i, cfg in enumerate(case_configs()):
        run_case(cfg, 1234 + i, outdir)


if __name__ == "__main__":
    main()
