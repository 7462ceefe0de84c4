"""torch_ranker.py - the one PyTorch twin of crossrec's multi-task ranker
(src/rank/ranker_forward.c, the loss of src/rank/rank_loss.c; the math is in
docs/ranker.md). tools/twin_rank.py writes the test fixtures with it,
bench/rank_torch.py times its training and bench/serve_torch.py its
inference, so the model the benchmarks time is the one the tests verify.

Every architecture of the C ranker: shared_bottom, mmoe and ple (one CGC
level), bottom, expert and tower stacks of any depth, any number of heads
on any tower (never-served distillation heads included), fixed or
uncertainty loss weighting, categorical and multi-valued features (sum or
mean pooling, tables shared between features) and dense values.

The formulation is the fast one, and the only one:
  - tables of one width are fused into one parameter (one lookup, one
    sparse gradient, one optimizer update per width);
  - the input x is grouped by table width (widest first): categorical
    slots, then bags, then dense values; the C model's x is categorical
    slots in schema order, bags, dense; the first layers' columns are
    permuted accordingly;
  - layer 0 of all experts is one Linear (C_in -> E*H0), later expert
    layers one batched matmul; the gates of all tasks are one Linear;
  - the towers of all tasks are batched matmuls, the heads one more.
Fusing and permuting relabel parameters; they change no arithmetic but the
order of some sums. c_tensors() and load_c() translate to and from the C
model's parameter names and shapes (as in a checkpoint), for values and
for gradients.

Needs only torch (and numpy for checkpoint reading). Import from the
repository root's tools/ directory.
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- model description ---------------------------------------------------------

def make_spec(tables, cats, bags, n_dense, n_tasks):
    """The input side of a ranker: tables [(name, rows, dim)], categorical
    slots [(name, table index)], bags [(name, table index, "sum"|"mean")],
    in the C model's x order."""
    return dict(tables=[dict(name=n, rows=r, dim=d) for n, r, d in tables],
                cats=[dict(name=n, table=t) for n, t in cats],
                bags=[dict(name=n, table=t, pooling=p) for n, t, p in bags],
                n_dense=n_dense, n_tasks=n_tasks)


def default_heads(tasks, weights=None):
    """One served head per task [(name, "binary"|"regression")], on its own tower."""
    return [{"name": n, "tower": k, "kind": kind, "served": 1, "target_kind": "label",
             "target": k, "mask_task": k, "weight": 1.0 if weights is None else weights[k]}
            for k, (n, kind) in enumerate(tasks)]


def read_safetensors(path):
    """(tensors by name as float32 torch tensors, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        base = 8 + n
    meta = head.pop("__metadata__", {})
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in head.items():
        if t["dtype"] != "F32":
            raise SystemExit("%s: tensor %s is %s, expected F32" % (path, name, t["dtype"]))
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(raw[base + a:base + b].tobytes(), dtype=np.float32)
            .reshape(t["shape"]).copy())
    return out, meta


def checkpoint_model(path, sparse=False):
    """A Ranker built from a crossrec checkpoint's schema and config, its
    weights loaded."""
    weights, meta = read_safetensors(path)
    try:
        schema, cfg = json.loads(meta["schema"]), json.loads(meta["model"])
    except KeyError as e:
        raise SystemExit("%s: metadata has no %s (not a crossrec checkpoint)" % (path, e))
    tables, index, cats, bags, n_dense = [], {}, [], [], 0
    for f in schema["features"]:
        if f["type"] in ("categorical", "bucketized", "multi") and not f["share"]:
            w = weights.get("emb." + f["name"])
            if w is None:
                raise SystemExit("%s: no tensor emb.%s for feature %s" % (path, f["name"], f["name"]))
            index[f["name"]] = len(tables)
            tables.append((f["name"], w.shape[0], w.shape[1]))
    for f in schema["features"]:
        t = index.get(f["share"] or f["name"])
        if f["type"] in ("categorical", "bucketized"):
            cats.append((f["name"], t))
        elif f["type"] == "multi":
            bags.append((f["name"], t, f.get("pooling", "mean")))
        else:
            n_dense += 1
    spec = make_spec(tables, cats, bags, n_dense, len(schema["tasks"]))
    model = Ranker(spec, cfg, sparse=sparse)
    model.load_c(weights)
    return model


# ---- the model -------------------------------------------------------------------

class Ranker(nn.Module):
    """The ranker. spec: make_spec(); cfg: the C model config as in a
    checkpoint's "model" metadata (arch, bottom_layers, experts,
    shared_experts, task_experts, expert_layers, tower_layers,
    loss_weighting, heads). Parameters are left uninitialised: call
    reset_parameters() or load_c()."""

    def __init__(self, spec, cfg, sparse=True):
        super().__init__()
        self.spec, self.cfg, self.sparse = spec, cfg, sparse
        tabs = spec["tables"]
        self.dims = sorted({t["dim"] for t in tabs}, reverse=True)
        rows = {d: 0 for d in self.dims}
        self.place = []  # per table: (group, first row)
        for t in tabs:
            self.place.append((self.dims.index(t["dim"]), rows[t["dim"]]))
            rows[t["dim"]] += t["rows"]
        self.tables = nn.ParameterList([nn.Parameter(torch.empty(rows[d], d)) for d in self.dims])

        # x columns: C order (cat slots, bags, dense) and the twin's order
        ccol, col = [], 0
        for f in spec["cats"] + spec["bags"]:
            d = tabs[f["table"]]["dim"]
            ccol.append(list(range(col, col + d)))
            col += d
        self.c_in = C = col + spec["n_dense"]
        nc = len(spec["cats"])
        self.cat_groups = []  # (group, slot indices, first rows of their tables)
        for g in range(len(self.dims)):
            idx = [i for i, f in enumerate(spec["cats"]) if self.place[f["table"]][0] == g]
            if idx:
                first = torch.tensor([self.place[spec["cats"][i]["table"]][1] for i in idx])
                self.cat_groups.append((g, idx, first))
        perm = [c for _, idx, _ in self.cat_groups for i in idx for c in ccol[i]]
        perm += [c for j in range(len(spec["bags"])) for c in ccol[nc + j]]
        perm += list(range(col, C))
        assert sorted(perm) == list(range(C))
        self.perm = torch.tensor(perm)           # twin column j is C column perm[j]
        self.inv = torch.argsort(self.perm)      # C column c is twin column inv[c]

        arch = cfg["arch"]
        K = self.K = spec["n_tasks"]
        self.arch = arch
        self.bottom_w, self.bottom_b = nn.ParameterList(), nn.ParameterList()
        self.exp_w, self.exp_b = nn.ParameterList(), nn.ParameterList()
        self.sel = None
        if arch == "shared_bottom":
            prev = C
            for h in cfg["bottom_layers"]:
                self.bottom_w.append(nn.Parameter(torch.empty(h, prev)))
                self.bottom_b.append(nn.Parameter(torch.empty(h)))
                prev = h
            trunk = prev
        elif arch in ("mmoe", "ple"):
            if arch == "mmoe":
                E = S = cfg["experts"]
            else:
                SH, TE = cfg["shared_experts"], cfg["task_experts"]
                E, S = SH + K * TE, SH + TE
                self.sel = torch.tensor([list(range(SH)) + [SH + k * TE + j for j in range(TE)]
                                         for k in range(K)])
            H = cfg["expert_layers"]
            self.E, self.S, self.H = E, S, H
            self.exp0_w = nn.Parameter(torch.empty(E * H[0], C))
            self.exp0_b = nn.Parameter(torch.empty(E * H[0]))
            for i in range(1, len(H)):
                self.exp_w.append(nn.Parameter(torch.empty(E, H[i], H[i - 1])))
                self.exp_b.append(nn.Parameter(torch.empty(E, H[i])))
            self.gate_w = nn.Parameter(torch.empty(K * S, C))
            self.gate_b = nn.Parameter(torch.empty(K * S))
            trunk = H[-1]
        else:
            raise ValueError("arch %r: expected shared_bottom, mmoe or ple" % arch)
        self.tower_w, self.tower_b = nn.ParameterList(), nn.ParameterList()
        prev = trunk
        for h in cfg["tower_layers"]:
            self.tower_w.append(nn.Parameter(torch.empty(K, h, prev)))
            self.tower_b.append(nn.Parameter(torch.empty(K, h)))
            prev = h
        heads = cfg["heads"]
        NH = len(heads)
        self.head_w = nn.Parameter(torch.empty(NH, prev))
        self.head_b = nn.Parameter(torch.empty(NH))
        self.head_tower = [h["tower"] for h in heads]
        self.served = [i for i, h in enumerate(heads) if h["served"]]
        self.register_buffer("binary", torch.tensor([heads[i]["kind"] == "binary"
                                                     for i in self.served]), persistent=False)
        self.uncertainty = cfg["loss_weighting"] == "uncertainty"
        if self.uncertainty:
            self.log_var = nn.Parameter(torch.zeros(len(self.served)))
        self._map = self._c_map()

    # ---- C names ----

    def _c_map(self):
        """[(C name, parameter, index into it, permute columns?)], dense
        parameters in the C model's order, then the tables."""
        m = []
        for i, (w, b) in enumerate(zip(self.bottom_w, self.bottom_b)):
            m += [("bottom.l%d.weight" % i, w, slice(None), i == 0),
                  ("bottom.l%d.bias" % i, b, slice(None), False)]
        if self.arch != "shared_bottom":
            m += [("experts.l0.weight", self.exp0_w, slice(None), True),
                  ("experts.l0.bias", self.exp0_b, slice(None), False)]
            for i, (w, b) in enumerate(zip(self.exp_w, self.exp_b)):
                m += [("experts.l%d.weight" % (i + 1), w, slice(None), False),
                      ("experts.l%d.bias" % (i + 1), b, slice(None), False)]
            S = self.S
            for k in range(self.K):
                m += [("gates.%d.weight" % k, self.gate_w, slice(k * S, (k + 1) * S), True),
                      ("gates.%d.bias" % k, self.gate_b, slice(k * S, (k + 1) * S), False)]
        for k in range(self.K):
            for i, (w, b) in enumerate(zip(self.tower_w, self.tower_b)):
                m += [("towers.%d.l%d.weight" % (k, i), w, k, False),
                      ("towers.%d.l%d.bias" % (k, i), b, k, False)]
        for n, h in enumerate(self.cfg["heads"]):
            m += [("heads.%s.weight" % h["name"], self.head_w, slice(n, n + 1), False),
                  ("heads.%s.bias" % h["name"], self.head_b, slice(n, n + 1), False)]
        if self.uncertainty:
            m.append(("loss.log_var", self.log_var, slice(None), False))
        for t, (g, r0) in zip(self.spec["tables"], self.place):
            m.append(("emb." + t["name"], self.tables[g], slice(r0, r0 + t["rows"]), False))
        return m

    def table_params(self):
        return list(self.tables)

    def dense_params(self):
        tabs = {id(p) for p in self.tables}
        return [p for p in self.parameters() if id(p) not in tabs]

    def c_names(self):
        """(dense C names, table C names), each in the C model's order."""
        dense = [n for n, p, _, _ in self._map if not n.startswith("emb.")]
        return dense, [n for n, _, _, _ in self._map if n.startswith("emb.")]

    def c_tensors(self, grad=False):
        """{C name: tensor in the C layout}: the values, or with grad=True
        the gradients (tables dense-shaped)."""
        out = {}
        for name, p, idx, cols in self._map:
            t = p.grad if grad else p
            if t is None:
                raise ValueError("%s has no gradient" % name)
            t = t.detach()
            if t.is_sparse:
                t = t.to_dense()
            t = t[idx]
            if cols:
                t = t[:, self.inv]
            out[name] = t.clone()
        return out

    @torch.no_grad()
    def load_c(self, tensors):
        """Set every parameter from {C name: tensor in the C layout}."""
        for name, p, idx, cols in self._map:
            if name not in tensors:
                raise KeyError("no tensor %s" % name)
            t = tensors[name]
            want = p[idx].shape
            if tuple(t.shape) != tuple(want):
                raise ValueError("%s: shape %s, expected %s" % (name, list(t.shape), list(want)))
            p[idx] = t[:, self.perm] if cols else t

    def c_shapes(self):
        """[(C name, shape)] in the C model's order (for initialisers)."""
        return [(n, tuple(p[idx].shape)) for n, p, idx, _ in self._map]

    def reset_parameters(self, emb_init=0.05, table_init=None):
        """Initial values drawn in the C model's parameter order: tables
        U(-emb_init, emb_init) (or table_init(tensor)), every layer as
        nn.Linear initialises itself (per expert, per tower), log_var 0."""
        vals = {}
        shapes = dict(self.c_shapes())
        for name, shape in self.c_shapes():
            if name.startswith("emb."):
                t = torch.empty(shape)
                if table_init is None:
                    nn.init.uniform_(t, -emb_init, emb_init)
                else:
                    table_init(t)
                vals[name] = t
        for name, shape in self.c_shapes():
            if name.endswith(".weight") and not name.startswith("emb."):
                vals[name] = w = torch.empty(shape)
                bias = name[:-len("weight")] + "bias"
                b = torch.empty(shapes[bias])
                if len(shape) == 3:  # per expert: each its own Linear
                    for e in range(shape[0]):
                        nn.init.kaiming_uniform_(w[e], a=math.sqrt(5))
                        bound = 1 / math.sqrt(shape[2])
                        nn.init.uniform_(b[e], -bound, bound)
                else:
                    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                    bound = 1 / math.sqrt(shape[1])
                    nn.init.uniform_(b, -bound, bound)
                vals[bias] = b
            elif name == "loss.log_var":
                vals[name] = torch.zeros(shape)
        self.load_c(vals)

    # ---- inputs ----

    def encode(self, cat, bags):
        """The forward's id inputs from per-table row ids in the C order:
        cat (B, n_cat) integer; bags, one per multi feature, either a (B, L)
        id block (fixed length) or (ids, offsets) with B+1 offsets. Returns
        (cat blocks per fused group, bags) with ids offset into the groups."""
        cat = torch.as_tensor(cat).long()
        blocks = [cat[:, idx] + first for _, idx, first in self.cat_groups]
        out = []
        for f, b in zip(self.spec["bags"], bags):
            first = self.place[f["table"]][1]
            if isinstance(b, (tuple, list)):
                out.append((torch.as_tensor(b[0]).long() + first, torch.as_tensor(b[1]).long()))
            else:
                out.append(torch.as_tensor(b).long() + first)
        return blocks, out

    # ---- forward ----

    def forward(self, cats, bags, dense, heads=None):
        """Raw head outputs (n_heads, B), or of the head indices given."""
        B = dense.shape[0]
        parts = [F.embedding(ids, self.tables[g], sparse=self.sparse).reshape(B, -1)
                 for (g, _, _), ids in zip(self.cat_groups, cats)]
        for f, b in zip(self.spec["bags"], bags):
            tab = self.tables[self.place[f["table"]][0]]
            if isinstance(b, (tuple, list)):
                parts.append(F.embedding_bag(b[0], tab, b[1], mode=f["pooling"],
                                             sparse=self.sparse, include_last_offset=True))
            else:
                parts.append(F.embedding_bag(b, tab, mode=f["pooling"], sparse=self.sparse))
        parts.append(dense)
        x = torch.cat(parts, 1)
        K = self.K
        if self.arch == "shared_bottom":
            z = x
            for w, b in zip(self.bottom_w, self.bottom_b):
                z = F.relu(F.linear(z, w, b))
            t = z.unsqueeze(0).expand(K, B, z.shape[1])                          # (K, B, Hb)
        else:
            E, S = self.E, self.S
            h = F.relu(F.linear(x, self.exp0_w, self.exp0_b))
            h = h.view(B, E, self.H[0]).transpose(0, 1)                          # (E, B, H0)
            for w, b in zip(self.exp_w, self.exp_b):
                h = F.relu(torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2)))  # (E, B, Hi)
            g = torch.softmax(F.linear(x, self.gate_w, self.gate_b).view(B, K, S), -1)
            if self.sel is not None:  # PLE: gate k mixes its S of the E experts
                g = torch.zeros(B, K, E, dtype=g.dtype).scatter(
                    2, self.sel.unsqueeze(0).expand(B, K, S), g)                 # (B, K, E)
            t = torch.bmm(g, h.transpose(0, 1)).transpose(0, 1)                  # (K, B, He)
        for w, b in zip(self.tower_w, self.tower_b):
            t = F.relu(torch.baddbmm(b.unsqueeze(1), t, w.transpose(1, 2)))     # (K, B, Ht)
        idx = list(range(len(self.head_tower))) if heads is None else heads
        towers = [self.head_tower[i] for i in idx]
        if towers != list(range(K)):
            t = t[torch.tensor(towers)]
        if len(idx) == self.head_w.shape[0]:
            hw, hb = self.head_w, self.head_b
        else:
            hw, hb = self.head_w[torch.tensor(idx)], self.head_b[torch.tensor(idx)]
        return torch.baddbmm(hb.view(-1, 1, 1), t, hw.unsqueeze(2)).squeeze(2)  # (NH, B)

    def predict(self, cats, bags, dense):
        """Served heads' predictions (B, n_served): sigmoid for binary heads."""
        z = self.forward(cats, bags, dense, heads=self.served).t()
        return torch.where(self.binary, torch.sigmoid(z), z)

    def loss(self, out, label, mask=None, weight=None, extra=None, dtype=torch.float32):
        """docs/ranker.md: per head the mean of the loss over its examples,
        weighted by mask * weight (all ones when None), accumulated in
        dtype; the total with fixed or uncertainty weights. Returns (total,
        per-head losses)."""
        total = torch.zeros((), dtype=dtype)
        per_head, k = [], 0
        for i, h in enumerate(self.cfg["heads"]):
            p = out[i]
            y = label[h["target"]] if h["target_kind"] == "label" else extra[h["target"]]
            if h["kind"] == "binary":
                l = F.binary_cross_entropy_with_logits(p, y, reduction="none")
            else:
                l = (p - y) ** 2
            c = weight
            if mask is not None and h["mask_task"] >= 0:
                c = mask[h["mask_task"]] if c is None else mask[h["mask_task"]] * c
            if c is None:
                L = l.to(dtype).mean()
            else:
                norm = c.to(dtype).sum()
                L = (c.to(dtype) * l.to(dtype)).sum() / norm if norm > 0 \
                    else torch.zeros((), dtype=dtype)
            per_head.append(L)
            if self.uncertainty and h["served"]:
                s = self.log_var[k].to(dtype)
                total = total + torch.exp(-s) * h["weight"] * L + s
                k += 1
            else:
                total = total + h["weight"] * L
        return total, torch.stack(per_head)

    def fwd_macs(self, B):
        """Multiply-adds of the forward's GEMMs, as bench/rank.c and
        bench/serve_latency.c count them."""
        C, K = self.c_in, self.K
        if self.arch == "shared_bottom":
            m, prev = 0, C
            for w in self.bottom_w:
                m += B * prev * w.shape[0]
                prev = w.shape[0]
        else:
            E, H = self.E, self.H
            m = B * C * E * H[0] + K * B * self.S * C
            m += sum(E * B * H[i] * H[i - 1] for i in range(1, len(H)))
            prev = H[-1]
        for w in self.tower_w:
            m += K * B * prev * w.shape[1]
            prev = w.shape[1]
        return m + self.head_w.shape[0] * B * prev
