#!/usr/bin/python3
"""twin_optim.py - PyTorch twin of src/train/optim.c.

Runs torch.optim.Adam, AdamW and SGD over two small dense tensors (a weight
that is decayed and a bias that is not: torch's two param groups), and
torch.optim.Adagrad, SparseAdam and plain SGD over a small embedding table
with row-sparse gradients, for 5 steps each with fixed per-step gradients
and a per-step learning rate; also one torch.nn.utils.clip_grad_norm_. The
parameters after every step go to tests/fixtures/optim_twin.safetensors,
which tests/test_optim.c replays. Needs only torch (no safetensors module:
the file is written by hand). Run with Debian's interpreter:

    /usr/bin/python3 tools/twin_optim.py [out.safetensors]

Every hyper-parameter is a float32 value (the C side keeps them as float),
stored in the file's metadata with 9 significant digits so that it reads
back exactly.
"""
import json
import struct
import sys

import torch

STEPS = 5
V, D = 6, 4  # embedding table
# Rows touched per step: unique and ascending, as cr_sparse_grad requires.
# Row 4 is touched once, late; rows 1 and 4 sit out most steps, so lazy Adam's
# "untouched moments are not decayed" and the per-table step count both show.
SPARSE_ROWS = [[0, 2, 5], [2], [1, 2, 3], [5], [0, 3, 4]]
MAXR = 3


def f32(x):
    """The float32 value nearest x, as a Python float."""
    return torch.tensor(x, dtype=torch.float32).item()


HP = {
    "beta1": f32(0.9),
    "beta2": f32(0.999),
    "eps": f32(1e-8),
    "weight_decay": f32(0.1),
    "adagrad_eps": f32(1e-10),
    "adagrad_init": f32(0.1),
    "sparse_beta1": f32(0.8),
    "sparse_beta2": f32(0.95),
    "sparse_eps": f32(1e-6),
    "clip_max_norm": f32(0.5),
}
LR = [f32(x) for x in (0.01, 0.02, 0.05, 0.03, 0.01)]
SPARSE_LR = [f32(x) for x in (0.1, 0.05, 0.2, 0.1, 0.15)]


def run_dense(kind, w0, b0, gw, gb):
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    wd = HP["weight_decay"]
    groups = [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]
    if kind == "adam":
        opt = torch.optim.Adam(groups, lr=LR[0], betas=(HP["beta1"], HP["beta2"]),
                               eps=HP["eps"], foreach=False)
    elif kind == "adamw":
        opt = torch.optim.AdamW(groups, lr=LR[0], betas=(HP["beta1"], HP["beta2"]),
                                eps=HP["eps"], foreach=False)
    else:
        opt = torch.optim.SGD(groups, lr=LR[0], momentum=0.0, foreach=False)
    ws, bs = [], []
    for t in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = LR[t]
        w.grad = gw[t].clone()
        b.grad = gb[t].clone()
        opt.step()
        ws.append(w.detach().clone())
        bs.append(b.detach().clone())
    return torch.stack(ws), torch.stack(bs)


def run_sparse(kind, e0, rows, vals, nrows):
    p = e0.clone().requires_grad_(True)
    if kind == "adagrad":
        opt = torch.optim.Adagrad([p], lr=SPARSE_LR[0], lr_decay=0.0, weight_decay=0.0,
                                  initial_accumulator_value=HP["adagrad_init"],
                                  eps=HP["adagrad_eps"], foreach=False)
    elif kind == "lazy_adam":
        opt = torch.optim.SparseAdam([p], lr=SPARSE_LR[0],
                                     betas=(HP["sparse_beta1"], HP["sparse_beta2"]),
                                     eps=HP["sparse_eps"])
    else:
        opt = torch.optim.SGD([p], lr=SPARSE_LR[0], momentum=0.0)
    out = []
    for t in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = SPARSE_LR[t]
        n = int(nrows[t])
        idx = rows[t, :n].long().unsqueeze(0)
        p.grad = torch.sparse_coo_tensor(idx, vals[t, :n].clone(), (V, D)).coalesce()
        opt.step()
        out.append(p.detach().clone())
    return torch.stack(out)


def save(path, tensors, meta):
    """safetensors: u64 header length, JSON header, raw little-endian data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        dt = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        raw = t.numpy().tobytes()  # little-endian: checked in main()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    assert sys.byteorder == "little", "safetensors is little-endian; run on a little-endian host"
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim_twin.safetensors"
    torch.manual_seed(1234)
    w0 = torch.randn(3, 5)
    b0 = torch.randn(7) * 0.1
    gw = torch.randn(STEPS, 3, 5)
    gb = torch.randn(STEPS, 7) * 0.5
    gw[3, 1, 2] = 0.0  # a zero gradient: Adam still moves it through m
    T = {"init.w": w0, "init.b": b0, "grad.w": gw, "grad.b": gb,
         "lr": torch.tensor(LR, dtype=torch.float32)}
    for kind in ("adam", "adamw", "sgd"):
        ws, bs = run_dense(kind, w0, b0, gw, gb)
        T[kind + ".w"] = ws
        T[kind + ".b"] = bs

    # clip_grad_norm_ on step 0's gradients
    cw = gw[0].clone().requires_grad_(False)
    cb = gb[0].clone()
    pw, pb = torch.zeros_like(cw, requires_grad=True), torch.zeros_like(cb, requires_grad=True)
    pw.grad, pb.grad = cw, cb
    norm = torch.nn.utils.clip_grad_norm_([pw, pb], HP["clip_max_norm"])
    T["clip.w"] = pw.grad.clone()
    T["clip.b"] = pb.grad.clone()
    T["clip.norm"] = norm.reshape(1).float()

    e0 = torch.randn(V, D)
    rows = torch.full((STEPS, MAXR), -1, dtype=torch.int32)
    nrows = torch.zeros(STEPS, dtype=torch.int32)
    vals = torch.zeros(STEPS, MAXR, D)
    for t, rs in enumerate(SPARSE_ROWS):
        nrows[t] = len(rs)
        rows[t, :len(rs)] = torch.tensor(rs, dtype=torch.int32)
        vals[t, :len(rs)] = torch.randn(len(rs), D)
    T.update({"sparse.init": e0, "sparse.rows": rows, "sparse.nrows": nrows,
              "sparse.vals": vals, "sparse.lr": torch.tensor(SPARSE_LR, dtype=torch.float32)})
    for kind in ("adagrad", "lazy_adam", "sparse_sgd"):
        T[kind + ".emb"] = run_sparse(kind.replace("sparse_", ""), e0, rows, vals, nrows)

    meta = {k: "%.9g" % v for k, v in HP.items()}
    meta["steps"] = str(STEPS)
    meta["torch"] = torch.__version__
    meta["generator"] = "tools/twin_optim.py"
    save(out, T, meta)
    print("wrote %s (%d tensors)" % (out, len(T)))


if __name__ == "__main__":
    main()
