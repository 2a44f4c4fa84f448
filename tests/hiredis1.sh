#!/usr/bin/env bash
# hiredis1.sh BUILD_DIR - builds hiredis 1.2.0 with TLS (USE_SSL=1) for `make test-hiredis1`.
#
# Debian 12 ships hiredis 0.14.1 only. The C sources of hiredis 1.2.0 come from the npm package
# redis-fast-driver@2.2.6 (its deps/hiredis), fetched with `npm pack` into BUILD_DIR/hiredis1/ (never
# committed), checked (tarball sha1 as published, hiredis.h's version macros) and built as static libs:
#     BUILD_DIR/hiredis1/prefix/include/hiredis/hiredis.h, hiredis_ssl.h, ...  (#include <hiredis/hiredis.h>)
#     BUILD_DIR/hiredis1/prefix/lib/libhiredis.a, libhiredis_ssl.a             (link with -lssl -lcrypto)
# Done once: a later run finds BUILD_DIR/hiredis1/prefix/.built and does nothing. Quiet on success; on a
# failure it says what failed (with the build log) and exits 1. No npm, or no registry: exit 1 too, saying
# so (the lane must fail, not skip). Needs npm, make, a C compiler ($CC, default cc) and libssl-dev.
set -u

PKG=redis-fast-driver
VER=2.2.6
SHA1=e2f48cdd2d5db4338a2c8629f3eba8761831fb85   # dist.shasum of redis-fast-driver-2.2.6.tgz on the registry
WANT=1.2.0                                     # HIREDIS_MAJOR.MINOR.PATCH expected in deps/hiredis/hiredis.h
STAMP_TEXT="$PKG@$VER hiredis $WANT USE_SSL=1 static"

die() { echo "hiredis1.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: tests/hiredis1.sh BUILD_DIR" >&2; exit 2; }
mkdir -p "$1/hiredis1" || die "cannot create $1/hiredis1"
top=$(cd "$1/hiredis1" && pwd) || exit 1
prefix=$top/prefix
stamp=$prefix/.built

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$STAMP_TEXT" ] &&
   [ -f "$prefix/lib/libhiredis.a" ] && [ -f "$prefix/lib/libhiredis_ssl.a" ] &&
   [ -f "$prefix/include/hiredis/hiredis.h" ] && [ -f "$prefix/include/hiredis/hiredis_ssl.h" ]; then
    exit 0
fi

command -v npm >/dev/null 2>&1 ||
    die "npm is not installed: it fetches hiredis 1.2.0's sources ($PKG@$VER); install it (apt-get install npm) and run again"
command -v make >/dev/null 2>&1 || die "make is not installed"
[ -f /usr/include/openssl/ssl.h ] || [ -f /usr/local/include/openssl/ssl.h ] ||
    die "OpenSSL headers are missing (openssl/ssl.h): install libssl-dev"

log=$top/build.log
: > "$log"

# ---- fetch: the registry's tarball, checked against its published sha1
tgz=$top/$PKG-$VER.tgz
if [ ! -f "$tgz" ] || [ "$(sha1sum "$tgz" | cut -d' ' -f1)" != "$SHA1" ]; then
    rm -f "$tgz"
    # bounded: a registry that does not answer fails in about a minute, not after npm's 5-minute default
    if ! (cd "$top" && npm pack "$PKG@$VER" --fetch-retries=1 --fetch-timeout=30000 \
              --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 --no-audit --no-fund) >>"$log" 2>&1 ||
       [ ! -f "$tgz" ]; then
        if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up' "$log"; then
            echo "hiredis1.sh: cannot reach the npm registry: 'npm pack $PKG@$VER' failed with a network error" >&2
        else
            echo "hiredis1.sh: 'npm pack $PKG@$VER' failed" >&2
        fi
        sed 's/^/  | /' "$log" >&2
        rm -f "$tgz"
        exit 1
    fi
    got=$(sha1sum "$tgz" | cut -d' ' -f1)
    if [ "$got" != "$SHA1" ]; then
        rm -f "$tgz"
        die "$PKG-$VER.tgz has sha1 $got, not the registry's published $SHA1: refusing to build it"
    fi
fi

# ---- extract and check the version
src=$top/src
rm -rf "$src" "$prefix"
mkdir -p "$src" || exit 1
tar -xzf "$tgz" -C "$src" --strip-components=1 package/deps/hiredis >>"$log" 2>&1 ||
    { sed 's/^/  | /' "$log" >&2; die "cannot extract deps/hiredis from $tgz"; }
hdir=$src/deps/hiredis
[ -f "$hdir/hiredis.h" ] && [ -f "$hdir/ssl.c" ] && [ -f "$hdir/Makefile" ] ||
    die "$PKG@$VER has no deps/hiredis with hiredis.h, ssl.c and a Makefile"
macro() { sed -n "s/^#define $1 \([0-9][0-9]*\)[[:space:]]*\$/\1/p" "$hdir/hiredis.h" | head -n 1; }
got="$(macro HIREDIS_MAJOR).$(macro HIREDIS_MINOR).$(macro HIREDIS_PATCH)"
[ "$got" = "$WANT" ] ||
    die "$PKG@$VER's deps/hiredis is hiredis '$got' (HIREDIS_MAJOR/MINOR/PATCH in hiredis.h), not $WANT"

# ---- build the static libs (libhiredis.a, libhiredis_ssl.a) and lay out a prefix
if ! make -C "$hdir" -j2 USE_SSL=1 CC="${CC:-cc}" static >>"$log" 2>&1; then
    echo "hiredis1.sh: building hiredis $WANT with USE_SSL=1 failed:" >&2
    sed 's/^/  | /' "$log" >&2
    exit 1
fi
mkdir -p "$prefix/include/hiredis/adapters" "$prefix/lib" || exit 1
# the headers hiredis's own `make install` and `install-ssl` install
( cd "$hdir" &&
  cp hiredis.h async.h read.h sds.h alloc.h sockcompat.h hiredis_ssl.h "$prefix/include/hiredis/" &&
  cp adapters/*.h "$prefix/include/hiredis/adapters/" &&
  cp libhiredis.a libhiredis_ssl.a "$prefix/lib/" ) >>"$log" 2>&1 ||
    { sed 's/^/  | /' "$log" >&2; die "cannot install into $prefix"; }
echo "$STAMP_TEXT" > "$stamp"
exit 0
