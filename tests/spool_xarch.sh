#!/usr/bin/env bash
# spool_xarch.sh WRITER FLUSHER [N] - a spool written by one build is flushed by another: WRITER and
# FLUSHER are tests/spool_xarch.c built for two machines (a qemu wrapper for a cross build). WRITER spools
# N events (default 2000) with Redis unreachable; FLUSHER starts a redis-server, sends the file and checks
# every field. The last line is FLUSHER's "spool_xarch: N passed, N failed".
# spool_xarch.sh --same WRITER... - each WRITER spools the same events: the files must be byte for byte the
# same (the format has no machine-dependent byte); ends "spool_same: 1 passed, 0 failed" or 0 and 1.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-xarch.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
if [ "${1:-}" = --same ]; then
    shift
    i=0 bad=
    for w in "$@"; do
        i=$((i + 1))
        "$w" write "$dir/spool.$i" 2000 || bad="$bad; $w failed"
        if [ "$i" -gt 1 ] && [ -z "$bad" ] && ! cmp "$dir/spool.1" "$dir/spool.$i"; then
            bad="$bad; the spool of $w differs from the one of $1"
        fi
    done
    if [ -z "$bad" ] && [ "$i" -ge 2 ]; then echo "spool_same: $i spool files, byte for byte the same"
        echo "spool_same: 1 passed, 0 failed"; exit 0; fi
    echo "spool_same: ${bad#; }"
    echo "spool_same: 0 passed, 1 failed"
    exit 1
fi
writer=${1:?usage: spool_xarch.sh WRITER FLUSHER [N] | --same WRITER...}
flusher=${2:?usage: spool_xarch.sh WRITER FLUSHER [N] | --same WRITER...}
n=${3:-2000}
if ! "$writer" write "$dir/spool" "$n"; then
    echo "spool_xarch: the writer failed"
    echo "spool_xarch: 0 passed, 1 failed"
    exit 1
fi
"$flusher" flush "$dir/spool" "$n"
