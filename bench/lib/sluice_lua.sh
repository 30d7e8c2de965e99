# shellcheck shell=bash
# How bench/run calls Sluice's own Redis library.
#
# Nothing here knows the library's calling protocol (its files, the
# algorithm codes, the quota's scaling, the argument layout): the
# `redis_library` example prints it from the library itself
# (crates/sluice/examples/redis_library.rs, over
# sluice::store::redis::library). bench/run only runs the command built
# here, with redis-benchmark (`__rand_int__` in the key) or
# bench/lib/resp_load.py (`__KEY__` in the key).
#
# The checks of a call are packed doubles, whose NUL bytes no command-line
# argument can carry, so redis-benchmark cannot send them. The example's
# `bench-library` is the very same library under the name `sluice_bench`,
# with one more entry point, `sluice_bench`, that takes each check's
# numbers as text ("1,1,0,100,1000000,10000,1"), packs them once (kept in
# a table, so later calls pay one table lookup) and calls the library's own
# `run`: every call does what Sluice's own FCALL does, plus that lookup.

# The example, run from the repository root (bench/run's directory).
SLUICE_LIBRARY=(cargo run -q -p sluice --example redis_library --)

# sluice_lua_load PORT: loads Sluice's library (as the Redis Function
# library `sluice_bench`) into the Redis on PORT and sets SLUICE_LUA_SHA (the
# name of the function to call). Fails, with the reason, if the example
# fails or Redis refuses the library.
sluice_lua_load() {
    local port=$1 source out
    if ! source=$("${SLUICE_LIBRARY[@]}" bench-library); then
        echo "Sluice's library: ${SLUICE_LIBRARY[*]} bench-library failed" >&2
        return 1
    fi
    out=$(redis-cli -h 127.0.0.1 -p "$port" function load replace "$source" 2>&1)
    if [[ $out != sluice_bench ]]; then
        echo "FUNCTION LOAD of Sluice's library failed: $out" >&2
        return 1
    fi
    SLUICE_LUA_SHA=sluice_bench
}

# sluice_lua_bench ALGORITHM LIMIT PERIOD_US BURST KEY: sets SLUICE_LUA_CMD
# (an array: the Redis command of one cost-1 decision of ALGORITHM, LIMIT
# per PERIOD_US µs with bucket capacity BURST (the limit for the window
# algorithms), on KEY, timed by Redis TIME) and SLUICE_LUA_CMDSTAT (the
# `INFO commandstats` name its calls are counted under). The command calls
# the function that sluice_lua_load loads.
sluice_lua_bench() {
    local algorithm=$1 limit=$2 period_us=$3 burst=$4 key=$5 out
    if ! out=$("${SLUICE_LIBRARY[@]}" decision "$algorithm" "$limit" "$period_us" "$burst" 1 "$key"); then
        echo "sluice_lua_bench: no command for $algorithm $limit/$period_us µs burst $burst" >&2
        return 1
    fi
    # One argument per line; the time is an empty line (Redis TIME).
    mapfile -t SLUICE_LUA_CMD <<<"$out"
    SLUICE_LUA_CMDSTAT=fcall
}
