"""Contexts: the thread count, kernel set, precision, log and progress every
computing call runs with (crossrec.h's cr_ctx). A Context keeps only settings; each
call makes its own C context, so one Python Context may serve several
threads at once, and Context.cancel() stops every call running on it.
Ctrl-C during a long call on the main thread cancels it cleanly (the
library stops at its next safe point, keeping its last checkpoint) and
raises KeyboardInterrupt."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, Optional

from ._ffi import ffi, lib
from .errors import CancelledError, check, new_error

_PRECISION = {"fp32": lib.CR_PRECISION_FP32, "bf16": lib.CR_PRECISION_BF16,
              "int8": lib.CR_PRECISION_INT8}

LogFn = Callable[[str, str], None]  # (level "info"|"warning", line)


def _default_log(level: str, line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Bar:
    """A progress bar (tqdm's, which draws in notebooks and terminals), fed
    by the library's progress callback."""

    def __init__(self, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.stage = None

    def update(self, stage: str, done: int, total: int, unit: str, loss: float) -> None:
        if not self.enabled:
            return
        if self.bar is None or stage != self.stage:
            self.close()
            try:
                from tqdm.auto import tqdm
            except ImportError:
                self.enabled = False
                return
            self.bar = tqdm(total=total or None, desc=stage, unit=" " + unit, leave=True)
            self.stage = stage
        self.bar.n = done
        if loss == loss:  # not NaN
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Context:
    """Settings for crossrec's computing calls.

    threads: 0 = the CPUs this process may use; a job's own setting (a
        config's train.threads) applies when this is 0.
    precision: "fp32", "bf16" (training products, scoring weights) or
        "int8" (scoring weights only).
    kernels: the kernel set ("scalar", "avx2", "avx512", "avx512bf16",
        "neon"); None or "auto" = the process's (the best the CPU runs, or
        CROSSREC_ISA). A set this build or CPU lacks raises ArgumentError
        (a ValueError) when a call starts; kernel_set() checks it at once.
    log: called with (level, line) for each log line; None prints them to
        sys.stderr (so they show in notebooks); quiet=True drops them.
    progress: show a progress bar for long jobs (needs tqdm).
    """

    def __init__(self, threads: int = 0, precision: str = "fp32", log: Optional[LogFn] = None,
                 quiet: bool = False, progress: bool = True, kernels: Optional[str] = None):
        if precision not in _PRECISION:
            raise ValueError(f"precision must be one of {sorted(_PRECISION)}, not {precision!r}")
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an int >= 0, not {threads!r}")
        if kernels is not None and not isinstance(kernels, str):
            raise ValueError(f"kernels must be a str or None, not {kernels!r}")
        self.threads = threads
        self.precision = precision
        self.kernels = kernels
        self.log = log or _default_log
        self.quiet = quiet
        self.progress = progress
        self._running: set = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Context(threads={self.threads}, precision={self.precision!r}, "
                f"kernels={self.kernels!r})")

    def kernel_set(self) -> str:
        """The kernel set calls on this context use ("avx2", ...): its own,
        or the process's. ArgumentError when this build or CPU cannot run
        the one it names."""
        with self.call(progress=False) as c:
            return ffi.string(lib.cr_ctx_kernels(c)).decode()

    def cancel(self) -> None:
        """Ask every call running on this context to stop (it then raises
        CancelledError, or KeyboardInterrupt after Ctrl-C)."""
        with self._lock:
            for c in self._running:
                lib.cr_ctx_cancel(c)

    @contextlib.contextmanager
    def call(self, progress: Optional[bool] = None) -> Iterator:
        """A C context for one call, with this context's settings and
        callbacks alive for its duration; Ctrl-C cancels it."""
        bar = _Bar(self.progress if progress is None else progress)
        log = self.log

        @ffi.callback("void(void *, cr_log_level, const char *)")
        def on_log(user, level, line):
            log("warning" if level == lib.CR_LOG_WARN else "info",
                ffi.string(line).decode("utf-8", "replace"))

        @ffi.callback("int(void *, const cr_progress_info *)")
        def on_progress(user, p):
            bar.update(ffi.string(p.stage).decode(), p.done, p.total, ffi.string(p.unit).decode(),
                       p.loss)
            return 0

        params = ffi.new("cr_ctx_params *")
        lib.cr_ctx_params_init(params)
        params.threads = self.threads
        params.precision = _PRECISION[self.precision]
        params.quiet = 1 if self.quiet else 0
        kernels = ffi.new("char[]", self.kernels.encode()) if self.kernels else ffi.NULL
        params.kernels = kernels  # read by cr_ctx_new only
        params.log = on_log
        params.progress = on_progress
        out = ffi.new("cr_ctx **")
        err = new_error()
        check(lib.cr_ctx_new(out, params, err), err)
        c = out[0]
        with self._lock:
            self._running.add(c)
        interrupted = []
        previous = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                interrupted.append(True)
                lib.cr_ctx_cancel(c)
            previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield c
        except CancelledError:
            if interrupted:
                raise KeyboardInterrupt("crossrec: cancelled by Ctrl-C") from None
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            with self._lock:
                self._running.discard(c)
            bar.close()
            lib.cr_ctx_free(c)


_default: Optional[Context] = None


def default_context() -> Context:
    """The Context calls use when given none: all CPUs, fp32, logs to stderr."""
    global _default
    if _default is None:
        _default = Context()
    return _default
