#!/usr/bin/env bash
# setup.sh BUILD_DIR - installs what tests/test_interop.c's Node peer needs: ioredis 5 from the npm
# registry into BUILD_DIR/node (never committed), once; a later run finds it and does nothing.
# The Python peer needs Debian's python3-redis, which tests/deps.sh installs.
# Never fails make test: when ioredis cannot be had (no npm, no registry) it says so, and test_interop
# skips its Node half with a message naming the reason.
set -u

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: tests/interop/setup.sh BUILD_DIR" >&2; exit 2; }
dir=$1/node
[ -f "$dir/node_modules/ioredis/package.json" ] && exit 0
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "interop/setup.sh: node or npm is missing: test_interop will skip its Node peer (apt-get install npm)" >&2
    exit 0
fi
mkdir -p "$dir" || exit 0
# bounded: a registry that does not answer fails in about a minute, not after npm's 5-minute default
if ! npm install --prefix "$dir" ioredis@5 --no-audit --no-fund --no-save --fetch-retries=1 \
        --fetch-timeout=30000 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 >"$dir/install.log" 2>&1; then
    echo "interop/setup.sh: 'npm install ioredis@5' failed (log $dir/install.log): test_interop will skip its Node peer" >&2
fi
exit 0
