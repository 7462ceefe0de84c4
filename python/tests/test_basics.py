"""The package over the public API: train, evaluate, score, requests,
errors, the LM; each compared with what the command-line tool gives."""
import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

import crossrec
from conftest import head_csv, CLI, ROOT, cli


def test_version_and_library():
    assert crossrec.__version__.count(".") == 2
    assert os.path.exists(crossrec.LIBRARY_PATH)


def test_context_validates():
    with pytest.raises(ValueError):
        crossrec.Context(precision="fp16")
    with pytest.raises(ValueError):
        crossrec.Context(threads=-1)


def test_context_kernels():
    assert crossrec.Context(kernels="scalar").kernel_set() == "scalar"
    assert crossrec.Context().kernel_set() in ("scalar", "avx2", "avx512", "avx512bf16", "neon")
    assert crossrec.Context(kernels="auto").kernel_set() == crossrec.Context().kernel_set()
    with pytest.raises(crossrec.ArgumentError) as ei:
        crossrec.Context(kernels="avx9").kernel_set()
    assert "avx9" in str(ei.value) and "kernels" in str(ei.value)
    with pytest.raises(ValueError):
        crossrec.Context(kernels=3)


def test_train_equals_cli(ml, tmp_path):
    lines = []
    ctx = crossrec.Context(threads=1, log=lambda lv, s: lines.append(s), progress=False)
    run = crossrec.train(ml / "ranker.yaml", tmp_path / "run", context=ctx)
    assert run.model_path == str(tmp_path / "run" / "model.safetensors")
    with open(ml / "cli_run" / "metrics.json") as f:
        want = json.load(f)
    assert run.metrics["test"] == want["test"]
    assert run.metrics["valid"] == want["valid"]
    assert any("dense parameters" in s for s in lines)
    # the same bytes as the command's model
    assert open(run.model_path, "rb").read() == open(ml / "cli_run" / "model.safetensors", "rb").read()


def test_train_overrides_and_errors(ml, tmp_path):
    ctx = crossrec.Context(threads=1, quiet=True, progress=False)
    run = crossrec.train(ml / "ranker.yaml", tmp_path / "r", max_steps=10, seed=2, context=ctx)
    assert run.metrics["train"]["steps"] == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text((ml / "ranker.yaml").read_text().replace("tower_layers", "tower_layerz"))
    with pytest.raises(crossrec.ConfigError) as ei:
        crossrec.train(bad, tmp_path / "x", context=ctx)
    assert "bad.yaml" in str(ei.value) and "tower_layerz" in str(ei.value)
    with pytest.raises(crossrec.IOFailure) as ei:
        crossrec.train(tmp_path / "nope.yaml", tmp_path / "x", context=ctx)
    assert "nope.yaml" in str(ei.value)


def test_train_section_overrides(ml, tmp_path):
    ctx = crossrec.Context(threads=1, quiet=True, progress=False)
    run = crossrec.train(ml / "ranker.yaml", tmp_path / "r", context=ctx,
                         train={"max_steps": 7, "lr": 0.002},
                         model={"type": "shared_bottom", "bottom_layers": [8]})
    assert run.metrics["train"]["steps"] == 7
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "shared_bottom" in saved
    m = crossrec.Model.load(run.model_path)
    assert m.outputs == ["click", "like", "engagement"]
    with pytest.raises(crossrec.ConfigError) as ei:
        crossrec.train(ml / "ranker.yaml", tmp_path / "x", context=ctx, model={"experts": "many"})
    assert "experts" in str(ei.value)
    with pytest.raises(TypeError):
        crossrec.train(ml / "ranker.yaml", tmp_path / "x", context=ctx, train=3)


def test_evaluate_equals_cli(ml, tmp_path):
    model = ml / "cli_run" / "model.safetensors"
    got = crossrec.evaluate(model, ml / "ranker.yaml", split="valid")
    cli("eval", "--model", model, "--config", ml / "ranker.yaml", "--split", "valid",
        "--out", tmp_path / "e.json")
    with open(tmp_path / "e.json") as f:
        assert got == json.load(f)
    with pytest.raises(crossrec.ArgumentError):
        crossrec.evaluate(model, ml / "ranker.yaml", split="nope")


@pytest.fixture(scope="module")
def frame(ml):
    return pd.read_csv(ml / "imp.csv", keep_default_na=False, dtype=str).iloc[:3000]


@pytest.fixture(scope="module")
def model(ml):
    return crossrec.Model.load(ml / "cli_run" / "model.safetensors")


def cli_scores(ml, tmp_path, n):
    head = tmp_path / "head.csv"
    head_csv(ml / "imp.csv", head, n)
    cli("score", "--model", ml / "cli_run" / "model.safetensors", "--data", head, "--out",
        tmp_path / "s.csv")
    return pd.read_csv(tmp_path / "s.csv")


def test_model_describes_itself(model):
    assert [i.column for i in model.inputs][:2] == ["user_id", "movie_id"]
    assert {i.kind for i in model.inputs} == {"id", "multi", "number"}
    assert model.outputs == ["click", "like", "engagement"]
    assert model.binary == [True, True, False]


def test_score_frame_equals_cli(ml, tmp_path, model, frame):
    want = cli_scores(ml, tmp_path, len(frame))
    got = model.score(frame)                      # text columns
    assert got.shape == (len(frame), 3)
    np.testing.assert_allclose(got, want[model.outputs].to_numpy(), atol=1e-6)
    typed = pd.read_csv(ml / "imp.csv").iloc[:len(frame)]  # numbers as float64/int64
    assert typed["user_id"].dtype == np.int64 and typed["hist_mean_rating"].dtype == np.float64
    np.testing.assert_array_equal(model.score(typed), got)
    df = model.score(typed, as_frame=True)
    assert list(df.columns) == model.outputs and df.index.equals(typed.index)


def test_score_other_inputs(model, frame):
    rows = frame.iloc[:50]
    want = model.score(rows)
    np.testing.assert_array_equal(model.score(rows.to_dict(orient="records")), want)
    np.testing.assert_array_equal(model.score({c: list(rows[c]) for c in rows.columns}), want)
    cat = rows.copy()
    cat["movie_id"] = cat["movie_id"].astype("category")
    np.testing.assert_array_equal(model.score(cat), want)
    # numbers in one row-major block: each column is a strided view, passed as it is
    typed = pd.read_csv(pd.io.common.StringIO(rows.to_csv(index=False)))
    num = ["hist_count", "item_popularity", "hist_mean_rating"]
    block = pd.DataFrame(np.ascontiguousarray(typed[num].to_numpy(np.float64)), columns=num)
    rest = typed[[i.column for i in model.inputs if i.column not in num]]
    assert not any(rest.dtypes == np.float64)  # else concat would consolidate (copy) the block
    strided = pd.concat([rest, block], axis=1, copy=False)
    assert strided["hist_count"].to_numpy().strides[0] == 24
    np.testing.assert_array_equal(model.score(strided), want)
    f32 = typed.astype({c: np.float32 for c in num})
    np.testing.assert_allclose(model.score(f32), want, atol=1e-5)
    assert model.score(rows.iloc[:0]).shape == (0, 3)


def test_score_errors(model, frame):
    with pytest.raises(crossrec.NotFoundError) as ei:
        model.score(frame.drop(columns=["movie_id"]))
    assert "movie_id" in str(ei.value)
    bad = frame.iloc[:5].copy()
    bad.loc[bad.index[3], "hist_count"] = "lots"
    with pytest.raises(crossrec.ParseError) as ei:
        model.score(bad)
    assert "row 3" in str(ei.value) and "hist_count" in str(ei.value)
    with pytest.raises(crossrec.IOFailure):
        crossrec.Model.load("no/such/model.safetensors")


def test_score_request(model, frame):
    req = frame[frame["request_id"] == frame["request_id"].iloc[0]]
    ctx_cols = ["user_id", "last_items", "hist_count", "hist_mean_rating"]
    context = {c: req[c].iloc[0] for c in ctx_cols}
    scores, order = model.score_request(context, req)
    np.testing.assert_allclose(scores, model.score(req), atol=1e-5)
    # typed candidates (ids as int64, a float year with a missing value) score the same
    typed = pd.read_csv(pd.io.common.StringIO(req.to_csv(index=False)))
    typed.loc[typed.index[0], "year"] = np.nan
    want = model.score(typed)
    s2, _ = model.score_request({c: typed[c].iloc[0] for c in ctx_cols}, typed)
    np.testing.assert_allclose(s2, want, atol=1e-5)
    rows = req.to_dict(orient="records")
    s3, o3 = model.score_request(context, rows)
    np.testing.assert_array_equal(s3, scores)
    assert sorted(order) == list(range(len(req)))
    assert list(order) == list(np.argsort(-scores[:, 0], kind="stable"))


def test_threads_score_in_parallel(model, frame):
    """The GIL is released while the library computes: a Python thread
    keeps running during a long scoring call (counted, not timed)."""
    big = pd.concat([frame] * 20, ignore_index=True)
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    before = counter[0]
    model.score(big)
    during = counter[0] - before
    done.set()
    t.join()
    assert during > 1000, f"the spinning thread advanced only {during} times during scoring"


def test_lm_equals_cli():
    m = os.path.join(ROOT, "data/models/austen-small/model.safetensors")
    tok = os.path.join(ROOT, "data/models/austen-small/tokenizer")
    lm = crossrec.LM.load(m, tokenizer=tok)
    assert lm.detokenize(lm.tokenize("Emma was not sorry")) == "Emma was not sorry"
    got = lm.generate("Emma was", n=16, temperature=0.8, top_k=40, seed=7)
    want = cli("lm", "generate", "--model", m, "--tokenizer", tok, "--prompt", "Emma was",
               "-n", 16, "--temperature", 0.8, "--top-k", 40, "--seed", 7).stdout
    assert "Emma was" + got + "\n" == want
    ids = lm.generate_ids([lm.bos] + lm.tokenize("Emma"), n=5, temperature=0)
    assert len(ids) == 5 and all(0 <= i < lm.vocab_size for i in ids)
    with pytest.raises(crossrec.LimitError):
        lm.generate("x", n=lm.context_length + 1)
    with pytest.raises(crossrec.ArgumentError):
        crossrec.LM.load(m).tokenize("no tokenizer")


def test_text_columns_reach_c_unchanged():
    """Every path that turns a column of text into C strings: plain ASCII,
    non-ASCII, missing values (None, NaN, ""); lists for a bag are list
    columns (test_list_columns)."""
    from crossrec._ffi import ffi
    from crossrec.model import _Text
    cases = [
        (["a", "bc", "", "d"], [b"a", b"bc", b"", b"d"]),
        (["Amélie", "東京", "x"], ["Amélie".encode(), "東京".encode(), b"x"]),
        (["a", None, float("nan"), "b"], [b"a", None, None, b"b"]),
        ([1, 2.5, "x"], [b"1", b"2.5", b"x"]),
    ]
    for values, want in cases:
        t = _Text(values)
        got = [None if t.addr[i] == 0 else ffi.string(ffi.cast("const char *", int(t.addr[i])))
               for i in range(len(values))]
        # a missing value is NULL or "": both are missing to the library
        assert [g or None for g in got] == [w or None for w in want], (values, got)


def test_list_columns(model, frame):
    """A multi-valent input's bags as Python lists reach the library item by
    item (a list column, never joined): the same scores, bit for bit, as the
    bags as text, in rows and in a request's candidates and context; a bad
    item is refused naming the column, the row and the item."""
    from crossrec._ffi import ffi
    from crossrec.model import _Lists
    rows = frame.iloc[:80]
    want = model.score(rows)
    multi = [i for i in model.inputs if i.kind == "multi"]
    assert {i.column for i in multi} == {"last_items", "genres"}
    lists = rows.copy()
    for inp in multi:
        lists[inp.column] = [tuple(v.split(inp.sep)) if isinstance(v, str) and v else []
                             for v in rows[inp.column]]
    assert any(len(v) > 1 for v in lists["genres"])
    np.testing.assert_array_equal(model.score(lists), want)
    # the items really go one by one: a list of one item holding the separator is refused
    bad = lists.copy()
    bad.at[bad.index[2], "genres"] = ["Comedy|Drama"]
    with pytest.raises(crossrec.ParseError) as ei:
        model.score(bad)
    assert "row 2: column 'genres': item 0 ('Comedy|Drama') holds the separator '|'" in str(ei.value)
    bad.at[bad.index[2], "genres"] = ["Comedy", 1.5]
    with pytest.raises(ValueError) as ei:
        model.score(bad)
    assert "column 'genres', row 2, item 1: expected a str or an int" in str(ei.value)
    # integer ids as their digits, a text among the lists as a list of one
    ls = _Lists([["a", 12, np.int64(7)], "b", None, []], "c", "|")
    got = [[ffi.string(ls.lists[r].items[k]) for k in range(ls.lists[r].n)] for r in range(4)]
    assert got == [[b"a", b"12", b"7"], [b"b"], [], []]
    # a request: candidates' bags and the context's as lists
    req = frame[frame["request_id"] == frame["request_id"].iloc[0]]
    ctx_cols = ["user_id", "last_items", "hist_count", "hist_mean_rating"]
    context = {c: req[c].iloc[0] for c in ctx_cols}
    s_text, o_text = model.score_request(context, req)
    lreq = req.copy()
    lreq["genres"] = [v.split("|") if isinstance(v, str) and v else [] for v in req["genres"]]
    lctx = dict(context)
    v = context["last_items"]
    lctx["last_items"] = v.split("|") if isinstance(v, str) and v else []
    s_list, o_list = model.score_request(lctx, lreq)
    np.testing.assert_array_equal(s_list, s_text)
    np.testing.assert_array_equal(o_list, o_text)
