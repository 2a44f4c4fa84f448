#!/usr/bin/env bash
# spool_xarch.sh WRITER FLUSHER [N] - a spool written by one build is flushed by another: WRITER and
# FLUSHER are tests/spool_xarch.c built for two machines (a qemu wrapper for a cross build). WRITER spools
# N events (default 2000) with Redis unreachable; FLUSHER starts a redis-server, sends the file and checks
# every field. The last line is FLUSHER's "spool_xarch: N passed, N failed".
set -u
writer=${1:?usage: spool_xarch.sh WRITER FLUSHER [N]}
flusher=${2:?usage: spool_xarch.sh WRITER FLUSHER [N]}
n=${3:-2000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-xarch.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
if ! "$writer" write "$dir/spool" "$n"; then
    echo "spool_xarch: the writer failed"
    echo "spool_xarch: 0 passed, 1 failed"
    exit 1
fi
"$flusher" flush "$dir/spool" "$n"
