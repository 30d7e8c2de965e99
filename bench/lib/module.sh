# shellcheck shell=bash
# bench/run's section `module`: Sluice's native Redis module
# (crates/sluice-redis-module) against Sluice's two Lua paths and redis-cell.
#
# One redis-server of its own, with the module and redis-cell loaded. On it,
# for each scenario (hot, allowing, random: bench/run's) and algorithm:
#   - `sluice bench --redis-path module|function|script`: the same library
#     deciding by SLUICE.CALL, by FCALL and by EVALSHA (the path is forced,
#     and the bench fails rather than measure another one), with as many
#     decisions in flight as redis-benchmark keeps requests (its -c × -P),
#     so that both sides are compared at the same depth;
#   - redis-cell's CL.THROTTLE and the careful GCRA script under
#     redis-benchmark, by bench/run's own `measure_lua` (its records are
#     moved to this section's area).
# Redis CPU per decision is the command's `usec` in INFO commandstats (reset
# before each run) over the decisions made: concurrent decisions share a
# call, so one call may carry several.
#
# Records (area=module):
#   target=sluice path=… algorithm=… scenario=… result:={sluice bench's JSON}
#       redis_calls:= redis_usec:= redis_usec_per_decision:=
#   script=redis-cell|gcra_reference scenario=… rps:= redis_usec_per_call:= …
#       (the fields of bench/run's `lua` records)
#
# Sourced by bench/run after lib/common.sh; uses its ROOT, WORK, CACHE,
# SLUICE_BIN, CELL_SO, HAVE_CELL, RB_CLIENTS, RB_PIPELINE, SLUICE_BENCH_DURATION,
# SCENARIOS, scenario_quota, lua_command and measure_lua.

MODULE_SO=$ROOT/target/release/libsluice_redis.so
# The algorithms the section measures: redis-cell's (GCRA) and the default.
MODULE_ALGORITHMS=(token_bucket gcra)
# Each Redis path of `sluice bench --redis-path` and the command INFO
# commandstats counts its calls under.
MODULE_PATHS=(module:sluice.call function:fcall script:evalsha)

# Builds the module's library, target/release/libsluice_redis.so.
build_module() {
    log "building sluice-redis-module (release)"
    if ! cargo build --release -p sluice-redis-module >"$WORK/build-module.log" 2>&1; then
        record area=build name=sluice-redis-module \
            "error=cargo build --release -p sluice-redis-module failed: $(grep -m3 '^error' "$WORK/build-module.log" | tr '\n' ' ')"
        return 1
    fi
}

# One `sluice bench` run on PORT. Args: path cmdstat algorithm scenario port
measure_module_path() {
    local path=$1 cmdstat_name=$2 algorithm=$3 scenario=$4 port=$5
    local limit burst keys
    read -r limit burst keys <<<"$(scenario_quota "$scenario" "$algorithm")"
    local common=(area=module target=sluice "path=$path" "algorithm=$algorithm" "scenario=$scenario"
        "limit:=$limit" "burst:=$burst" "keys:=$keys")
    reset_redis "$port"
    local burst_flag=()
    case $algorithm in
    token_bucket | gcra | leaky_bucket) burst_flag=(--burst "$burst") ;;
    esac
    local command=("$SLUICE_BIN" bench --store "redis://$HOST:$port" --redis-path "$path"
        --algorithm "$algorithm" --limit "$limit" --period 1s "${burst_flag[@]}" --keys "$keys"
        --distribution uniform --concurrency "$((RB_CLIENTS * RB_PIPELINE))" --duration "$SLUICE_BENCH_DURATION" --cost 1 --json)
    local shown_command out
    shown_command="$(shown "${command[@]}")"
    shown_command=${shown_command/#$ROOT\//}
    if ! out=$(bounded 300 "${command[@]}" 2>"$WORK/module-bench.err"); then
        record "${common[@]}" "command=$shown_command" \
            "error=sluice bench failed: $(tail -3 "$WORK/module-bench.err" | tr '\n' ' ')"
        return 0
    fi
    local calls failed total per_decision
    read -r calls _ failed total <<<"$(cmdstat "$port" "$cmdstat_name")"
    per_decision=$(python3 -c 'import json, sys; n = json.loads(sys.argv[1])["decisions"]; print(int(sys.argv[2]) / n if n else "null")' "$out" "$total")
    record "${common[@]}" "command=$shown_command" "result:=$out" "redis_command=$cmdstat_name" \
        "redis_calls:=$calls" "redis_failed_calls:=$failed" "redis_usec:=$total" \
        "redis_usec_per_decision:=$per_decision"
    log "module $path $algorithm $scenario: $(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print("{:.0f}/s, p99 {} µs, errors {}".format(r["decisions_per_sec"], r["p99_us"], r["errors"]))' "$out"), Redis $per_decision µs/decision over $calls calls"
}

# redis-cell or the careful GCRA script under redis-benchmark on PORT:
# bench/run's measure_lua, on this section's Redis, recorded in its area.
measure_module_reference() {
    local script=$1 scenario=$2 port=$3 lua_records=$WORK/module-lua.jsonl
    : >"$lua_records"
    # Both only for this call (bash scopes a function call's assignments).
    MAIN_PORT=$port RECORDS=$lua_records measure_lua "$script" "$scenario"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        r["area"] = "module"
        print(json.dumps(r, ensure_ascii=False))
' "$lua_records" >>"$RECORDS"
}

section_module() {
    if [[ ! -f $MODULE_SO ]]; then
        record area=module "error=$MODULE_SO is missing (cargo build --release -p sluice-redis-module)"
        return 0
    fi
    local load=(--loadmodule "$MODULE_SO")
    if ((HAVE_CELL)); then load+=(--loadmodule "$CELL_SO"); fi
    if ! start_redis module "${load[@]}"; then
        record area=module "error=the redis-server with the module did not start (see bench/.cache/run/testkit-redis-module/log)"
        return 0
    fi
    local port=$REDIS_PORT scenario algorithm path_cmd
    log "redis-server with the module on 127.0.0.1:$port (redis-cell loaded: $HAVE_CELL)"
    # measure_lua's careful GCRA script, loaded into this Redis.
    # shellcheck disable=SC2034 # read by lua_command
    GCRA_REF_SHA=$(rcli "$port" script load "$(cat "$BENCH/lua/gcra_reference.lua")")
    for scenario in "${SCENARIOS[@]}"; do
        for algorithm in "${MODULE_ALGORITHMS[@]}"; do
            for path_cmd in "${MODULE_PATHS[@]}"; do
                measure_module_path "${path_cmd%%:*}" "${path_cmd#*:}" "$algorithm" "$scenario" "$port"
            done
        done
        if ((HAVE_CELL)); then
            measure_module_reference redis-cell "$scenario" "$port"
        else
            record area=module script=redis-cell "scenario=$scenario" \
                "error=redis-cell is not available (it did not build; see the build records)"
        fi
        measure_module_reference gcra_reference "$scenario" "$port"
    done
}
