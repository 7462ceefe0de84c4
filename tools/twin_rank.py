#!/usr/bin/python3
"""twin_rank.py - the test fixtures of the multi-task ranker (src/rank/ranker_forward.c,
src/rank/rank_loss.c; the math is in docs/ranker.md), written by its PyTorch
twin tools/torch_ranker.py, the model bench/rank_torch.py and
bench/serve_torch.py time.

Builds the model at a tiny size, for shared_bottom, mmoe and ple:
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
  init.<name>              every initial parameter and table, C names and
                           shapes (the twin's fused layout translated back)
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ranker  # noqa: E402

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
    return torch_ranker.default_heads([(n, kind) for n, kind, _ in TASKS],
                                      [w for _, _, w in TASKS])


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


def build(cfg):
    """The shared twin for one case; initial values drawn in the C model's
    parameter order from the global generator."""
    spec = torch_ranker.make_spec(TABLES, CAT, MULTI, N_DENSE, len(TASKS))
    model = torch_ranker.Ranker(spec, dict(cfg, experts=cfg["n_experts"]))

    def table_init(t):
        nn.init.normal_(t)  # drawn and overwritten, as nn.Embedding's constructor did
        nn.init.uniform_(t, -EMB_INIT, EMB_INIT)  # when these fixtures were first written
    model.reset_parameters(table_init=table_init)
    return model


def forward(model, batch):
    cats, bags = batch["enc"]
    return model(cats, bags, batch["dense"])


def loss_fn(model, out, batch):
    """docs/ranker.md, accumulated in double precision."""
    return model.loss(out, batch["label"], batch["mask"], batch["weight"], batch["extra"],
                      dtype=torch.float64)


def run_case(cfg, seed, outdir):
    torch.manual_seed(seed)
    model = build(cfg)
    g = torch.Generator().manual_seed(seed + 1000)
    batch = make_batch(g)
    batch["enc"] = model.encode(batch["cat"], list(zip(batch["bag_ids"], batch["bag_off"])))
    dense_names, table_names = model.c_names()

    tensors = [("batch.cat", batch["cat"]), ("batch.bag_off.0", batch["bag_off"][0]),
               ("batch.bag_ids.0", batch["bag_ids"][0]), ("batch.dense", batch["dense"]),
               ("batch.label", batch["label"]), ("batch.mask", batch["mask"]),
               ("batch.weight", batch["weight"]), ("batch.extra", batch["extra"])]
    init = model.c_tensors()
    tensors += [(f"init.{n}", init[n]) for n in dense_names + table_names]

    out = forward(model, batch)
    total, heads = loss_fn(model, out, batch)
    total.backward()
    tensors += [("out", out.detach()), ("loss.heads", heads.detach().float()),
                ("loss.total", total.detach().float().reshape(1))]
    grad = model.c_tensors(grad=True)
    tensors += [(f"grad.{n}", grad[n]) for n in dense_names + table_names]

    # 5 steps on the same batch, from the same initial values. Adam is
    # elementwise and SparseAdam per row, so stepping the fused parameters
    # is stepping the C model's.
    model.zero_grad(set_to_none=True)
    opt = torch.optim.Adam(model.dense_params(), lr=LR, betas=(BETA1, BETA2), eps=EPS,
                           foreach=False)
    sopt = torch.optim.SparseAdam(model.table_params(), lr=LR, betas=(BETA1, BETA2), eps=EPS)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        sopt.zero_grad()
        total, _ = loss_fn(model, forward(model, batch), batch)
        losses.append(total.item())
        total.backward()
        opt.step()
        sopt.step()
    tensors.append(("steps.loss", torch.tensor(losses, dtype=torch.float32)))
    final = model.c_tensors()
    tensors += [(f"final.{n}", final[n]) for n in dense_names + table_names]

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
