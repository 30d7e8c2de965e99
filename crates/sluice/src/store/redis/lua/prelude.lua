-- Sluice: the shared part of the decision library.
--
-- The library is this file, then one file per algorithm, then refund.lua
-- and main.lua (see scripts.rs). Loaded as a Redis Function library
-- (Redis 7+) it runs once, at FUNCTION LOAD, and every call only runs
-- `run` in main.lua; sent as an EVALSHA script (older Redis) it runs on
-- every call. So nothing here may keep state between calls: every value a
-- call sets is set again by the next one (see main.lua).
--
-- Each algorithm file adds one function to `algorithms`, mirroring
-- crates/sluice/src/algorithm/<name>.rs exactly:
--
--   algorithms[code](raw, capacity, period, unit, rate, cost, now)
--     -> decision, state
--
-- `raw` is the key's value (nil when missing) and `state` its new value,
-- nil when nothing is to be written (a denial, a cost of 0): the
-- algorithms read and write no key themselves, so main.lua reads each key
-- once per call and writes it once at the end, however many decisions of
-- the call touch it (a hot key). The sliding log, a sorted set, is the
-- exception: algorithms[5](key, ...) -> decision, member, score reads its
-- key, and main.lua adds the member at the score.
--
-- `decision` is {allowed (0/1), remaining, reset_after_us, retry_after_us
-- (-1 for never), delay_us}. The quota arrives as
-- four numbers: capacity (burst for buckets, limit for windows), period
-- (µs), unit and rate (the scaled units of a token and of a microsecond's
-- refill; see quota.rs). No closure or table is made per decision but the
-- decision itself: a call decides many.
--
-- States: a string of packed numbers (see pack2), or for the sliding log a
-- sorted set.
--
-- Numbers: Lua numbers are doubles, exact for integers up to 2^53. Quota
-- validation keeps every operand at or below 2^50 (quota.rs MAX_SCALED),
-- and divisions go through floor_div, which corrects the rounding of `a / b`
-- so that every quotient is the exact integer one.

-- Redis 7.0 runs a function library's top level without the standard
-- libraries (`math`, `string` exist only inside calls), so nothing here
-- refers to them outside a function.
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

-- A decision; `skew` (a stored time ahead of `now`) is added to every
-- duration, so that durations count from the caller's `now`.
local function allowed(remaining, reset_us, skew)
  return {1, remaining, reset_us + skew, 0, 0}
end

local function denied(remaining, reset_us, retry_us, skew)
  if retry_us >= 0 then retry_us = retry_us + skew end
  return {0, remaining, reset_us + skew, retry_us, 0}
end

-- Redis expires keys by its own clock. When the caller gives the time, its
-- clock need not follow Redis's (tests drive a fake one), so expiries get
-- this much slack; main.lua sets it on every call. A key that outlives its
-- untouched state is harmless: every algorithm reads a stale state as
-- untouched.
local ttl_slack_ms = 0

-- Milliseconds until a key is back to its untouched state, at least 1.
local function ttl_ms(reset_us)
  return math.max(1, ceil_div(reset_us, 1000)) + ttl_slack_ms
end

-- States are stored packed: two or three little-endian doubles (every value
-- is an integer below 2^53, so exact). Unpacking is one C call, several
-- times cheaper than parsing text, and the value is smaller.
local function pack2(a, b) return struct.pack('<dd', a, b) end
local function pack3(a, b, c) return struct.pack('<ddd', a, b, c) end

local function whole(x) return x >= 0 and x < 9007199254740992 and x == math.floor(x) end

-- The numbers of a packed state of 2 values, or nil for a missing or
-- foreign value (which every algorithm then reads as untouched).
local function unpack2(raw)
  if not raw or #raw ~= 16 then return nil end
  local a, b = struct.unpack('<dd', raw)
  if whole(a) and whole(b) then return a, b end
  return nil
end

local function unpack3(raw)
  if not raw or #raw ~= 24 then return nil end
  local a, b, c = struct.unpack('<ddd', raw)
  if whole(a) and whole(b) and whole(c) then return a, b, c end
  return nil
end
