"""Labelling, export, the distillation study, the item-language model and
cancelling, through the package, against the command-line tool."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import crossrec
from conftest import head_csv, BUILD, ROOT, cli

MAP = """\
features:
  - {feature: user, column: user_id}
  - {feature: item, column: movie_id}
  - {feature: last_items, column: last_items}
  - {feature: genres, column: genres}
  - {feature: year, column: year}
  - {feature: hist_count, column: hist_count}
  - {feature: hist_mean_rating, default: true}
  - {feature: item_popularity, column: item_popularity}
teacher_tasks:
  - {name: teacher_click, head: click, form: probability}
  - {name: teacher_engagement, head: engagement, form: value}
"""


@pytest.fixture(scope="module")
def labelled(ml, tmp_path_factory):
    d = tmp_path_factory.mktemp("label")
    (d / "map.yaml").write_text(MAP)
    head = d / "rows.csv"
    head_csv(ml / "imp.csv", head, 4000)
    cli("label", "--teacher", ml / "cli_run" / "model.safetensors", "--map", d / "map.yaml",
        "--data", head, "--out", d / "cli.csv", "--quiet")
    return d


def test_label_equals_cli(ml, labelled, tmp_path):
    cov = crossrec.label(ml / "cli_run" / "model.safetensors", labelled / "map.yaml",
                         labelled / "rows.csv", tmp_path / "out.csv",
                         context=crossrec.Context(quiet=True, progress=False))
    assert cov["rows"] == 4000
    assert open(tmp_path / "out.csv").read() == open(labelled / "cli.csv").read()


def test_label_frame(ml, labelled):
    frame = pd.read_csv(labelled / "rows.csv")
    got = crossrec.label_frame(ml / "cli_run" / "model.safetensors", labelled / "map.yaml", frame,
                               context=crossrec.Context(quiet=True, progress=False))
    want = pd.read_csv(labelled / "cli.csv")
    assert list(got.columns) == list(want.columns)
    for c in ("teacher_click", "teacher_engagement"):
        np.testing.assert_allclose(got[c], want[c], rtol=1e-6, atol=1e-7)
    pd.testing.assert_frame_equal(got[frame.columns], frame)
    with pytest.raises(crossrec.ConfigError):
        crossrec.label_frame(ml / "cli_run" / "model.safetensors", labelled / "rows.csv", frame)


def test_export(ml, tmp_path):
    assert crossrec.export(ml / "cli_run" / "model.safetensors", tmp_path / "s.safetensors") == 0
    with pytest.raises(crossrec.ArgumentError) as ei:
        crossrec.export(ml / "cli_run" / "model.safetensors", tmp_path / "s.x", format="tflite")
    assert "tflite" in str(ei.value)


STUDY = """\
teacher: {config: teacher.yaml}
map: map.yaml
target: target.csv
students:
  - name: home
    config: home.yaml
    distill:
      - {task: click, column: teacher_click, logit_column: teacher_click_logit}
    techniques: [none, aux_head]
seeds: [1, 2, 3]
fractions: [1.0]
bootstrap: {resamples: 30, seed: 3}
min_positives: 5
"""
FEATURES = """\
features:
  - {name: user, type: categorical, column: user_id, dim: 4}
  - {name: item, type: categorical, column: item_id, dim: 4}
  - {name: genre, type: categorical, column: genre, dim: 2}
  - {name: item_quality, type: numeric, transform: zscore}
"""
DATA = ("data: {path: %s, split: {by: column, column: split}, group: request_id, user: user_id,"
        " slices: [new_release]}\n")
TRAIN = "train: {batch_size: 64, epochs: 1, seed: 1, threads: 1}\n"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    (d / "synth.yaml").write_text("users: 40\ngenres: 5\nsource: {requests: 300, items: 60}\n"
                                  "target: {requests: 120, items: 30}\n")
    cli("synth", "--config", d / "synth.yaml", "--out", d, "--quiet")
    (d / "teacher.yaml").write_text(DATA % "source.csv" + FEATURES + textwrap.dedent("""\
        tasks:
          - {name: click, type: binary, label: click}
          - {name: watch_time, type: regression, label: watch_time, mask: click}
        model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}
        """) + TRAIN)
    (d / "home.yaml").write_text(DATA % "target.csv" + FEATURES + textwrap.dedent("""\
        tasks:
          - {name: click, type: binary, label: click}
          - {name: engagement, type: regression, label: engagement, mask: click}
        model: {type: shared_bottom, bottom_layers: [8], tower_layers: [4]}
        """) + TRAIN)
    (d / "map.yaml").write_text(textwrap.dedent("""\
        features:
          - {feature: user, column: user_id}
          - {feature: item, column: item_id}
          - {feature: genre, column: genre}
          - {feature: item_quality, column: item_quality}
        teacher_tasks:
          - {name: teacher_click, head: click}
          - {name: teacher_click_logit, head: click, form: logit}
        """))
    (d / "study.yaml").write_text(STUDY)
    return d


def strip_timing(x):
    """results.json without what differs between two identical runs: wall
    seconds."""
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [strip_timing(v) for v in x]
    return x


def test_experiment_table_and_plot(study_dir, tmp_path):
    ctx = crossrec.Context(threads=1, quiet=True, progress=False)
    study = crossrec.experiment(study_dir / "study.yaml", tmp_path / "out", context=ctx)
    assert os.path.exists(tmp_path / "out" / "report.html")
    with open(tmp_path / "out" / "results.json") as f:
        assert study.results == json.load(f)
    t = study.table()
    assert set(t["variant"]) == {"none", "aux_head"}
    assert set(t["task"]) == {"click", "engagement"}
    ctl = t[t["control"]]
    assert ctl["diff"].isna().all() and (ctl["seeds"] == 3).all()
    aux = t[(t["variant"] == "aux_head") & (t["task"] == "click")].iloc[0]
    assert aux["lo"] <= aux["mean"] <= aux["hi"] and 0 <= aux["p"] <= 1
    assert aux["verdict"] in ("significant", "not significant")  # 3 seeds: a verdict
    assert "aux_head" in study.text()
    # the same results as the command's own run of the study
    cli("experiment", "--config", study_dir / "study.yaml", "--out", tmp_path / "cli", "--quiet",
        "--threads", 1)
    with open(tmp_path / "cli" / "results.json") as f:
        want = json.load(f)
    assert strip_timing(study.results["students"]) == strip_timing(want["students"])
    import matplotlib
    matplotlib.use("Agg")
    fig = study.plot()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(-hi) and hi > 0
    assert crossrec.load_study(str(tmp_path / "out")).results == study.results


def test_cancel_with_ctrl_c(ml, tmp_path):
    """Ctrl-C during train stops at the next step with the last checkpoint
    kept and raises KeyboardInterrupt."""
    cfg = ml / "long.yaml"  # no early stopping: the run outlasts the signal
    cfg.write_text((ml / "ranker.yaml").read_text().replace(
        "seed: 1, threads: 1}", "seed: 1, threads: 1, early_stopping: {mode: none}}"))
    code = textwrap.dedent(f"""
        import os, signal, sys, threading
        sys.path.insert(0, {os.path.join(ROOT, 'python')!r})
        import crossrec
        seen = []
        def log(level, line):
            if "model mmoe" in line and not seen:  # training starts
                seen.append(1)
                os.kill(os.getpid(), signal.SIGINT)
        ctx = crossrec.Context(threads=1, log=log, progress=False)
        try:
            crossrec.train({str(cfg)!r}, {str(tmp_path / 'run')!r}, max_steps=100000,
                           epochs=50, context=ctx)
        except KeyboardInterrupt:
            print("interrupted")
    """)
    env = dict(os.environ, CROSSREC_LIBRARY=os.path.join(BUILD, "libcrossrec.so"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert "interrupted" in r.stdout, r.stderr[-2000:]
    assert os.path.exists(tmp_path / "run" / "last.safetensors")
    assert not os.path.exists(tmp_path / "run" / "model.safetensors")


def test_cancel_from_another_thread(ml, tmp_path):
    import threading
    ctx = crossrec.Context(threads=1, quiet=True, progress=False)
    cfg = ml / "long2.yaml"
    cfg.write_text((ml / "ranker.yaml").read_text().replace(
        "seed: 1, threads: 1}", "seed: 1, threads: 1, early_stopping: {mode: none}}"))
    threading.Timer(0.5, ctx.cancel).start()
    with pytest.raises(crossrec.CancelledError) as ei:
        crossrec.train(cfg, tmp_path / "run", epochs=50, max_steps=100000, context=ctx)
    assert "cancelled" in str(ei.value)
    assert os.path.exists(tmp_path / "run" / "last.safetensors")


def test_ilm(tmp_path):
    """A tiny ILM study run by the command, then its model through the
    package: catalogue, find, recommend, and a chat turn the command's chat
    answers the same way."""
    cfg = tmp_path / "ilm.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        data: {ROOT}/data/movielens
        lm: {ROOT}/data/models/austen-small/model.safetensors
        tokenizer: {ROOT}/data/models/austen-small/tokenizer
        seeds: [1]
        variants: [ilm]
        mf: {{dim: 8, epochs: 2, seed: 1}}
        phase1: {{steps: 4, batch: 4, queries: 2, layers: 1, width: 16, heads: 2, warmup: 1,
                 bpe_vocab: 300, held: 0.1}}
        phase2: {{steps: 3, batch: 2, hist: 2, max_seq: 80, warmup: 1, mlp_hidden: 8}}
        eval: {{users: 5, negatives: 4, items: 3, batch: 8}}
        """))
    cli("ilm", "study", "--config", cfg, "--out", tmp_path / "out")
    d = tmp_path / "out" / "seed1" / "ilm" / "phase2"
    ilm = crossrec.ILM.load(d)
    items = ilm.items()
    assert len(items) == len(ilm) > 1000
    toy = ilm.find("toy story")
    assert items.set_index("item").loc[toy, "title"] == "Toy Story (1995)"
    heat = ilm.find("Heat")
    rec = ilm.recommend([toy, "Heat"], k=5)
    assert len(rec) == 5 and toy not in set(rec["item"]) and heat not in set(rec["item"])
    assert list(rec["score"]) == sorted(rec["score"], reverse=True)
    line = "I liked Toy Story and Heat. What should I watch?"
    reply = ilm.chat(line)
    r = subprocess.run([os.path.join(BUILD, "crossrec"), "ilm", "chat", "--model", str(d)],
                       input=line + "\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert reply.strip() == r.stdout.strip()
    top3 = crossrec.ILM.load(d).recommend([toy, heat], k=3)
    for title in top3["title"]:
        assert title in reply
    with pytest.raises(crossrec.NotFoundError):
        ilm.recommend([123456789], k=3)
    with pytest.raises(crossrec.NotFoundError):
        ilm.recommend(["zzqx qqvv"], k=3)
