"""Training, evaluation, labelling, export and the distillation study:
each a call into the library on a Context, returning Python values
(metrics as dicts, results as DataFrames)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional

import pandas as pd

from ._ffi import ffi, lib, take_text, text
from .context import Context, default_context
from .errors import check, new_error


class Run:
    """A finished training run: run.metrics is metrics.json as a dict,
    run.model_path the model it wrote (DIR/model.safetensors)."""

    def __init__(self, metrics: Dict[str, Any], model_path: str, directory: str):
        self.metrics = metrics
        self.model_path = model_path
        self.dir = directory

    def __repr__(self) -> str:
        return f"Run({self.dir!r})"

    def load(self, **kw):
        """The trained model, ready to score (Model.load's options)."""
        from .model import Model
        return Model.load(self.model_path, **kw)


def _deep_merge(base: Dict[str, Any], over: Dict[str, Any], where: str) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v, f"{where}.{k}")
        else:
            base[k] = v


def _overridden(config: str, overrides: Dict[str, Any], tmp: str) -> str:
    """The config with sections overridden, written to tmp: data.path made
    absolute so it still names the same file."""
    import yaml
    with open(config, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    for section, value in overrides.items():
        if not isinstance(value, dict):
            raise TypeError(f"override {section}= expects a dict of keys, e.g. "
                            f"{section}={{'key': value}}")
        doc.setdefault(section, {})
        if not isinstance(doc[section], dict):
            raise TypeError(f"{config}: section {section} is not a mapping; it cannot be merged")
        _deep_merge(doc[section], value, section)
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str) and \
            not os.path.isabs(data["path"]):
        data["path"] = os.path.join(os.path.dirname(os.path.abspath(config)), data["path"])
    path = os.path.join(tmp, os.path.basename(config))
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


def train(config: str, out: str, *, resume: bool = False, seed: Optional[int] = None,
          epochs: Optional[int] = None, max_steps: Optional[int] = None,
          context: Optional[Context] = None, progress: Optional[bool] = None,
          **overrides: Dict[str, Any]) -> Run:
    """Train the ranker a YAML config describes into directory out.

    seed, epochs and max_steps override the config's train section; any
    other section is overridden by a keyword holding a dict, merged into it
    (train={"lr": 1e-3}, model={"type": "ple", "task_experts": 2}). The
    context's threads and precision override train.threads and
    train.precision when set. A progress bar shows steps, rate and loss;
    Ctrl-C stops at the next step, keeps the last checkpoint (resume=True
    continues from it) and raises KeyboardInterrupt."""
    if overrides:
        with tempfile.TemporaryDirectory(prefix="crossrec-config-") as tmp:
            return train(_overridden(str(config), overrides, tmp), out, resume=resume, seed=seed,
                         epochs=epochs, max_steps=max_steps, context=context, progress=progress)
    ctx = context or default_context()
    opts = ffi.new("cr_train_opts *")
    lib.cr_train_opts_init(opts)
    opts.resume = 1 if resume else 0
    if seed is not None:
        opts.seed = seed
    if epochs is not None:
        opts.epochs = epochs
    if max_steps is not None:
        opts.max_steps = max_steps
    run = ffi.new("cr_run **")
    err = new_error()
    with ctx.call(progress) as c:
        check(lib.cr_train(c, str(config).encode(), str(out).encode(), opts, run, err), err)
    try:
        r = run[0]
        return Run(json.loads(text(lib.cr_run_metrics_json(r))), text(lib.cr_run_model_path(r)),
                   text(lib.cr_run_dir(r)))
    finally:
        lib.cr_run_free(run[0])


def evaluate(model: str, config: str, *, data: Optional[str] = None, split: str = "test",
             context: Optional[Context] = None) -> Dict[str, Any]:
    """Metrics of a saved model on a split ("test", "valid", "train") of the
    data its config names, or of another file with the same columns."""
    ctx = context or default_context()
    out = ffi.new("char **")
    err = new_error()
    with ctx.call(False) as c:
        check(lib.cr_evaluate(c, str(model).encode(), str(config).encode(),
                              str(data).encode() if data else ffi.NULL, split.encode(), out, err),
              err)
    return json.loads(take_text(out[0]))


def label(teacher: str, map: str, data: str, out: str, *, coverage: Optional[str] = None,
          batch: int = 0, context: Optional[Context] = None) -> Dict[str, Any]:
    """Write data with the frozen teacher's predictions added as soft-label
    columns (through the map YAML) to out; returns the coverage report."""
    ctx = context or default_context()
    a = ffi.new("cr_label_args *")
    keep = [ffi.new("char[]", str(x).encode()) for x in (teacher, map, data, out)]
    a.teacher, a.map, a.data, a.out = keep
    if coverage:
        keep.append(ffi.new("char[]", str(coverage).encode()))
        a.coverage = keep[-1]
    a.batch = batch
    cov = ffi.new("char **")
    err = new_error()
    with ctx.call() as c:
        check(lib.cr_label(c, a, cov, err), err)
    return json.loads(take_text(cov[0]))


def label_frame(teacher: str, map: str, frame: pd.DataFrame, *,
                context: Optional[Context] = None) -> pd.DataFrame:
    """label() over a DataFrame in memory: the frame with the teacher's
    columns added (same rows, same order, same index)."""
    with tempfile.TemporaryDirectory(prefix="crossrec-label-") as d:
        src, dst = os.path.join(d, "in.csv"), os.path.join(d, "out.csv")
        frame.to_csv(src, index=False)
        label(teacher, map, src, dst, context=context)
        got = pd.read_csv(dst, keep_default_na=False, dtype=str)
    added = [c for c in got.columns if c not in frame.columns]
    result = frame.copy()
    for c in added:
        result[c] = pd.to_numeric(got[c], errors="coerce").to_numpy()
    return result


def export(model: str, out: str, format: str = "safetensors") -> int:
    """Write the serving model (never-served distillation heads dropped) as
    format "safetensors", "onnx" (a graph with its vocabulary file beside it)
    or "onnx-bf16"; returns how many heads were dropped."""
    dropped = ffi.new("int *")
    err = new_error()
    check(lib.cr_export(str(model).encode(), str(out).encode(), format.encode(), dropped, err), err)
    return dropped[0]


class Study:
    """A finished distillation study: study.results is results.json as a
    dict; study.table() and study.plot() summarise it."""

    def __init__(self, results: Dict[str, Any], results_text: str, out: str):
        self.results = results
        self._text = results_text
        self.dir = out

    def __repr__(self) -> str:
        return f"Study({self.dir!r})"

    def text(self) -> str:
        """The tables as crossrec experiment prints them."""
        out = ffi.new("char **")
        err = new_error()
        check(lib.cr_experiment_table(self._text.encode(), out, err), err)
        return take_text(out[0])

    def table(self) -> pd.DataFrame:
        """One row per student, fraction, variant and task: the primary
        metric's mean and CI over seeds, and against the control its mean
        difference, CI, paired-test p and verdict (NaN / None on the control;
        NaN metrics where the task has too few positives)."""
        rows = []
        for st in self.results.get("students", []):
            kinds = {t["name"]: t for t in st.get("tasks", [])}
            for fr in st.get("fractions", []):
                for v in fr.get("variants", []):
                    for task, tv in v.get("tasks", {}).items():
                        primary = kinds.get(task, {}).get("primary", "auc")
                        m = tv.get("metrics", {}).get(primary) or {}
                        vs = tv.get("vs_control") or {}
                        rows.append({
                            "student": st.get("name"), "fraction": fr.get("fraction"),
                            "variant": v.get("technique"), "control": bool(v.get("control")),
                            "task": task, "metric": primary,
                            "mean": m.get("mean"), "lo": m.get("lo"), "hi": m.get("hi"),
                            "diff": vs.get("mean_diff"), "diff_lo": vs.get("lo"),
                            "diff_hi": vs.get("hi"), "p": vs.get("p"),
                            "verdict": vs.get("verdict"),
                            "seeds": len(m.get("values") or []),
                        })
        return pd.DataFrame(rows, columns=["student", "fraction", "variant", "control", "task",
                                           "metric", "mean", "lo", "hi", "diff", "diff_lo",
                                           "diff_hi", "p", "verdict", "seeds"]).astype(
            {"mean": float, "lo": float, "hi": float, "diff": float, "diff_lo": float,
             "diff_hi": float, "p": float})

    def plot(self, student: Optional[str] = None, fraction: Optional[float] = None, ax=None):
        """Each technique's difference from the control per task, with its
        CI, on an axis symmetric around zero (matplotlib); filled markers
        where the paired test's verdict is "significant" (never with fewer
        than 3 seeds). Returns the figure."""
        import matplotlib.pyplot as plt
        t = self.table()
        t = t[~t["control"]]
        if student is not None:
            t = t[t["student"] == student]
        if fraction is not None:
            t = t[t["fraction"] == fraction]
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(t), 4) + 1))
        else:
            fig = ax.figure
        labels = [f"{r.student} {r.fraction:g} {r.task}: {r.variant}" for r in t.itertuples()]
        y = list(range(len(t)))
        err = [(t["diff"] - t["diff_lo"]).fillna(0).to_numpy(),
               (t["diff_hi"] - t["diff"]).fillna(0).to_numpy()]
        sig = (t["verdict"] == "significant").to_numpy()
        ax.errorbar(t["diff"], y, xerr=err, fmt="none", ecolor="0.4", capsize=3)
        ax.scatter(t["diff"][sig], [v for v, s in zip(y, sig) if s], color="tab:blue",
                   label="significant", zorder=3)
        ax.scatter(t["diff"][~sig], [v for v, s in zip(y, sig) if not s], facecolors="white",
                   edgecolors="tab:blue", label="not significant or < 3 seeds", zorder=3)
        lim = float(pd.concat([t["diff_lo"].abs(), t["diff_hi"].abs()]).max() or 0.01) * 1.1
        ax.set_xlim(-lim, lim)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlabel("difference from the control (primary metric), 95% CI")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        return fig


def experiment(config: str, out: str, *, fresh: bool = False,
               context: Optional[Context] = None) -> Study:
    """Run a distillation study (teacher, labels, every student variant over
    seeds and fractions; results.json and report.html in out)."""
    ctx = context or default_context()
    res = ffi.new("char **")
    err = new_error()
    with ctx.call() as c:
        check(lib.cr_experiment(c, str(config).encode(), str(out).encode(), 1 if fresh else 0, res,
                                err), err)
    t = take_text(res[0])
    return Study(json.loads(t), t, str(out))


def load_study(out: str) -> Study:
    """A finished study from its directory's results.json."""
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        t = f.read()
    return Study(json.loads(t), t, out)
