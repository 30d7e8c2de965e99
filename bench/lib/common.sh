# shellcheck shell=bash
# Helpers shared by bench/run: logging, free loopback ports, the processes
# the run starts (and stops on exit), Redis servers and a 3-master cluster,
# and one JSON record per measurement.
#
# Sourced by bench/run, which sets BENCH (the bench/ directory), WORK (this
# run's scratch directory) and RECORDS (the JSON-lines file of results).

HOST=127.0.0.1

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The PIDs of every process this run started; `stop_all` ends them.
STARTED_PIDS=()

# Ends the processes PID...: TERM, then KILL those still alive after 5 s.
terminate() {
    (($#)) || return 0
    local pid n=0 alive
    kill -TERM "$@" 2>/dev/null || true
    while ((n < 50)); do
        alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; fi
        done
        ((alive)) || break
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$@" 2>/dev/null || true
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
}

# Stops every process this run started.
stop_all() {
    terminate "${STARTED_PIDS[@]}"
    STARTED_PIDS=()
}

# Prints every process below PID, children before their parent.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        descendants "$child"
        echo "$child"
    done
}

# Stops every process still running below this run's shell: whatever a
# section interrupted mid-way had started.
stop_descendants() {
    local pids=()
    mapfile -t pids < <(descendants $$)
    terminate "${pids[@]}"
}

# Stops one process started by this run.
stop_pid() {
    local pid=$1 kept=() p
    terminate "$pid"
    for p in "${STARTED_PIDS[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    STARTED_PIDS=("${kept[@]}")
}

# Prints a free loopback TCP port (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints a free port P below 55535 whose cluster-bus port P+10000 is free too.
free_cluster_port() {
    python3 - <<'EOF'
import random, socket
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    port = random.randint(20000, 45000)
    if free(port) and free(port + 10000):
        print(port)
        break
else:
    raise SystemExit("no free port pair for a cluster node")
EOF
}

# Waits until `cmd…` succeeds, for up to $1 seconds; fails otherwise.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.1
    done
}

# start_redis NAME [extra redis-server args…]: starts a redis-server on a free
# loopback port with no persistence; sets REDIS_PORT and REDIS_PID.
start_redis() {
    local name=$1
    shift
    local port dir
    port=$(free_port)
    dir="$WORK/redis-$name"
    mkdir -p "$dir"
    redis-server --port "$port" --bind "$HOST" --save '' --appendonly no \
        --dir "$dir" --daemonize no --protected-mode yes "$@" \
        >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    STARTED_PIDS+=("$REDIS_PID")
    REDIS_PORT=$port
    if ! wait_for 10 redis-cli -h "$HOST" -p "$port" ping; then
        log "redis-server $name did not start; its log:"
        cat "$dir/redis.log" >&2
        return 1
    fi
}

# start_cluster: three cluster-enabled masters joined with `redis-cli
# --cluster create` (as crates/sluice-testkit/src/cluster.rs does); sets
# CLUSTER_PORTS (array) and CLUSTER_URL.
start_cluster() {
    local i port dir addresses=()
    CLUSTER_PORTS=()
    for i in 1 2 3; do
        port=$(free_cluster_port)
        dir="$WORK/cluster-$port"
        mkdir -p "$dir"
        redis-server --port "$port" --bind "$HOST" --save '' --appendonly no \
            --dir "$dir" --daemonize no --protected-mode yes \
            --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
            --cluster-node-timeout 5000 \
            >"$dir/redis.log" 2>&1 &
        STARTED_PIDS+=("$!")
        CLUSTER_PORTS+=("$port")
        addresses+=("$HOST:$port")
        wait_for 10 redis-cli -h "$HOST" -p "$port" ping || {
            log "cluster node $port did not start"
            cat "$dir/redis.log" >&2
            return 1
        }
    done
    if ! timeout 30 redis-cli --cluster create "${addresses[@]}" \
        --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1 ||
        grep -q '\[ERR\]' "$WORK/cluster-create.log"; then
        log "redis-cli --cluster create failed:"
        cat "$WORK/cluster-create.log" >&2
        return 1
    fi
    cluster_ok() {
        local p info
        for p in "${CLUSTER_PORTS[@]}"; do
            info=$(redis-cli -h "$HOST" -p "$p" cluster info) || return 1
            grep -q '^cluster_state:ok' <<<"$info" || return 1
            grep -q '^cluster_known_nodes:3' <<<"$info" || return 1
        done
    }
    wait_for 15 cluster_ok || {
        log "the cluster did not reach cluster_state:ok"
        return 1
    }
    local joined
    joined=$(
        IFS=,
        echo "${addresses[*]}"
    )
    CLUSTER_URL="redis+cluster://$joined"
}

# rcli PORT args…: redis-cli against a node of this run.
rcli() {
    local port=$1
    shift
    redis-cli -h "$HOST" -p "$port" "$@"
}

# record key=string key:=json …: appends one JSON object to $RECORDS.
# `key:=` values are raw JSON (numbers, null, true); `key=` values strings.
# Failures and skips are logged too.
record() {
    python3 "$BENCH/lib/record.py" "$@" >>"$RECORDS"
    local arg what=()
    for arg in "$@"; do
        case $arg in
        area=* | name=* | script=* | scenario=* | target=* | algorithm=* | store=*) what+=("${arg#*=}") ;;
        error=*) log "FAILED ${what[*]}: ${arg#error=}" ;;
        skipped=*) log "skipped ${what[*]}: ${arg#skipped=}" ;;
        esac
    done
}

# json_field JSON KEY: prints one top-level field of a JSON object.
json_field() {
    python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# Runs a command with a time limit; its output goes to stdout. On failure
# prints why to stderr and returns non-zero.
bounded() {
    local seconds=$1
    shift
    timeout --kill-after=5 "$seconds" "$@"
}

# Quotes a command line for display: `shown redis-benchmark -p 1 …`.
shown() {
    local out="" word
    for word in "$@"; do
        if [[ $word =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+="$word "
        else
            out+="'${word//\'/\'\\\'\'}' "
        fi
    done
    printf '%s' "${out% }"
}
