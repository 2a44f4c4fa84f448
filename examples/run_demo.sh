#!/usr/bin/env bash
# run_demo.sh DEMO [ARGS...] - runs DEMO against a throwaway redis-server: a temp dir, a unix socket,
# no TCP port, no persistence. RSBUS_URL points the demo at it; the server is stopped by pid and the
# dir removed however this script ends. Exits with the demo's status.
set -u
demo=${1:?usage: run_demo.sh DEMO [ARGS...]}
shift

server=${REDIS_SERVER:-redis-server}
if ! command -v "$server" >/dev/null 2>&1; then
    echo "redis-server not found: install it (apt-get install redis-server)" >&2
    exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-demo.XXXXXX") || exit 1
pid=
stop() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    fi
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock=$dir/redis.sock
cat > "$dir/redis.conf" <<CONF
port 0
unixsocket "$sock"
unixsocketperm 700
dir "$dir"
save ""
appendonly no
daemonize no
logfile "$dir/redis.log"
CONF
"$server" "$dir/redis.conf" </dev/null >/dev/null 2>&1 &
pid=$!

# Ready when it answers PING (redis-cli), or at least has its socket, within 10 s.
ready=
for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run_demo.sh: redis-server exited; its log:" >&2
        tail -n 20 "$dir/redis.log" >&2
        exit 1
    fi
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ] && { ready=1; break; }
    elif [ -S "$sock" ]; then
        ready=1; break
    fi
    sleep 0.05
done
if [ -z "$ready" ]; then
    echo "run_demo.sh: redis-server did not answer within 10 s; its log:" >&2
    tail -n 20 "$dir/redis.log" >&2
    exit 1
fi

# In the background, so a signal to this script is handled at once: it is passed on to the demo as
# SIGTERM, and the server stays up until the demo has finished.
RSBUS_URL="unix://$sock" "$demo" "$@" <&0 &
dpid=$!
sig=
trap 'sig=130; kill -TERM "$dpid" 2>/dev/null' INT
trap 'sig=143; kill -TERM "$dpid" 2>/dev/null' TERM
rc=0
while kill -0 "$dpid" 2>/dev/null; do
    wait "$dpid"
    rc=$?
done
exit "${sig:-$rc}"
