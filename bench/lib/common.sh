# shellcheck shell=bash
# Helpers shared by bench/run: logging, free loopback ports, the processes
# the run starts (and stops on exit), Redis servers and a 3-master cluster
# (started by crates/sluice-testkit, the harness the tests use), and one JSON
# record per measurement.
#
# Sourced by bench/run, which sets BENCH (the bench/ directory), WORK (this
# run's scratch directory), RECORDS (the JSON-lines file of results) and
# TESTKIT_BIN (the built `sluice-testkit` binary).

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

# start_testkit NAME ARG…: runs `sluice-testkit ARG…` (crates/sluice-testkit:
# the very RedisServer and RedisCluster the tests start) in the background and
# waits for its `ready`; sets TESTKIT_URL, TESTKIT_PORTS (array) and
# TESTKIT_PID. It stops its redis-servers on SIGTERM (stop_all, stop_pid) or
# when its standard input closes: that is a FIFO this shell keeps open, so
# the servers go even if this shell is killed before it can stop them. Its
# output and log are in $WORK/testkit-NAME/.
start_testkit() {
    local name=$1
    shift
    local dir=$WORK/testkit-$name fd
    rm -rf "$dir"
    mkdir -p "$dir"
    mkfifo "$dir/stdin"
    "$TESTKIT_BIN" "$@" <"$dir/stdin" >"$dir/out" 2>"$dir/log" &
    TESTKIT_PID=$!
    STARTED_PIDS+=("$TESTKIT_PID")
    # Opening the write end lets the process's open of the read end go on;
    # it stays open (never closed here) for as long as this shell runs.
    exec {fd}>"$dir/stdin"
    # A cluster takes 2-5 s; the testkit bounds its own waits (30 s for
    # `--cluster create`, 10 s for each server and for the nodes to agree).
    local deadline=$((SECONDS + 90))
    until grep -qx ready "$dir/out" 2>/dev/null; do
        if ! kill -0 "$TESTKIT_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            log "sluice-testkit $* did not start; its log ($dir/log):"
            cat "$dir/log" >&2
            return 1
        fi
        sleep 0.1
    done
    TESTKIT_URL=$(awk '$1 == "url" { print $2 }' "$dir/out")
    mapfile -t TESTKIT_PORTS < <(awk '$1 == "port" { print $2 }' "$dir/out")
}

# start_redis NAME [extra redis-server args…]: starts a redis-server (the
# testkit's RedisServer: a free loopback port, no persistence); sets
# REDIS_PORT and REDIS_PID (the pid of the testkit that holds it).
start_redis() {
    local name=$1
    shift
    start_testkit "redis-$name" server -- "$@" || return 1
    REDIS_PORT=${TESTKIT_PORTS[0]}
    REDIS_PID=$TESTKIT_PID
}

# start_cluster: the testkit's RedisCluster, three masters joined with
# `redis-cli --cluster create`; sets CLUSTER_PORTS (array) and CLUSTER_URL.
start_cluster() {
    start_testkit cluster cluster || return 1
    CLUSTER_PORTS=("${TESTKIT_PORTS[@]}")
    CLUSTER_URL=$TESTKIT_URL
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
