-- Sluice: the shared part of the decision script.
--
-- The script sent to Redis is this file, then one file per algorithm, then
-- main.lua (see scripts.rs). Each algorithm file adds one function to
-- `algorithms`, mirroring crates/sluice/src/algorithm/<name>.rs exactly:
--
--   algorithms[code](key, q, cost, now) -> decision, commit
--
-- `decision` is {allowed (0/1), remaining, reset_after_us, retry_after_us
-- (-1 for never), delay_us}; `commit` is nil or a function that writes the
-- new state. A denial never writes. `q` holds the quota: capacity (burst
-- for buckets, limit for windows), period (µs), unit and rate (the scaled
-- units of a token and of a microsecond's refill; see quota.rs).
--
-- Numbers: Lua numbers are doubles, exact for integers up to 2^53. Quota
-- validation keeps every operand at or below 2^50 (quota.rs MAX_SCALED),
-- and divisions go through floor_div, which corrects the rounding of `a / b`
-- so that every quotient is the exact integer one.

local algorithms = {}

-- Exact floor(a / b) and a % b for integers 0 <= a <= 2^52, b >= 1.
local function floor_div(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  while r < 0 do q = q - 1; r = r + b end
  while r >= b do q = q + 1; r = r - b end
  return q, r
end

local function ceil_div(a, b)
  local q, r = floor_div(a, b)
  if r > 0 then q = q + 1 end
  return q
end

local function allowed(remaining, reset_us)
  return {1, remaining, reset_us, 0, 0}
end

local function denied(remaining, reset_us, retry_us)
  return {0, remaining, reset_us, retry_us, 0}
end

-- Adds the clock skew (a stored time ahead of `now`) to every duration, so
-- that durations still count from the caller's `now`.
local function delayed_by(d, skew)
  if skew > 0 then
    d[3] = d[3] + skew
    if d[1] == 0 and d[4] >= 0 then d[4] = d[4] + skew end
  end
  return d
end

-- Redis expires keys by its own clock. When the caller gives the time, its
-- clock need not follow Redis's (tests drive a fake one), so expiries get
-- this much slack (main.lua sets it). A key that outlives its untouched
-- state is harmless: every algorithm reads a stale state as untouched.
local ttl_slack_ms = 0

-- Milliseconds until a key is back to its untouched state, at least 1.
local function ttl_ms(reset_us)
  return math.max(1, ceil_div(reset_us, 1000)) + ttl_slack_ms
end

-- Stores `value` until the key is back to its untouched state.
local function set_for(key, value, reset_us)
  redis.call('SET', key, value, 'PX', ttl_ms(reset_us))
end

-- The numbers of a state string "a:b[:c]", or nil for a missing or foreign value.
local function numbers(raw)
  if not raw then return nil end
  local a, b, c = string.match(raw, '^(%d+):(%d+):?(%d*)$')
  if not a then return nil end
  return tonumber(a), tonumber(b), tonumber(c)
end
