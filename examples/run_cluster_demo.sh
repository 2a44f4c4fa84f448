#!/usr/bin/env bash
# run_cluster_demo.sh BUILD_DIR [N] - what make demo-cluster shows: rsbus on a Redis Cluster, a stream in
# 8 partitions spread over 3 masters, two workers, and a master killed mid-way with nothing handled lost.
# A throwaway cluster of 3 masters and 3 replicas is started on free loopback ports (temp dirs, stopped
# by pid however this script ends); BUILD_DIR/publisher publishes N events (default 2000) in two halves,
# BUILD_DIR/worker runs twice in one group; between the halves the master that serves partition 0 is
# SIGKILLed and a replica takes over. At the end every event in the stream must have been handled, and
# BUILD_DIR/rsbusctl shows the per-partition table. Exits 0 when so.
set -u
build=${1:?usage: run_cluster_demo.sh BUILD_DIR [N]}
n=${2:-2000}
server=${REDIS_SERVER:-redis-server}
for c in "$server" redis-cli; do
    command -v "$c" >/dev/null 2>&1 || { echo "$c not found: install redis-server (and redis-tools)" >&2; exit 1; }
done
for p in publisher worker rsbusctl; do
    [ -x "$build/$p" ] || { echo "run_cluster_demo.sh: $build/$p is not built" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-cluster-demo.XXXXXX") || exit 1
pids=() ports=() wpids=()
stop() {
    local p
    for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${wpids[@]}"; do wait "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# until CONDITION holds (a command), within 30 s
wait_for() {
    local what=$1; shift
    for _ in $(seq 600); do "$@" && return 0; sleep 0.05; done
    echo "run_cluster_demo.sh: timed out waiting for $what" >&2
    tail -n 3 "$dir"/n*/redis.log "$dir"/worker-*.err >&2 2>/dev/null
    exit 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {   # a loopback port nobody listens on, and not one of ours
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        [[ " ${ports[*]} " == *" $p "* ]] && continue
        port_free "$p" && port_free $((p + 10000)) && { echo "$p"; return; }
    done
}
cli() { redis-cli -p "$1" "${@:2}" 2>/dev/null; }
answers() { [ "$(cli "$1" ping)" = PONG ]; }
cluster_ok() {   # every live node: state ok (all slots served); every live replica in sync with its master
    local i
    for i in "${!ports[@]}"; do
        [ -z "${pids[$i]}" ] && continue
        cli "${ports[$i]}" cluster info | grep -q '^cluster_state:ok' || return 1
        if cli "${ports[$i]}" info replication | grep -q '^role:slave'; then
            cli "${ports[$i]}" info replication | grep -q '^master_link_status:up' || return 1
        fi
    done
}

start_node() {   # node i on a free port; another one if that port was taken meanwhile
    local i=$1 p attempt
    mkdir -p "$dir/n$i"
    for attempt in 1 2 3 4 5; do
        p=$(free_port); ports[$i]=$p
        cat > "$dir/n$i/redis.conf" <<CONF
port $p
bind 127.0.0.1
dir "$dir/n$i"
save ""
appendonly no
daemonize no
logfile "$dir/n$i/redis.log"
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
CONF
        "$server" "$dir/n$i/redis.conf" </dev/null >/dev/null 2>&1 &
        pids[$i]=$!
        for _ in $(seq 200); do
            answers "$p" && return 0
            kill -0 "${pids[$i]}" 2>/dev/null || break   # it exited: the port was taken
            sleep 0.05
        done
        kill -KILL "${pids[$i]}" 2>/dev/null; wait "${pids[$i]}" 2>/dev/null
    done
    echo "run_cluster_demo.sh: cannot start redis-server (see $dir/n$i/redis.log)" >&2
    tail -n 3 "$dir/n$i/redis.log" >&2
    exit 1
}
for i in 0 1 2 3 4 5; do start_node "$i"; done
redis-cli --cluster create $(for p in "${ports[@]}"; do printf '127.0.0.1:%s ' "$p"; done) \
    --cluster-replicas 1 --cluster-yes > "$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 1; }
wait_for "the cluster to be ok" cluster_ok
echo "a Redis Cluster of 3 masters and 3 replicas on 127.0.0.1 ports ${ports[*]}"

export RSBUS_URL="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}"
export RSBUS_STREAM=demo:orders RSBUS_PARTITIONS=8 RSBUS_GROUP=billing RSBUS_GROUP_START=0
export RSBUS_BLOCK_MS=200 RSBUS_CLAIM_IDLE_MS=2000 RSBUS_CLAIM_INTERVAL_MS=500
export RSBUS_CONNECT_TIMEOUT_MS=500 RSBUS_IO_TIMEOUT_MS=1000

"$build/rsbusctl" partitions > /dev/null 2>&1   # creates the partitions and the group (and pins the count)
for w in 1 2; do
    RSBUS_CONSUMER=worker-$w "$build/worker" '*' seq > "$dir/worker-$w.out" 2> "$dir/worker-$w.err" &
    wpids+=($!)
done
handled() { cat "$dir"/worker-*.out 2>/dev/null | awk '{print $4}' | sort -u | wc -l; }
handled_at_least() { [ "$(handled)" -ge "$1" ]; }

half=$((n / 2))
echo "publishing $half events (RSBUS_PARTITIONS=8: each goes to the partition of its event id)"
"$build/publisher" order.created "$half" > /dev/null || exit 1
wait_for "the workers to handle the first half" handled_at_least "$half"
echo "both workers handled them: $(handled) distinct events"

slot=$(cli "${ports[0]}" cluster keyslot "demo:orders:p0")
victim=$(for i in "${!ports[@]}"; do
             if [ "$(cli "${ports[$i]}" role | head -1)" = master ] &&
                 cli "${ports[$i]}" cluster countkeysinslot "$slot" | grep -qv '^0$'; then echo "$i"; break; fi
         done)
[ -n "$victim" ] || { echo "run_cluster_demo.sh: no master holds partition 0" >&2; exit 1; }
echo "SIGKILL of the master on port ${ports[$victim]} (it serves partition 0); its replica takes over"
promoted() {   # another live master holds partition 0's keys now, and the cluster is ok
    local i
    for i in "${!ports[@]}"; do
        [ -z "${pids[$i]}" ] && continue
        if [ "$(cli "${ports[$i]}" role | head -1)" = master ] &&
            cli "${ports[$i]}" cluster countkeysinslot "$slot" | grep -qv '^0$'; then cluster_ok; return; fi
    done
    return 1
}
t0=$(date +%s%N)
kill -KILL "${pids[$victim]}"; wait "${pids[$victim]}" 2>/dev/null; pids[$victim]=
wait_for "a replica to take over" promoted
echo "the cluster is ok again after $(( ($(date +%s%N) - t0) / 1000000 )) ms; the workers kept running"

echo "publishing $((n - half)) more events"
"$build/publisher" order.created $((n - half)) > /dev/null || exit 1
total=$("$build/rsbusctl" --json info 2>/dev/null | sed -n 's/.*"length":\([0-9]*\).*/\1/p' | head -1)
wait_for "the workers to handle every event" handled_at_least "${total:-$n}"
echo "every event in the stream handled: $(handled) distinct events of $total in the stream ($n published)"
echo
"$build/rsbusctl" partitions
for p in "${wpids[@]}"; do kill -TERM "$p"; done
for p in "${wpids[@]}"; do wait "$p" || { echo "a worker did not exit cleanly" >&2; exit 1; }; done
wpids=()
[ "$(handled)" -ge "$n" ] || echo "($((n - $(handled))) acknowledged publishes were lost with the killed master: replication is asynchronous)"
echo "demo-cluster: ok"
