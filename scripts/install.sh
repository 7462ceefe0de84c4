#!/usr/bin/env bash
# install.sh BUILD PREFIX [DESTDIR] - what `make install` does: the command,
# the shared (with its SONAME links) and static libraries, the public header,
# crossrec.pc for pkg-config, the man pages crossrec(1) and crossrec(3)
# (generated from the command's own --help and from the header, so they
# cannot drift), and the docs. LIBS_PRIVATE and SANFLAGS come from the
# Makefile: what a static link needs, and sanitizer flags of a SAN=1 build.
set -euo pipefail
BUILD=$1
PREFIX=$2
DESTDIR=${3:-}
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^#define CR_VERSION "\(.*\)"/\1/p' include/crossrec.h)
MAJOR=${VERSION%%.*}
D="$DESTDIR$PREFIX"
install -d "$D/bin" "$D/lib/pkgconfig" "$D/include" "$D/share/man/man1" "$D/share/man/man3" \
    "$D/share/doc/crossrec"
install -m 755 "$BUILD/crossrec" "$D/bin/"
install -m 644 "$BUILD/libcrossrec.a" "$D/lib/"
install -m 755 "$BUILD/libcrossrec.so.$VERSION" "$D/lib/"
ln -sf "libcrossrec.so.$VERSION" "$D/lib/libcrossrec.so.$MAJOR"
ln -sf "libcrossrec.so.$VERSION" "$D/lib/libcrossrec.so"
install -m 644 include/crossrec.h "$D/include/"
install -d "$D/include/crossrec"
install -m 644 include/crossrec/*.h "$D/include/crossrec/"
cat > "$D/lib/pkgconfig/crossrec.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: crossrec
Description: multi-task rankers, zero-shot cross-domain distillation and item-language models
Version: $VERSION
Libs: -L\${libdir} -lcrossrec ${SANFLAGS:-}
Libs.private: ${LIBS_PRIVATE:-}
Cflags: -I\${includedir}
PC
scripts/man.sh "$BUILD/crossrec" include/crossrec.h "$D/share/man"
install -m 644 README.md docs/*.md "$D/share/doc/crossrec/"
echo "installed crossrec $VERSION under $D"
