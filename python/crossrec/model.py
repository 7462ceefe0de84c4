"""Trained rankers: load, describe, score data frames and serving requests.

Scoring hands each input column to the library as it is: numeric columns
(float64, float32, int64, int32) pass without a copy when their layout
allows (a stride is fine), text columns as one block of bytes with
pointers into it, lists (a multi-valent input's bags) item by item as
list columns, categoricals through their categories. The GIL is
released while the library computes, so threads score in parallel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ._ffi import ffi, lib, text
from .errors import check, new_error

Frame = Union[pd.DataFrame, Mapping[str, Any], Sequence[Mapping[str, Any]]]

_PRECISION = {None: None, "fp32": lib.CR_PRECISION_FP32, "bf16": lib.CR_PRECISION_BF16,
              "int8": lib.CR_PRECISION_INT8}
_NUMERIC = {np.dtype(np.float64): (lib.CR_COL_F64, 8), np.dtype(np.float32): (lib.CR_COL_F32, 4),
            np.dtype(np.int64): (lib.CR_COL_I64, 8), np.dtype(np.int32): (lib.CR_COL_I32, 4)}


@dataclass(frozen=True)
class Input:
    """One model input: the column it reads and what it expects."""
    column: str
    kind: str            # "number" (numeric or bucketized), "multi" (a bag of ids), "id"
    sep: Optional[str]   # the separator of a multi-valent input ("Comedy|Drama")


def _as_frame(frame: Frame) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, Mapping):
        return pd.DataFrame(frame)
    return pd.DataFrame(list(frame))


class _Text:
    """A column of strings as char* pointers into one block of bytes (None
    and NaN become NULL: missing). ASCII columns are converted by numpy in
    one pass into fixed-width NUL-terminated slots; others a value at a
    time."""

    def __init__(self, values: Sequence[Any]):
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        n = len(arr)
        if arr.dtype == object and self._joined(arr.tolist()):
            return
        missing = np.asarray(pd.isna(arr), bool)
        fixed = None
        if arr.dtype.kind in "OUS":
            try:
                fixed = np.asarray(np.where(missing, "", arr) if missing.any() else arr, dtype="S")
            except (UnicodeEncodeError, ValueError, TypeError):
                fixed = None
        if fixed is not None:
            width = fixed.dtype.itemsize + 1  # room for the NUL of the longest
            block = np.zeros((n, width), np.uint8)
            if n and width > 1:
                block[:, :width - 1] = fixed.view(np.uint8).reshape(n, width - 1)
            self.blob = block
            base = block.__array_interface__["data"][0]
            addr = (np.arange(n, dtype=np.uint64) * np.uint64(width)) + np.uint64(base)
        else:
            parts, offsets, pos = [], np.empty(n, np.int64), 0
            for i, v in enumerate(arr):
                if missing[i]:
                    offsets[i] = 0
                    continue
                b = str(v).encode("utf-8") + b"\0"
                offsets[i] = pos
                parts.append(b)
                pos += len(b)
            self.blob = np.frombuffer(b"".join(parts) or b"\0", np.uint8)
            base = self.blob.__array_interface__["data"][0]
            addr = offsets.astype(np.uint64) + np.uint64(base)
        if missing.any():
            addr[missing] = 0
        self._set(addr)

    def _set(self, addr: np.ndarray) -> None:
        self.addr = addr
        self.ptr = ffi.cast("const char *const *", ffi.from_buffer(addr))

    def _joined(self, items: list) -> bool:
        """The common case fast: every value a str, None or NaN (missing,
        written as ""): one join, one encode, offsets from the lengths.
        False for anything else (numbers, lists), left to the general path."""
        try:
            joined = "\0".join(items)
        except TypeError:  # None or NaN among the strings: "" (missing) instead
            arr = np.asarray(items, dtype=object)
            missing = pd.isna(arr)
            if not missing.any():
                return False
            arr[missing] = ""
            items = arr.tolist()
            try:
                joined = "\0".join(items)
            except TypeError:
                return False
        data = joined.encode("utf-8")
        if len(data) == len(joined):  # ASCII: characters are bytes
            lens = np.fromiter(map(len, items), np.int64, len(items))
        else:
            lens = np.fromiter((len(x.encode("utf-8")) for x in items), np.int64, len(items))
        self.blob = np.frombuffer(data + b"\0", np.uint8)
        starts = np.zeros(len(items), np.uint64)
        if len(items) > 1:
            starts[1:] = np.cumsum(lens[:-1] + 1).astype(np.uint64)
        self._set(starts + np.uint64(self.blob.__array_interface__["data"][0]))
        return True


def _is_list(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


class _Lists:
    """A column of lists (or tuples) for a multi-valent input as one
    cr_text_list per row: each item a single value handed to the library as
    it is (a str, or an integer id as its digits), never joined with the
    separator for the library to split again. A str among the lists is a
    list of one (it may not hold the separator); None, NaN and [] are
    missing (an empty bag)."""

    def __init__(self, values: Sequence[Any], column: str, sep: Optional[str]):
        n = len(values)
        rows, total = [], 0
        for r, v in enumerate(values):
            if _is_list(v):
                items = list(v)
            elif v is None or (isinstance(v, float) and v != v):
                items = []
            elif isinstance(v, str):
                if sep and sep in v:
                    raise ValueError(f"column '{column}', row {r}: the text {v[:60]!r} holds the "
                                     f"separator {sep!r} while other rows give lists; give every "
                                     f"row as a list, or every row as text")
                items = [v] if v else []
            else:
                items = [v]
            enc = []
            for k, x in enumerate(items):
                if isinstance(x, str):
                    enc.append(x.encode("utf-8"))
                elif isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
                    enc.append(str(int(x)).encode())
                else:
                    raise ValueError(f"column '{column}', row {r}, item {k}: expected a str or an "
                                     f"int (an item of a list), got {type(x).__name__} {x!r:.60}")
            rows.append(enc)
            total += len(enc)
        self.blob = ffi.new("char[]", b"".join(b + b"\0" for enc in rows for b in enc) or b"\0")
        self.items = ffi.new("const char *[]", max(total, 1))
        self.lists = ffi.new("cr_text_list[]", max(n, 1))
        at, k = 0, 0
        for r, enc in enumerate(rows):
            self.lists[r].items = self.items + k
            self.lists[r].n = len(enc)
            for b in enc:
                self.items[k] = self.blob + at
                at += len(b) + 1
                k += 1


class Model:
    """A trained ranker (DIR/model.safetensors of crossrec.train).

    Use Model.load(path). model.inputs lists the columns it reads,
    model.outputs the served tasks it predicts (probabilities for binary
    tasks, values for regression)."""

    def __init__(self, handle, path: str):
        self._m = handle
        self.path = path
        n = lib.cr_model_n_inputs(handle)
        self.inputs: List[Input] = []
        for i in range(n):
            sep = lib.cr_model_input_sep(handle, i)
            sep = sep.decode() if isinstance(sep, bytes) and sep != b"\0" else None
            kind = "number" if lib.cr_model_input_is_number(handle, i) else ("multi" if sep else "id")
            self.inputs.append(Input(text(lib.cr_model_input_column(handle, i)), kind, sep))
        self.outputs: List[str] = [text(lib.cr_model_output_name(handle, k))
                                   for k in range(lib.cr_model_n_outputs(handle))]
        self.binary: List[bool] = [bool(lib.cr_model_output_is_binary(handle, k))
                                   for k in range(len(self.outputs))]

    @classmethod
    def load(cls, path: str, precision: Optional[str] = None,
             weights: Optional[Dict[str, float]] = None, formula: str = "weighted_sum") -> "Model":
        """Load a checkpoint. precision: None/"fp32", "bf16" or "int8" weights
        for scoring; weights: output name -> weight of the ranking formula
        (default: the first output alone); formula: "weighted_sum" or
        "product"."""
        if precision not in _PRECISION:
            raise ValueError(f"precision must be None, 'fp32', 'bf16' or 'int8', not {precision!r}")
        opts = ffi.new("cr_model_opts *")
        lib.cr_model_opts_defaults(opts)
        if precision:
            opts.precision = _PRECISION[precision]
        if formula not in ("weighted_sum", "product"):
            raise ValueError(f"formula must be 'weighted_sum' or 'product', not {formula!r}")
        opts.formula = lib.CR_RANK_PRODUCT if formula == "product" else lib.CR_RANK_WEIGHTED_SUM
        if weights:
            if len(weights) > 32:  # CR_RANK_MAX_WEIGHTS
                raise ValueError(f"at most 32 weights, got {len(weights)}")
            for k, (name, w) in enumerate(weights.items()):
                opts.weight_name[k] = name.encode()[:63]
                opts.weight[k] = float(w)
            opts.n_weights = len(weights)
        out = ffi.new("cr_model **")
        err = new_error()
        check(lib.cr_model_load_opts(out, str(path).encode(), opts, err), err)
        return cls(ffi.gc(out[0], lib.cr_model_free), str(path))

    def __repr__(self) -> str:
        return f"Model({self.path!r}, inputs={len(self.inputs)}, outputs={self.outputs})"

    @property
    def version(self) -> str:
        return text(lib.cr_model_version(self._m))

    def _columns(self, df: pd.DataFrame, skip=frozenset()):
        """The frame's columns as typed C columns, one per input (inputs in
        skip are left empty): numbers as they are, without copies where the
        layout allows; text as pointers into one block of bytes; a column
        holding lists (bags) as a list column, item by item."""
        n = len(df)
        cols = ffi.new("cr_column[]", max(len(self.inputs), 1))
        keep = []
        for i, inp in enumerate(self.inputs):
            if inp.column in skip:
                continue
            if inp.column not in df.columns:
                from .errors import NotFoundError
                raise NotFoundError(f"column '{inp.column}' is in neither the context nor the "
                                    f"frame (the model reads {[x.column for x in self.inputs]})"
                                    if skip else
                                    f"the frame has no column '{inp.column}' (the model reads "
                                    f"{[x.column for x in self.inputs]})")
            s = df[inp.column]
            if isinstance(s.dtype, pd.CategoricalDtype):
                cats = _Text(list(s.cat.categories.astype(str)))
                codes = s.cat.codes.to_numpy()
                addr = np.where(codes >= 0, cats.addr[np.maximum(codes, 0)], 0).astype(np.uint64)
                keep += [cats, addr]
                cols[i].type = lib.CR_COL_TEXT
                cols[i].data = ffi.from_buffer(addr)
                cols[i].stride = 1
                continue
            arr = s.to_numpy()
            if inp.kind == "multi" and arr.dtype == object and any(map(_is_list, arr)):
                ls = _Lists(arr, inp.column, inp.sep)
                keep.append(ls)
                cols[i].type = lib.CR_COL_TEXT_LIST
                cols[i].data = ls.lists
                cols[i].stride = 1
                continue
            if arr.dtype == np.bool_:
                arr = arr.astype(np.int32)
            kind = _NUMERIC.get(arr.dtype)
            if kind is not None and inp.kind != "multi":
                t, size = kind
                if arr.strides[0] % size or arr.strides[0] <= 0:
                    arr = np.ascontiguousarray(arr)
                keep.append(arr)
                cols[i].type = t
                cols[i].data = ffi.from_buffer(arr) if arr.flags.c_contiguous else \
                    ffi.cast("void *", arr.__array_interface__["data"][0])
                cols[i].stride = arr.strides[0] // size if n else 1
            else:
                tx = _Text(arr)
                keep.append(tx)
                cols[i].type = lib.CR_COL_TEXT
                cols[i].data = tx.ptr
                cols[i].stride = 1
        return cols, keep

    def score(self, frame: Frame, as_frame: bool = False) -> Union[np.ndarray, pd.DataFrame]:
        """Scores of every row: an array (rows, outputs), or a DataFrame with
        the output names (and the frame's index) when as_frame is set.
        frame: a pandas DataFrame, a dict of columns or a list of row dicts;
        missing values (None, NaN, "") take the schema's defaults."""
        df = _as_frame(frame)
        n = len(df)
        out = np.empty((n, len(self.outputs)), np.float32)
        if n:
            cols, keep = self._columns(df)
            err = new_error()
            check(lib.cr_model_score_columns(self._m, n, cols, ffi.cast("float *", ffi.from_buffer(out)),
                                            err), err)
            del keep
        if as_frame:
            return pd.DataFrame(out, columns=self.outputs, index=df.index)
        return out

    def score_request(self, context: Mapping[str, Any], candidates: Frame
                      ) -> Tuple[np.ndarray, np.ndarray]:
        """One serving request: the context's values (user, time, history:
        any input whose column is a key of context) computed once, then every
        candidate. Returns (scores (n, outputs), order): order lists candidate
        indices best first by the model's ranking formula."""
        cands = _as_frame(candidates)
        n = len(cands)
        if n < 1:
            raise ValueError("score_request needs at least one candidate")
        in_ctx = frozenset(inp.column for inp in self.inputs if inp.column in context)
        ctx_cols, keep_ctx = self._context(context)
        cand_cols, keep = self._columns(cands, in_ctx)
        rq = ffi.new("cr_request_columns *")
        rq.context = ctx_cols
        rq.n_candidates = n
        rq.candidates = cand_cols
        scores = np.empty((n, len(self.outputs)), np.float32)
        ranking = np.empty(n, np.float32)
        order = np.empty(n, np.int64)
        rs = ffi.new("cr_response *")
        rs.scores = ffi.cast("float *", ffi.from_buffer(scores))
        rs.ranking = ffi.cast("float *", ffi.from_buffer(ranking))
        rs.order = ffi.cast("int64_t *", ffi.from_buffer(order))
        err = new_error()
        check(lib.cr_model_score_request_columns(self._m, rq, rs, err), err)
        del keep_ctx, keep
        return scores, order

    def _context(self, context: Mapping[str, Any]):
        """The context's values as one-row typed columns (data NULL marks a
        candidate input): integers and floats as numbers, text as text,
        lists (a multi-valent input's bag) as a list, item by item."""
        cols = ffi.new("cr_column[]", max(len(self.inputs), 1))
        keep = []
        for i, inp in enumerate(self.inputs):
            if inp.column not in context:
                continue
            v = context[inp.column]
            if _is_list(v):
                buf = _Lists([v], inp.column, inp.sep)
                cols[i].type = lib.CR_COL_TEXT_LIST
                cols[i].data = buf.lists
                keep.append(buf)
                cols[i].stride = 1
                continue
            if isinstance(v, (bool, np.bool_)):
                v = int(v)
            if isinstance(v, (int, np.integer)):
                buf = np.array([v], np.int64)
                cols[i].type = lib.CR_COL_I64
                cols[i].data = ffi.from_buffer(buf)
            elif isinstance(v, (float, np.floating)):
                buf = np.array([v], np.float64)
                cols[i].type = lib.CR_COL_F64
                cols[i].data = ffi.from_buffer(buf)
            else:
                text = ffi.new("char[]", b"" if v is None else str(v).encode())
                buf = ffi.new("const char *[1]", [text])
                keep.append(text)
                cols[i].type = lib.CR_COL_TEXT
                cols[i].data = buf
            keep.append(buf)
            cols[i].stride = 1
        return cols, keep
