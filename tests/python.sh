#!/usr/bin/env bash
# python.sh - the Python package's pytest suite (python/tests) against this
# build's library: every API call, equality with the command's outputs,
# Dask, pip install and the quickstart notebook. In a SAN=1 build the
# sanitizer runtimes are preloaded into Python (leak checks off: the
# interpreter's own allocations are not ours to free).
set -u
BUILD=${CR_BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
export CR_BUILD="$BUILD" CROSSREC_LIBRARY="$PWD/$BUILD/libcrossrec.so"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
case "$BUILD" in
*san*) export LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
       export ASAN_OPTIONS=detect_leaks=0 ;;
esac
exec "$PYTHON" -m pytest -q -p no:cacheprovider python/tests
