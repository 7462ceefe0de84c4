#!/bin/sh
# skipped.sh NAME LOG - one "NAME: TEST" line per test that the cmocka log
# LOG reports skipped (a check whose subject this machine lacks, e.g. bf16
# products without AVX512_BF16), so `make test` can count and name them
# beside its "N passed, M failed". Prints nothing for a log without skips.
sed -n '/^\[  SKIPPED \] [0-9]* test(s), listed below:$/,$ s/^\[  SKIPPED \] \([A-Za-z_0-9]*\)$/\1/p' \
    "$2" | sed "s|^|$1: |"
