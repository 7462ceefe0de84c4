# tap.sh - the check helpers the shell tests share (tests/cli.sh,
# tests/onnx.sh): one "ok - ..." or "not ok - ..." line per check, with the
# captured output of a failed one, and "N passed, M failed" at the end.
# Sourced, not run; the caller sets OUT (the file each check's output goes to).
# shellcheck shell=bash

pass=0
fail=0
rc=0

# run CMD...: run it with stdout+stderr in $OUT and its status in $rc.
run() {
    "$@" >"$OUT" 2>&1
    rc=$?
}

# A sanitizer report (SAN=1 builds) fails any check, whatever the exit status.
ok() {
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$OUT" 2>/dev/null; then
        not_ok "$1 (sanitizer report)"
        return
    fi
    echo "ok - $1"
    pass=$((pass + 1))
}

not_ok() {
    echo "not ok - $1"
    if [ -s "$OUT" ]; then sed -e 's/^/    | /' "$OUT" | head -n 40; fi
    fail=$((fail + 1))
}

# has TEXT...: every TEXT occurs (as a fixed string) in $OUT.
has() {
    local t
    for t in "$@"; do grep -qF -- "$t" "$OUT" || return 1; done
    return 0
}

# expect_ok WHAT CMD...: exits 0 (and returns CMD's status).
expect_ok() {
    local what=$1
    shift
    run "$@"
    if [ "$rc" -eq 0 ]; then ok "$what"; else not_ok "$what (exit $rc)"; fi
    return "$rc"
}

# expect_fail WHAT TEXT... -- CMD...: exits non-zero and the output holds
# every TEXT (the file, line or option the message must name).
expect_fail() {
    local what=$1
    shift
    local texts=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        texts+=("$1")
        shift
    done
    shift
    run "$@"
    if [ "$rc" -eq 0 ]; then
        not_ok "$what (exit 0)"
    elif [ "$rc" -ge 128 ]; then
        not_ok "$what (killed by a signal: exit $rc)"
    elif ! has "${texts[@]}"; then
        not_ok "$what (message lacks one of: ${texts[*]})"
    else
        ok "$what"
    fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

