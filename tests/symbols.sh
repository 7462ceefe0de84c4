#!/usr/bin/env bash
# symbols.sh - the shared library exports exactly the documented API: every
# dynamic symbol of libcrossrec.so is a function crossrec.h declares with
# CR_API, and every such function is exported (none declared but missing);
# and the crossrec command calls nothing else: every cr_ function its
# objects need is one the library exports (or the command's own).
set -u
BUILD=${CR_BUILD:-build}
LIB="$BUILD/libcrossrec.so"
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }

[ -e "$LIB" ] || { echo "not ok - $LIB is missing (make first)"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u > "$tmp/exported"
# declarations: "CR_API <type> <name>(" possibly with '*' before the name
grep -h '^CR_API' include/*.h include/crossrec/*.h | sed -E 's/^CR_API[^(]*[ *]([a-z_0-9]+)\(.*/\1/' | sort -u > "$tmp/declared"

extra=$(comm -23 "$tmp/exported" "$tmp/declared")
if [ -z "$extra" ]; then ok "no undocumented symbol is exported ($(wc -l < "$tmp/exported") exported)"
else not_ok "exported but not declared with CR_API in include/: $(echo $extra | head -c 600)"; fi

missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -z "$missing" ]; then ok "every CR_API function is defined and exported ($(wc -l < "$tmp/declared"))"
else not_ok "declared with CR_API but not exported: $missing"; fi

bad=$(grep -v '^cr_' "$tmp/exported")
if [ -z "$bad" ]; then ok "every exported symbol has the cr_ prefix"
else not_ok "exported without the cr_ prefix: $bad"; fi

# the command, as linked against libcrossrec.a, needs only exported functions
internal=""
for o in "$BUILD"/cli/*.o; do
    src="cli/$(basename "$o" .o).c"
    internal="$internal $(nm -u "$o" | awk '$1 == "U" && $2 ~ /^cr_/ {print $2}' |
        sort -u | comm -23 - "$tmp/exported" |
        comm -23 - <(nm --defined-only "$BUILD"/cli/*.o | awk '{print $3}' | sort -u) |
        sed "s|^|$src:|")"
done
internal=$(echo $internal)
if [ -z "$internal" ]; then ok "the crossrec command calls only exported entry points"
else not_ok "the crossrec command calls internal functions: $internal"; fi

soname=$(readelf -d "$LIB" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
major=$(sed -n 's/^#define CR_VERSION_MAJOR \([0-9]*\)/\1/p' include/crossrec.h)
if [ "$soname" = "libcrossrec.so.$major" ]; then ok "SONAME is libcrossrec.so.$major"
else not_ok "SONAME is '$soname', expected libcrossrec.so.$major"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
