"""crossrec.dask on a LocalCluster of two single-threaded workers: the
partitioned result equals the command's output on the whole file, row for
row, in order."""
import os

import numpy as np
import pandas as pd
import pytest

import crossrec
import crossrec.dask
from conftest import head_csv, cli

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_score_partitions_equal_cli(ml, tmp_path, client):
    model = ml / "cli_run" / "model.safetensors"
    cli("score", "--model", model, "--data", ml / "imp.csv", "--out", tmp_path / "cli.csv",
        "--id-column", "request_id")
    want = pd.read_csv(tmp_path / "cli.csv")
    ddf = dd.read_csv(ml / "imp.csv", blocksize=1_000_000, keep_default_na=False, dtype=str)
    assert ddf.npartitions >= 3
    res = crossrec.dask.score(ddf, str(model), id_columns="request_id", out=str(tmp_path / "d.csv"))
    got = res.compute()
    assert len(got) == len(want)
    assert list(got["request_id"].astype(int)) == list(want["request_id"])
    m = crossrec.Model.load(model)
    np.testing.assert_allclose(got[m.outputs].to_numpy(), want[m.outputs].to_numpy(), atol=1e-6)
    written = pd.read_csv(tmp_path / "d.csv")
    np.testing.assert_allclose(written[m.outputs].to_numpy(), want[m.outputs].to_numpy(), atol=1e-6)
    # each worker loaded the model once, whatever the partition count
    loads = client.run(lambda: len(__import__("crossrec.dask").dask._models))
    assert all(n == 1 for n in loads.values())


def test_label_partitions_equal_cli(ml, tmp_path, client):
    from test_jobs import MAP
    (tmp_path / "map.yaml").write_text(MAP)
    teacher = ml / "cli_run" / "model.safetensors"
    head = tmp_path / "rows.csv"
    head_csv(ml / "imp.csv", head, 20000)
    cli("label", "--teacher", teacher, "--map", tmp_path / "map.yaml", "--data", head,
        "--out", tmp_path / "cli.csv", "--quiet")
    want = pd.read_csv(tmp_path / "cli.csv")
    ddf = dd.read_csv(head, blocksize=400_000, keep_default_na=False, dtype=str)
    assert ddf.npartitions >= 3
    got = crossrec.dask.label(ddf, str(teacher), str(tmp_path / "map.yaml")).compute()
    assert len(got) == len(want)
    assert list(got["request_id"].astype(int)) == list(want["request_id"])
    for c in ("teacher_click", "teacher_engagement"):
        np.testing.assert_allclose(got[c], want[c], rtol=1e-6, atol=1e-7)
