#!/usr/bin/env bash
# readme.sh - the documentation's commands run as written. Every fenced
# block opened with "```sh runnable" in README.md, then in docs/*.md (in name
# order), runs verbatim under bash -e, one file's blocks in one shell so a
# block may use what the blocks before it made. A README block that calls
# build/crossrec but is not marked runnable is itself a failure: the tour
# cannot silently leave the test.
#
# The blocks run in a scratch copy of the tree (examples/ copied, data/
# linked, build/crossrec linked to $CR_BUILD/crossrec), so out/ and build/
# of the checkout are left alone and a SAN=1 run checks the sanitized binary.
# A sanitizer report fails the block whatever its exit status. Prints one
# line per block and "N passed, M failed"; exits non-zero if any failed.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
CR_BUILD=${CR_BUILD:-build}
case "$CR_BUILD" in /*) BIN="$CR_BUILD/crossrec" ;; *) BIN="$ROOT/$CR_BUILD/crossrec" ;; esac
TMP=$(mktemp -d /tmp/crossrec-readme-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/out" # what a failed check shows
# shellcheck source=tests/util/tap.sh
. tests/util/tap.sh

if [ ! -x "$BIN" ]; then
    not_ok "$BIN is missing (run make first)"
    exit 1
fi
mkdir -p "$TMP/tree/build"
cp -r examples "$TMP/tree/examples"
ln -s "$ROOT/data" "$TMP/tree/data"
ln -s "$BIN" "$TMP/tree/build/crossrec"

# blocks FILE: writes FILE's runnable blocks to $TMP/blocks/N.sh and their
# first lines to $TMP/blocks/N.line; prints the number of blocks.
blocks() {
    rm -rf "$TMP/blocks"
    mkdir -p "$TMP/blocks"
    awk -v dir="$TMP/blocks" '
        /^```/ && inside { inside = 0; close(out); next }
        /^```sh[ \t]+runnable[ \t]*$/ { n++; inside = 1; out = dir "/" n ".sh";
                                       print NR + 1 > (dir "/" n ".line"); close(dir "/" n ".line");
                                       printf "" > out; next }
        inside { print > out }
        END { print n + 0 }' "$1"
}

# unmarked FILE: the line numbers of ```sh blocks that call build/crossrec
# but are not marked runnable.
unmarked() {
    awk '
        /^```/ && inside { inside = 0; if (calls && !run) print start; next }
        /^```sh/ { inside = 1; start = NR; calls = 0; run = ($0 ~ /runnable/); next }
        inside && /build\/crossrec/ { calls = 1 }' "$1"
}

run_file() {
    local doc=$1 n i line t0 t1
    n=$(blocks "$ROOT/$doc")
    [ "$n" -gt 0 ] || return 0
    # Each block is its own bash -e; the blocks of all files share one tree.
    for ((i = 1; i <= n; i++)); do
        line=$(cat "$TMP/blocks/$i.line")
        t0=$(date +%s)
        # its own process group, ended afterwards: a block that fails leaves
        # no server behind it
        run setsid -w bash -c "echo \$\$ >'$TMP/pgid'; cd '$TMP/tree' && exec bash -e '$TMP/blocks/$i.sh'"
        kill -- "-$(cat "$TMP/pgid")" 2>/dev/null
        t1=$(date +%s)
        if [ "$rc" -eq 0 ]; then ok "$doc:$line block $i ($((t1 - t0)) s)"
        else not_ok "$doc:$line block $i (exit $rc, $((t1 - t0)) s)"; fi
    done
}

for l in $(unmarked README.md); do
    : >"$OUT"
    not_ok "README.md:$l calls build/crossrec but is not a \`\`\`sh runnable block"
done
n=$(blocks README.md)
if [ "$n" -lt 1 ]; then
    : >"$OUT"
    not_ok "README.md has no \`\`\`sh runnable block"
fi
run_file README.md
for f in docs/*.md; do run_file "$f"; done

finish
