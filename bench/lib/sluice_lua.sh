# shellcheck shell=bash
# How bench/run calls Sluice's own Redis library, in ONE place.
#
# Everything that knows the library's calling protocol is in this file:
# which files make it, how it is loaded, and the command line of one
# decision. When the protocol changes, change `sluice_lua_load` and
# `sluice_lua_bench` here and nothing else: bench/run only runs the command
# they build, with redis-benchmark (`__rand_int__` in the key) or
# bench/lib/resp_load.py (`__KEY__` in the key).
#
# Today's protocol (crates/sluice/src/store/redis/lua/main.lua, call.rs):
#
#   FCALL sluice_<hash> <numkeys> <keys…> <now|''> d [<n> <packed>]…
#
# where <packed> is 7 little-endian doubles per check (algorithm code, cost,
# shadow, capacity, period µs, unit, rate). Those bytes hold NULs, which no
# command-line argument can carry, so redis-benchmark cannot send them.
# The bench therefore loads the very same library under the name
# `sluice_bench`, with one more entry point, `sluice_bench`, that takes the
# 7 values as text ("1,1,0,100,1000000,10000,1"), packs them once (the
# packed string is kept in a table, so later calls pay one table lookup),
# puts them in place of the text and calls the library's own `run`. Every
# call then does exactly what Sluice's own FCALL does, plus that lookup.

SLUICE_LUA_DIR=${SLUICE_LUA_DIR:-crates/sluice/src/store/redis/lua}
# The files, in the order crates/sluice/src/store/redis/scripts.rs joins them.
SLUICE_LUA_FILES=(prelude token_bucket gcra leaky_bucket fixed_window
    sliding_window_log sliding_window_counter refund main)

# The entry point added for the bench (see above).
SLUICE_LUA_SHIM='
local packed_of = {}
local function sluice_bench(keys, argv)
  for a = 4, #argv, 2 do
    local text = argv[a]
    local packed = packed_of[text]
    if not packed then
      local v = {}
      for x in string.gmatch(text, "[^,]+") do v[#v + 1] = tonumber(x) end
      local parts = {}
      for i = 1, #v, 7 do
        parts[#parts + 1] = struct.pack("<ddddddd", v[i], v[i + 1], v[i + 2],
          v[i + 3], v[i + 4], v[i + 5], v[i + 6])
      end
      packed = table.concat(parts)
      packed_of[text] = packed
    end
    argv[a] = packed
  end
  return run(keys, argv)
end
redis.register_function("sluice_bench", sluice_bench)
'

# sluice_lua_load PORT: loads Sluice's library (as the Redis Function
# library `sluice_bench`) into the Redis on PORT and sets SLUICE_LUA_SHA (the
# name of the function to call). Fails, with Redis's message, if Redis
# refuses it.
sluice_lua_load() {
    local port=$1 source=$'#!lua name=sluice_bench\n' name out
    for name in "${SLUICE_LUA_FILES[@]}"; do
        if [[ ! -f $SLUICE_LUA_DIR/$name.lua ]]; then
            echo "Sluice's library: $SLUICE_LUA_DIR/$name.lua is missing" >&2
            return 1
        fi
        source+=$(<"$SLUICE_LUA_DIR/$name.lua")
        source+=$'\n'
    done
    source+=$SLUICE_LUA_SHIM
    out=$(redis-cli -h 127.0.0.1 -p "$port" function load replace "$source" 2>&1)
    if [[ $out != sluice_bench ]]; then
        echo "FUNCTION LOAD of Sluice's library failed: $out" >&2
        return 1
    fi
    SLUICE_LUA_SHA=sluice_bench
}

# sluice_lua_bench ALGORITHM LIMIT PERIOD_US BURST KEY: sets SLUICE_LUA_CMD
# (an array: the Redis command of one cost-1 decision of ALGORITHM, LIMIT
# per PERIOD_US µs with bucket capacity BURST, on KEY, timed by Redis TIME)
# and SLUICE_LUA_CMDSTAT (the `INFO commandstats` name its calls are counted
# under). Needs SLUICE_LUA_SHA from sluice_lua_load.
sluice_lua_bench() {
    local algorithm=$1 limit=$2 period_us=$3 burst=$4 key=$5 code capacity
    case $algorithm in
    token_bucket) code=1 ;;
    gcra) code=2 ;;
    leaky_bucket) code=3 ;;
    fixed_window) code=4 ;;
    sliding_window_log) code=5 ;;
    sliding_window_counter) code=6 ;;
    *)
        echo "sluice_lua_bench: unknown algorithm $algorithm" >&2
        return 1
        ;;
    esac
    # Capacity: the burst for the buckets, the limit for the windows.
    if ((code <= 3)); then capacity=$burst; else capacity=$limit; fi
    # Quota::scaled_unit and refill_per_us: with g = gcd(limit, period_us),
    # one token is period_us/g scaled units and a µs refills limit/g.
    local a=$limit b=$period_us t
    while ((b != 0)); do
        t=$((a % b))
        a=$b
        b=$t
    done
    local unit=$((period_us / a)) rate=$((limit / a))
    # One group of one check: code, cost, shadow, capacity, period, unit, rate.
    SLUICE_LUA_CMD=(FCALL "${SLUICE_LUA_SHA:-sluice_bench}" 1 "$key" '' d 1
        "$code,1,0,$capacity,$period_us,$unit,$rate")
    SLUICE_LUA_CMDSTAT=fcall
}
