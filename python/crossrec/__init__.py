"""crossrec for Python: multi-task rankers trained on CSV logs, zero-shot
cross-domain distillation, and item-language models, over the C library's
public API (include/crossrec.h).

    import crossrec
    run = crossrec.train("examples/movielens/ranker.yaml", "out/ml")
    model = crossrec.Model.load(run.model_path)
    scores = model.score(frame)             # numpy (rows, outputs)

See docs/python.md.
"""
from ._ffi import LIBRARY_PATH, ffi, lib
from .context import Context, default_context
from .errors import (ArgumentError, CancelledError, ConfigError, Error, FormatError, InternalError,
                     IOFailure, LimitError, MismatchError, NotFoundError, ParseError, ShapeError)
from .jobs import Run, Study, evaluate, experiment, export, label, label_frame, load_study, train
from .lm import ILM, LM
from .model import Input, Model

__version__ = ffi.string(lib.cr_version()).decode()

__all__ = ["Context", "default_context", "Error", "ArgumentError", "CancelledError", "ConfigError",
           "FormatError", "InternalError", "IOFailure", "LimitError", "MismatchError",
           "NotFoundError", "ParseError", "ShapeError", "Run", "Study", "train", "evaluate",
           "label", "label_frame", "export", "experiment", "load_study", "LM", "ILM", "Model",
           "Input", "LIBRARY_PATH", "__version__"]
