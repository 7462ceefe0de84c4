"""Batch scoring and labelling on a Dask cluster.

Each partition is scored (or labelled) where it lives; every worker process
loads a model once and keeps it for the partitions that follow (keyed by
path and file version). Row order and index are kept. The result is a
Dask DataFrame; with out=..., it is also written as CSV (one file, in
partition order, or one per partition with a '*' in the name).

    import dask.dataframe as dd, crossrec.dask
    ddf = dd.read_csv("impressions.csv", blocksize="16MB")
    scores = crossrec.dask.score(ddf, "out/ml/model.safetensors")
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Optional, Tuple

import pandas as pd

_models: Dict[Tuple[str, float, Optional[str]], object] = {}
_lock = threading.Lock()


def _model(path: str, precision: Optional[str]):
    """This process's copy of the model (loaded on first use)."""
    from .model import Model
    key = (os.path.abspath(path), os.path.getmtime(path), precision)
    with _lock:
        m = _models.get(key)
        if m is None:
            m = _models[key] = Model.load(path, precision=precision)
        return m


def _score_partition(df: pd.DataFrame, path: str, precision: Optional[str],
                     id_columns: Tuple[str, ...]) -> pd.DataFrame:
    m = _model(path, precision)
    out = m.score(df, as_frame=True)
    if id_columns:
        out = pd.concat([df[list(id_columns)], out], axis=1)
    return out


def _meta_scores(path: str, precision: Optional[str], ddf, id_columns) -> pd.DataFrame:
    m = _model(path, precision)
    meta = pd.DataFrame({c: pd.Series(dtype=ddf[c].dtype) for c in id_columns})
    for name in m.outputs:
        meta[name] = pd.Series(dtype="float32")
    return meta


def score(ddf, model_path: str, *, precision: Optional[str] = None, id_columns=(),
          out: Optional[str] = None):
    """Score every row of a Dask DataFrame with a saved model: a Dask
    DataFrame with the id columns (if any) and one float32 column per
    output, same index and order. out: also write CSV there (computes)."""
    ids = tuple([id_columns] if isinstance(id_columns, str) else id_columns)
    meta = _meta_scores(model_path, precision, ddf, ids)
    res = ddf.map_partitions(_score_partition, model_path, precision, ids, meta=meta)
    if out:
        res.to_csv(out, single_file="*" not in out, index=False)
    return res


def _label_partition(df: pd.DataFrame, teacher: str, map_path: str) -> pd.DataFrame:
    from .jobs import label_frame
    from .context import Context
    return label_frame(teacher, map_path, df, context=Context(threads=1, quiet=True,
                                                               progress=False))


def label(ddf, teacher: str, map: str, *, out: Optional[str] = None):
    """The teacher's soft-label columns added to every row (crossrec.label
    per partition). A Dask DataFrame, same index and order; out: also
    write CSV there (computes)."""
    head = ddf.head(2, npartitions=-1)
    meta = _label_partition(head, teacher, map).iloc[:0]
    res = ddf.map_partitions(_label_partition, teacher, map, meta=meta)
    if out:
        res.to_csv(out, single_file="*" not in out, index=False)
    return res
