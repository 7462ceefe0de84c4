"""Build step of the crossrec package: copy the public header the bindings
are declared from, and record where the library they were built with lives
(the repository's build directory), so an installed package finds it. The
library itself is found at import time (crossrec/_ffi.py)."""
import json
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BuildWithHeader(build_py):
    def run(self):
        pkg = os.path.join(HERE, "crossrec")
        header = os.path.join(ROOT, "include", "crossrec.h")
        if os.path.exists(header):  # the header and its parts (include/crossrec/)
            shutil.copyfile(header, os.path.join(pkg, "crossrec.h"))
            parts = os.path.join(ROOT, "include", "crossrec")
            os.makedirs(os.path.join(pkg, "crossrec"), exist_ok=True)
            for name in os.listdir(parts):
                if name.endswith(".h"):
                    shutil.copyfile(os.path.join(parts, name), os.path.join(pkg, "crossrec", name))
        build = os.environ.get("CROSSREC_BUILD", os.path.join(ROOT, "build"))
        lib = os.path.join(os.path.abspath(build), "libcrossrec.so")
        with open(os.path.join(pkg, "_build.json"), "w") as f:
            json.dump({"library": lib if os.path.exists(lib) else None}, f)
        super().run()


setup(cmdclass={"build_py": BuildWithHeader})
