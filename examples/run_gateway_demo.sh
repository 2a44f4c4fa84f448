#!/usr/bin/env bash
# run_gateway_demo.sh GATEWAY [N] - what make demo-gateway shows: examples/gateway.c rides out a Redis
# restart with nothing lost. A throwaway redis-server (temp dir, unix socket, AOF with appendfsync always)
# is started; a generator feeds the gateway N readings (default 3000) through a FIFO: the first third
# while Redis is up, the second third after the server was killed (SIGKILL, by pid) so they go to the
# gateway's spool, the rest after it was started again. At the end of its input the gateway sends the
# spool and exits; then the stream must hold exactly the N readings, in the order fed. The server is
# stopped by pid and the dir removed however this script ends. Exits 0 when nothing was lost.
set -u
gw=${1:?usage: run_gateway_demo.sh GATEWAY [N]}
n=${2:-3000}
server=${REDIS_SERVER:-redis-server}
for c in "$server" redis-cli; do
    command -v "$c" >/dev/null 2>&1 || { echo "$c not found: install redis-server (and redis-tools)" >&2; exit 1; }
done
[ -x "$gw" ] || { echo "run_gateway_demo.sh: $gw is not an executable" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-gateway-demo.XXXXXX") || exit 1
sock=$dir/redis.sock
pid= gwpid=
stop() {
    exec 3>&- 2>/dev/null
    [ -n "$gwpid" ] && kill -TERM "$gwpid" 2>/dev/null && wait "$gwpid" 2>/dev/null
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat > "$dir/redis.conf" <<CONF
port 0
unixsocket "$sock"
unixsocketperm 700
dir "$dir"
save ""
appendonly yes
appendfsync always
daemonize no
logfile "$dir/redis.log"
CONF
cli() { redis-cli -s "$sock" "$@" 2>/dev/null; }
# until CONDITION holds (a command), within 20 s
wait_for() {
    local what=$1; shift
    for _ in $(seq 400); do "$@" && return 0; sleep 0.05; done
    echo "run_gateway_demo.sh: timed out waiting for $what" >&2
    exit 1
}
start_redis() {
    "$server" "$dir/redis.conf" </dev/null >/dev/null 2>&1 3>&- &   # not holding the FIFO open
    pid=$!
    wait_for "redis-server to answer" redis_up
}
redis_up() { [ "$(cli ping)" = PONG ]; }
xlen_is() { [ "$(cli xlen demo:readings)" = "$1" ]; }
spool_has_records() { [ "$(stat -c %s "$dir/gateway.spool" 2>/dev/null || echo 0)" -gt 16 ]; }
feed() {   # feed FROM TO: readings FROM..TO, one JSON line each
    local i
    for ((i = $1; i <= $2; i++)); do
        printf '{"seq":%d,"sensor":"t%d","celsius":%d.%d}\n' "$i" $((i % 4)) $((18 + i % 7)) $((i % 10)) >&3
    done
}

start_redis
echo "redis-server (pid $pid) on $sock, AOF with appendfsync always"
mkfifo "$dir/in"
RSBUS_URL="unix://$sock" RSBUS_STREAM=demo:readings RSBUS_SPOOL_PATH="$dir/gateway.spool" \
    "$gw" < "$dir/in" 2> >(tee "$dir/gateway.log" | sed 's/^/    | /' >&2) &
gwpid=$!
exec 3> "$dir/in"
a=$((n / 3)); b=$((2 * n / 3))

echo "feeding readings 1..$a with Redis up"
feed 1 "$a"
wait_for "$a readings in the stream" xlen_is "$a"
echo "  the stream holds $(cli xlen demo:readings)"

echo "killing redis-server (pid $pid) with SIGKILL; feeding readings $((a + 1))..$b"
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
feed $((a + 1)) "$b"
if [ $(((b - a) % 1000)) = 0 ]; then   # the gateway says how many it spooled at each thousand
    wait_for "the gateway to spool $((b - a)) readings" grep -q "$((b - a)) readings spooled so far" "$dir/gateway.log"
else
    wait_for "the gateway to spool" spool_has_records
fi
echo "  the gateway's spool holds $(stat -c %s "$dir/gateway.spool") bytes"

start_redis
echo "redis-server started again (pid $pid), from its AOF: the stream holds $(cli xlen demo:readings)"
echo "feeding readings $((b + 1))..$n, then the end of input"
feed $((b + 1)) "$n"
exec 3>&-
wait "$gwpid"; rc=$?; gwpid=
[ "$rc" -eq 0 ] || { echo "the gateway exited with status $rc" >&2; exit 1; }

got=$(cli xlen demo:readings)
# the seq of every entry, in stream order: must be exactly 1..n
order=$(cli --raw xrange demo:readings - + | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p' |
        awk -v n="$n" '$1 != NR { bad = 1 } END { print (bad || NR != n) ? "out of order or missing" : "in order" }')
echo "fed $n readings; the stream holds $got, $order; the spool: $(stat -c %s "$dir/gateway.spool") bytes (16: empty)"
if [ "$got" = "$n" ] && [ "$order" = "in order" ]; then
    echo "nothing lost, nothing twice"
    exit 0
fi
echo "LOST OR DUPLICATED READINGS" >&2
exit 1
