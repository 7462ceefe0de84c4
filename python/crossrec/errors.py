"""Errors: one exception class per cr_status, all subclasses of
crossrec.Error, carrying the library's message (which names the file,
line, column or field at fault). Where a built-in exception means the same
thing, the class derives from it too, so `except ValueError` still works."""
from __future__ import annotations

from ._ffi import ffi, lib


class Error(Exception):
    """A crossrec call failed; str(err) is the library's message."""

    status: int = -1

    def __init__(self, message: str, status: int = -1):
        super().__init__(message)
        self.status = status


class MemoryError_(Error, MemoryError):
    """An allocation failed."""


class IOFailure(Error, OSError):
    """Opening, reading, writing or renaming a file failed."""


class ParseError(Error, ValueError):
    """Malformed text input: CSV, YAML, JSON."""


class ConfigError(Error, ValueError):
    """A well-formed config that says something invalid."""


class FormatError(Error, ValueError):
    """A truncated or corrupt binary file (a checkpoint)."""


class ShapeError(Error, ValueError):
    """Tensor shapes or sizes that do not agree."""


class ArgumentError(Error, ValueError):
    """A bad argument from the caller."""


class MismatchError(Error, ValueError):
    """Two valid things that do not belong together."""


class NotFoundError(Error, LookupError):
    """A named thing (column, tensor, feature, item) is absent."""


class LimitError(Error, ValueError):
    """A size limit was exceeded."""


class InternalError(Error):
    """A bug in crossrec: please report it."""


class CancelledError(Error):
    """The job was cancelled (crossrec.Context.cancel, or Ctrl-C)."""


_BY_STATUS = {
    lib.CR_ERR_NOMEM: MemoryError_,
    lib.CR_ERR_IO: IOFailure,
    lib.CR_ERR_PARSE: ParseError,
    lib.CR_ERR_CONFIG: ConfigError,
    lib.CR_ERR_FORMAT: FormatError,
    lib.CR_ERR_SHAPE: ShapeError,
    lib.CR_ERR_ARG: ArgumentError,
    lib.CR_ERR_MISMATCH: MismatchError,
    lib.CR_ERR_NOT_FOUND: NotFoundError,
    lib.CR_ERR_LIMIT: LimitError,
    lib.CR_ERR_INTERNAL: InternalError,
    lib.CR_ERR_CANCELLED: CancelledError,
}


def new_error():
    """A cr_error for one call."""
    return ffi.new("cr_error *")


def check(status: int, err) -> None:
    """Raise the Error subclass for a failed status with err's message."""
    if status == lib.CR_OK:
        return
    msg = ffi.string(err.msg).decode("utf-8", "replace") if err != ffi.NULL else ""
    if not msg:
        msg = ffi.string(lib.cr_strerror(status)).decode()
    raise _BY_STATUS.get(status, Error)(msg, status)
