"""The binding itself: the declarations of crossrec.h handed to cffi (ABI
mode, so nothing is compiled at install time), and the library found and
opened once.

Where the library comes from, first match wins:
  1. the environment variable CROSSREC_LIBRARY (a path to libcrossrec.so);
  2. the repository's build/ when running from a source checkout;
  3. the build directory the package was installed from (_build.json);
  4. an installed library through pkg-config (crossrec.pc), then the
     system's loader path.
The header comes from the package (copied at install) or the source tree.
cffi releases the GIL around every C call, so threads score in parallel.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Optional

import cffi

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))


# Running from a source checkout (python/crossrec inside the repository):
# its own header and build come first, never a copy an install left behind.
_IN_SOURCE = os.path.exists(os.path.join(_ROOT, "include", "crossrec.h")) and \
    os.path.basename(os.path.dirname(_HERE)) == "python"


def _header_path() -> str:
    order = ("include", "package") if _IN_SOURCE else ("package", "include")
    where = {"package": os.path.join(_HERE, "crossrec.h"),
             "include": os.path.join(_ROOT, "include", "crossrec.h")}
    for p in (where[k] for k in order):
        if os.path.exists(p):
            return p
    raise ImportError("crossrec: crossrec.h is neither in the package nor in a source tree "
                      "next to it; reinstall with `pip install --no-build-isolation ./python`")


def _cdef_text(header: str) -> str:
    """crossrec.h as cffi's cdef takes it: its parts (#include "crossrec/...")
    inlined once each, no comments, no preprocessor lines, no CR_API, and
    integer #defines that sizes use substituted."""
    base = os.path.dirname(header)

    def inline(path: str, seen: set) -> str:
        out = []
        for line in open(path, encoding="utf-8").read().splitlines():
            m = re.match(r'\s*#include\s+"(crossrec/[a-z_]+\.h)"', line)
            if m:
                if m.group(1) not in seen:
                    seen.add(m.group(1))
                    out.append(inline(os.path.join(base, m.group(1)), seen))
            else:
                out.append(line)
        return "\n".join(out)

    text = inline(header, set())
    consts = dict(re.findall(r"^#define\s+(CR_[A-Z0-9_]+)\s+(\d+)\s*$", text, flags=re.M))
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    text = text.replace("CR_API", "")
    for name, value in consts.items():
        text = re.sub(r"\b%s\b" % name, value, text)
    return text


def _pkg_config_library() -> Optional[str]:
    try:
        out = subprocess.run(["pkg-config", "--variable=libdir", "crossrec"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lib = os.path.join(out.stdout.strip(), "libcrossrec.so")
    return lib if out.returncode == 0 and os.path.exists(lib) else None


def _library_path() -> str:
    env = os.environ.get("CROSSREC_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise ImportError(f"crossrec: CROSSREC_LIBRARY={env}: no such file")
        return env
    if _IN_SOURCE and os.path.exists(os.path.join(_ROOT, "build", "libcrossrec.so")):
        return os.path.join(_ROOT, "build", "libcrossrec.so")
    info = os.path.join(_HERE, "_build.json")
    if os.path.exists(info):
        with open(info, encoding="utf-8") as f:
            lib = json.load(f).get("library")
        if lib and os.path.exists(lib):
            return lib
    lib = os.path.join(_ROOT, "build", "libcrossrec.so")
    if os.path.exists(lib):
        return lib
    lib = _pkg_config_library()
    if lib:
        return lib
    return "libcrossrec.so.0"  # the loader's own search path


ffi = cffi.FFI()
ffi.cdef(_cdef_text(_header_path()))
LIBRARY_PATH = _library_path()
try:
    lib = ffi.dlopen(LIBRARY_PATH)
except OSError as exc:  # pragma: no cover - depends on the machine
    raise ImportError(f"crossrec: cannot load the library {LIBRARY_PATH}: {exc}; build it with "
                      "`make` or set CROSSREC_LIBRARY") from exc


def text(p) -> Optional[str]:
    """A C string as str (None for NULL)."""
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8", "replace")


def take_text(p) -> Optional[str]:
    """A library-owned C string as str, freed."""
    try:
        return text(p)
    finally:
        if p != ffi.NULL:
            lib.cr_free(p)
