#!/usr/bin/python3
"""twin_distill.py - PyTorch twin of the distillation losses (src/rank/rank_loss.c;
the math is in docs/distillation.md and docs/ranker.md).

For a batch of B = 8 rows and a list of heads covering every technique -
served heads whose targets blend label and teacher (soft_label, binary and
regression), auxiliary never-served heads on teacher probabilities and values
(masked and unmasked), tempered heads on teacher logits (T = 2 and T = 0.5),
and a new head reading another task's tower - it writes the head outputs,
the batch, every head's loss, the total, d total / d out and d total /
d log_var, with fixed and with uncertainty weighting, to
tests/fixtures/distill_loss.safetensors:

  __metadata__["config"]  {"B", "cases": [{"loss_weighting", "heads": [...]}]}
  out, label, mask, weight, extra      the shared inputs (F32)
  <case>.loss.heads, <case>.loss.total, <case>.dout, <case>.dlog_var

tests/test_distill.c replays them. Run from the repository root with
Debian's interpreter:

    /usr/bin/python3 tools/twin_distill.py [outdir]
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin_rank import save_safetensors  # noqa: E402

B = 8


def heads():
    """click (no mask), like (masked by click), rating (regression, masked);
    extra columns: 0 teacher click prob, 1 teacher like prob, 2 teacher click
    logit, 3 teacher rating value."""
    h = []

    def add(name, tower, kind, served, tk, target, mask, w, blend=None, T=0.0):
        d = {"name": name, "tower": tower, "kind": kind, "served": served, "target_kind": tk,
             "target": target, "mask_task": mask, "weight": w}
        if blend is not None:
            d["blend_extra"], d["blend_lambda"] = blend
        if T:
            d["temperature"] = T
        h.append(d)

    add("click", 0, "binary", 1, "label", 0, 0, 1.0, blend=(0, 0.3))
    add("like", 1, "binary", 1, "label", 1, 1, 0.5, blend=(1, 0.5))
    add("rating", 2, "regression", 1, "label", 2, 2, 0.25, blend=(3, 0.4))
    add("click_distill", 0, "binary", 0, "extra", 0, -1, 0.5)
    add("like_distill", 1, "binary", 0, "extra", 1, 1, 0.7)
    add("rating_distill", 2, "regression", 0, "extra", 3, -1, 0.3)
    add("click_tempered", 0, "binary", 0, "extra", 2, -1, 0.5, T=2.0)
    add("like_tempered", 1, "binary", 0, "extra", 2, 1, 0.2, T=0.5)
    add("teacher_continue", 1, "binary", 0, "extra", 0, -1, 0.5)
    return h


def f32(x):
    return torch.tensor(x, dtype=torch.float32).item()


def make_inputs(g):
    NH = len(heads())
    out = torch.randn(NH, B, generator=g) * 2.0
    out[0, 3] = 30.0   # saturated logits: the stable forms must hold
    out[6, 5] = -25.0
    click = (torch.rand(B, generator=g) < 0.5).float()
    like = (torch.rand(B, generator=g) < 0.5).float()
    rating = torch.randint(1, 6, (B,), generator=g).float() / 5.0
    label = torch.stack([click, like, rating])
    mask = torch.ones(3, B)
    mask[1] = click
    mask[1, 0] = 1.0
    mask[2] = click
    mask[2, 1] = 1.0
    weight = 0.5 + torch.rand(B, generator=g)
    tl = torch.randn(B, generator=g) * 3.0
    extra = torch.stack([torch.sigmoid(torch.randn(B, generator=g)),
                         torch.sigmoid(torch.randn(B, generator=g)),
                         tl, torch.rand(B, generator=g)])
    return out, label, mask, weight, extra


def loss(hs, lw, out, label, mask, weight, extra, log_var):
    total = torch.zeros((), dtype=torch.float64)
    per = []
    k = 0
    for i, h in enumerate(hs):
        z = out[i]
        y = label[h["target"]] if h["target_kind"] == "label" else extra[h["target"]]
        if "blend_lambda" in h:
            lam = f32(h["blend_lambda"])
            y = (1.0 - lam) * y + lam * extra[h["blend_extra"]]
        m = mask[h["mask_task"]] if h["mask_task"] >= 0 else torch.ones(B, dtype=torch.float64)
        c = m * weight
        T = h.get("temperature", 0.0)
        if T:
            q = torch.sigmoid(y / T)
            l = T * T * F.binary_cross_entropy_with_logits(z / T, q, reduction="none")
        elif h["kind"] == "binary":
            l = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        else:
            l = (z - y) ** 2
        L = (c * l).sum() / c.sum()
        per.append(L)
        if lw == "uncertainty" and h["served"]:
            s = log_var[k]
            total = total + torch.exp(-s) * f32(h["weight"]) * L + s
            k += 1
        else:
            total = total + f32(h["weight"]) * L
    return total, torch.stack(per)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    g = torch.Generator().manual_seed(77)
    out, label, mask, weight, extra = make_inputs(g)
    tensors = [("out", out), ("label", label), ("mask", mask), ("weight", weight),
               ("extra", extra)]
    hs = heads()
    cases = []
    for lw in ("fixed", "uncertainty"):
        d = lambda t: t.double()  # noqa: E731 - the reference in double, from float inputs
        o = d(out).clone().requires_grad_(True)
        lv = torch.tensor([0.3, -0.2, 0.1]).double().requires_grad_(True)
        total, per = loss(hs, lw, o, d(label), d(mask), d(weight), d(extra), lv)
        total.backward()
        tensors += [(f"{lw}.loss.heads", per.detach().float()),
                    (f"{lw}.loss.total", total.detach().float().reshape(1)),
                    (f"{lw}.dout", o.grad.float()),
                    (f"{lw}.log_var", lv.detach().float()),
                    (f"{lw}.dlog_var", lv.grad.float() if lw == "uncertainty"
                     else torch.zeros(3))]
        cases.append({"loss_weighting": lw})
        print(f"{lw}: total {total.item():.6f}")
    meta = {"B": B, "heads": hs, "cases": cases}
    path = os.path.join(outdir, "distill_loss.safetensors")
    save_safetensors(path, tensors, {"config": json.dumps(meta)})
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
