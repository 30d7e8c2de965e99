# shellcheck shell=bash
# --- Section: local budgets (issue 15) -----------------------------------------------
#
# Several `sluice bench` processes (each a client of its own, as servers of a
# fleet are) decide on one hot key of one Redis at once, with and without a
# local budget: their decisions/s summed, the Redis calls per decision (INFO
# commandstats), and what they admitted against what the token bucket allows
# plus the budget's bound. Sourced by bench/run, which provides SLUICE_BIN,
# MAIN_PORT, HOST, CONCURRENCY, SLUICE_BENCH_DURATION, reset_redis, cmdstat,
# record, log and shown.

LOCAL_BUDGET_PROCESSES=3
# 10 million a second: the key is hot but never runs out, so both runs
# measure deciding, not denying.
LOCAL_BUDGET_LIMIT=10000000
LOCAL_BUDGET=0.01,$LOCAL_BUDGET_PROCESSES

# The calls clients made to the library (FCALL, EVALSHA or a module's
# command), less those refused: "calls failed".
library_calls() {
    rcli "$1" info commandstats | tr -d '\r' | awk -F'[:,=]' '
        $1 ~ /^cmdstat_(fcall|evalsha|eval|sluice)/ {
            for (i = 2; i < NF; i += 2) v[$i] = $(i + 1)
            calls += v["calls"]; failed += v["failed_calls"]
        }
        END { print calls + 0, failed + 0 }'
}

# One run: MODE plain or budget. Records the processes' summed figures.
measure_local_budget() {
    local mode=$1 i
    reset_redis "$MAIN_PORT"
    local flags=()
    [[ $mode == budget ]] && flags=(--local-budget "$LOCAL_BUDGET")
    local command=("$SLUICE_BIN" bench --store "redis://$HOST:$MAIN_PORT" --algorithm token_bucket
        --limit "$LOCAL_BUDGET_LIMIT" --period 1s --keys 1 --concurrency "$CONCURRENCY"
        --duration "$SLUICE_BENCH_DURATION" --cost 1 "${flags[@]}" --json)
    local shown_command
    shown_command="$(shown "${command[@]}")"
    shown_command="${LOCAL_BUDGET_PROCESSES} x ${shown_command/#$ROOT\//}"
    local pids=()
    for ((i = 0; i < LOCAL_BUDGET_PROCESSES; i++)); do
        bounded 300 "${command[@]}" >"$WORK/local-budget-$mode-$i.json" 2>"$WORK/local-budget-$mode-$i.err" &
        pids+=($!)
    done
    local failed=0
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || failed=1
    done
    if ((failed)); then
        record area=local-budget "scenario=$mode" "command=$shown_command" \
            "error=sluice bench failed: $(cat "$WORK"/local-budget-"$mode"-*.err | tail -3 | tr '\n' ' ')"
        return 0
    fi
    local calls refused
    read -r calls refused <<<"$(library_calls "$MAIN_PORT")"
    local summary
    summary=$(python3 - "$WORK" "$mode" "$LOCAL_BUDGET_PROCESSES" "$((calls - refused))" "$LOCAL_BUDGET_LIMIT" <<'EOF'
import json, math, sys
work, mode, n, calls, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
runs = [json.load(open(f"{work}/local-budget-{mode}-{i}.json")) for i in range(n)]
decisions = sum(r["decisions"] for r in runs)
admitted = sum(round(r["decisions"] * r["allowed_ratio"]) for r in runs)
seconds = max(r["seconds"] for r in runs)
# Slices of 1% of the burst over the processes; each holds less than one.
slice_ = limit * 1 // 100 // n if mode == "budget" else 1
bound = n * (slice_ - 1)
allowed = limit + math.ceil(limit * seconds)
print(json.dumps({
    "processes": n,
    "decisions": decisions,
    "decisions_per_sec": sum(r["decisions_per_sec"] for r in runs),
    "redis_calls": calls,
    "redis_calls_per_decision": calls / decisions if decisions else None,
    "admitted": admitted,
    "over_admitted": max(0, admitted - allowed),
    "bound": bound,
    "errors": sum(r["errors"] for r in runs),
    "p99_us": max(r["p99_us"] for r in runs),
}))
EOF
)
    record area=local-budget "scenario=$mode" "command=$shown_command" "result:=$summary"
    log "local budget $mode: $summary"
}

section_local_budget() {
    measure_local_budget plain
    measure_local_budget budget
}
