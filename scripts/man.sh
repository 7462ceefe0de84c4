#!/usr/bin/env bash
# man.sh CROSSREC HEADER MANDIR - write crossrec(1) from the command's own
# --help texts (every subcommand) and crossrec(3) from the public header,
# which is the API's manual.
set -euo pipefail
BIN=$1
HDR=$2
MAN=$3
VERSION=$(sed -n 's/^#define CR_VERSION "\(.*\)"/\1/p' "$HDR")
DATE=$(date -u -r "$HDR" +%Y-%m-%d)
esc() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'; }
mkdir -p "$MAN/man1" "$MAN/man3"
{
    echo ".TH CROSSREC 1 \"$DATE\" \"crossrec $VERSION\" \"User Commands\""
    echo ".SH NAME"
    echo "crossrec \\- train, distil, score and serve multi-task rankers; item-language models"
    echo ".SH SYNOPSIS"
    echo ".B crossrec"
    echo ".I command"
    echo "[\\fIoptions\\fR]"
    echo ".SH COMMANDS"
    echo ".nf"
    "$BIN" --help | esc
    echo ".fi"
    for cmd in $("$BIN" --help | awk '/^commands:/ {on=1; next} on && /^  [a-z]/ {print $1}'); do
        [ "$cmd" = version ] && continue
        echo ".SS crossrec $cmd"
        echo ".nf"
        "$BIN" "$cmd" --help 2>&1 | esc || true
        echo ".fi"
    done
    echo ".SH SEE ALSO"
    echo "crossrec(3), and the documents under share/doc/crossrec."
} > "$MAN/man1/crossrec.1"
{
    echo ".TH CROSSREC 3 \"$DATE\" \"crossrec $VERSION\" \"Library Functions Manual\""
    echo ".SH NAME"
    echo "crossrec \\- the C library of crossrec: contexts, training, evaluation, scoring, language models"
    echo ".SH SYNOPSIS"
    echo ".nf"
    echo ".B #include <crossrec.h>"
    echo ".PP"
    echo "Link with \\fI\$(pkg-config \\-\\-libs crossrec)\\fR."
    echo ".fi"
    echo ".SH DESCRIPTION"
    echo "Every function that can fail returns a cr_status and fills a caller-owned cr_error;"
    echo "the library never exits. The header below is the manual: each entry point with its"
    echo "ownership, thread-safety and error contract."
    echo ".SH THE HEADER"
    echo ".nf"
    # the header, then its parts in the order it includes them
    cat "$HDR" $(sed -n 's|^#include "\(crossrec/.*\.h\)"|'"$(dirname "$HDR")"'/\1|p' "$HDR") | esc
    echo ".fi"
    echo ".SH SEE ALSO"
    echo "crossrec(1)"
} > "$MAN/man3/crossrec.3"
