-- A careful single-key GCRA, the yardstick for the Redis CPU of Sluice's
-- scripts (bench/run measures it with EVALSHA at -P 16 beside them).
--
-- A typical careful implementation: Redis TIME (so servers with skewed
-- clocks agree), one GET, integer-microsecond arithmetic, one SET with PX
-- (the key expires once the limit is back to its untouched state), and a
-- denial writes nothing. It does one algorithm and one key, no validation,
-- no shared code paths: what a user could write by hand in an afternoon.
--
-- KEYS[1]  the key
-- ARGV[1]  the emission interval in µs (period / limit)
-- ARGV[2]  the tolerance in µs (burst × emission interval)
-- Returns {allowed 0/1, remaining, reset_after_us, retry_after_us}.
local key = KEYS[1]
local period = tonumber(ARGV[1])      -- emission interval µs
local burst = tonumber(ARGV[2])       -- tolerance µs
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tat = tonumber(redis.call('GET', key)) or now
if tat < now then tat = now end
local new_tat = tat + period
local allow_at = new_tat - burst
if allow_at > now then
  return {0, math.floor((burst - (tat - now)) / period), tat - now, allow_at - now}
end
redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((burst - (new_tat - now)) / period), new_tat - now, 0}
