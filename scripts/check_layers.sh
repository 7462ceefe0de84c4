#!/usr/bin/env bash
# check_layers.sh - the architecture, checked: a layer of src/ includes only
# itself and the layers below it, whatever the spelling ("../x/y.h", "y.h"
# found through the including file's folder, or through -Iinclude / -Isrc);
# examples/, python/ and cli/ see the public headers in include/ only (and
# cli/ its own cli.h); bench/ may reach the internal headers of the layers
# it measures, as listed in scripts/layers_allow.txt ("bench/ HEADER").
set -u
LAYERS=(core kernels nn data train rank ilm serve)
bad=0
layer_index() { # path under src/ -> index, or -1
    local l=${1#src/}
    l=${l%%/*}
    for i in "${!LAYERS[@]}"; do [ "${LAYERS[$i]}" = "$l" ] && { echo "$i"; return; }; done
    echo -1
}
# resolve INCLUDE as written in FILE to a repository path, or nothing (system header)
resolve() {
    local file=$1 inc=$2 dir cand
    dir=$(dirname "$file")
    for cand in "$dir/$inc" "include/$inc" "src/$inc"; do
        [ -f "$cand" ] && { realpath -m --relative-to=. "$cand"; return; }
    done
}
includes() { # FILE -> the quoted and angled includes it names
    sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/p' "$1"
}
allow=$(grep -v '^#' scripts/layers_allow.txt 2>/dev/null)

for f in $(find src -name '*.[ch]' | sort); do
    me=$(layer_index "$f")
    for inc in $(includes "$f"); do
        r=$(resolve "$f" "$inc")
        [ -n "$r" ] || continue
        case $r in
        include/*) continue ;;
        src/*) them=$(layer_index "$r")
               if [ "$them" -gt "$me" ]; then
                   echo "layering: $f includes $r (${LAYERS[$them]} is above ${LAYERS[$me]})"; bad=1
               fi ;;
        *) echo "layering: $f includes $r, outside src/ and include/"; bad=1 ;;
        esac
    done
done
# (the package's copies of the public header and its parts are the header itself)
for f in $(find examples python -name '*.[ch]' ! -path 'python/*crossrec.h' \
           ! -path 'python/*/crossrec/crossrec/*.h' 2>/dev/null | sort); do
    for inc in $(includes "$f"); do
        r=$(resolve "$f" "$inc")
        case $r in ""|include/*) ;; *) echo "public API only: $f includes $r"; bad=1 ;; esac
    done
done
# an internal header r is allowed to f only when f is under bench/ and "bench/ r" is listed
allowed() {
    case $1 in bench/*) grep -qxF "bench/ $2" <<< "$allow" ;; *) return 1 ;; esac
}
for f in $(find cli bench -name '*.[ch]' 2>/dev/null | sort); do
    for inc in $(includes "$f"); do
        r=$(resolve "$f" "$inc")
        case $r in
        ""|include/*|cli/*|bench/*) ;;
        src/*) if ! allowed "$f" "$r"; then
                   echo "public API only: $f includes $r (cli/ uses include/ only; bench/ what"\
                        "scripts/layers_allow.txt lists)"; bad=1
               fi ;;
        *) echo "layering: $f includes $r"; bad=1 ;;
        esac
    done
done
# an allowance nobody uses any more is removed, so the list only shrinks
while read -r who r; do
    [ -n "$who" ] || continue
    if [ "$who" != bench/ ]; then
        echo "scripts/layers_allow.txt: '$who $r': expected 'bench/ HEADER' (cli/ gets no allowance)"
        bad=1; continue
    fi
    files=$(find bench -name '*.[ch]' 2>/dev/null)
    used=0
    for f in $files; do
        [ -f "$f" ] || continue
        for inc in $(includes "$f"); do
            [ "$(resolve "$f" "$inc")" = "$r" ] && { used=1; break 2; }
        done
    done
    [ $used = 1 ] || { echo "scripts/layers_allow.txt: '$who $r' is no longer used; remove it"; bad=1; }
done <<< "$allow"
exit $bad
