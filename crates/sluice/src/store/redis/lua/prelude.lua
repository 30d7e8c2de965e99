-- Sluice: the shared part of the decision library.
--
-- The library is this file, then one file per algorithm, then carry.lua,
-- refund.lua and main.lua (library.rs joins them). Loaded as a Redis Function library
-- (Redis 7+) it runs once, at FUNCTION LOAD, and every call only runs
-- `run` in main.lua; sent as an EVALSHA script (older Redis) it runs on
-- every call. So nothing here may keep state between calls: every value a
-- call sets is set again by the next one (see main.lua).
--
-- One table, `algorithms`, keyed by the algorithm's code (library.rs
-- `code`), holds everything the library does per algorithm. Each
-- algorithm file adds its entry, mirroring
-- crates/sluice/src/algorithm/<name>.rs exactly; refund.lua adds `refund`:
--
--   algorithms[code] = {
--     load(key, period, now) -> input
--         reads what `decide` needs from the key;
--     decide(input, capacity, period, unit, rate, cost, now)
--       -> decision, state, score
--         decides, reading and writing nothing: `state` is what to keep
--         when the request is admitted (nil: nothing, as after a denial or
--         a cost of 0), `score` whatever `save` needs besides;
--     save(key, decision, state, score, period)
--         keeps an admitted state;
--     refund(key, capacity, period, unit, rate, cost, at, now)
--         gives back a charge made at `at` (refund.lua);
--     debt, indebted (buckets) or carry (fixed window, counter)
--         a packed state carried over to a changed quota (carry.lua).
--   }
--
-- Most algorithms keep a string of packed numbers (see pack2): `packed`
-- gives them a `load` and `save` that read each key once per call and
-- write it once when the call ends (`flush`), however many decisions of
-- the call touch it (a hot key). The sliding log keeps a sorted set: its
-- `load` reads the live entries and its `save` adds one at once.
--
-- `decision` is {allowed (0/1), remaining, reset_after_us, retry_after_us
-- (-1 for never), delay_us, shadow (0/1)}. The quota arrives as
-- four numbers: capacity (burst for buckets, limit for windows), period
-- (µs), unit and rate (the scaled units of a token and of a microsecond's
-- refill; see quota.rs). No closure or table is made per decision but the
-- decision itself: a call decides many.
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
-- The shadow flag (d[6]) is set where shadow mode is applied (main.lua).
local function allowed(remaining, reset_us, skew)
  return {1, remaining, reset_us + skew, 0, 0, 0}
end

local function denied(remaining, reset_us, retry_us, skew)
  if retry_us >= 0 then retry_us = retry_us + skew end
  return {0, remaining, reset_us + skew, retry_us, 0, 0}
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

-- States are stored packed: little-endian doubles (every value is an
-- integer below 2^53, so exact). Unpacking is one C call, several times
-- cheaper than parsing text, and the value is smaller. A packed state
-- opens with a header of 25 bytes, the quota it was saved under: the
-- algorithm's code (a byte), capacity (4 bytes: at most 10^9), period and
-- unit (doubles) and rate (4 bytes: at most 10^9), as a check's values.
-- When a check's quota differs, carry.lua brings the state over to it
-- before deciding (a policy whose numbers changed keeps what each key has
-- spent). Then two or three doubles of the algorithm's own state: 41 or
-- 49 bytes in all (Redis keeps a string of up to 44 bytes in the same
-- allocation as its object).
local HEADER = '<BIddI'
local HEADER_LEN = 25

-- The header of the check being decided (or refunded); main.lua sets it
-- for every check (with_header), and pack2/pack3 write it.
local header = ''

local function with_header(code, capacity, period, unit, rate)
  header = struct.pack(HEADER, code, capacity, period, unit, rate)
end

local function pack2(a, b) return header .. struct.pack('<dd', a, b) end
local function pack3(a, b, c) return header .. struct.pack('<ddd', a, b, c) end

local function whole(x) return x >= 0 and x < 9007199254740992 and x == math.floor(x) end

-- The numbers of a packed state of 2 values, or nil for a missing or
-- foreign value (which every algorithm then reads as untouched). The
-- header is not read here: carry.lua has made it the check's.
local function unpack2(raw)
  if not raw or #raw ~= HEADER_LEN + 16 then return nil end
  local a, b = struct.unpack('<dd', raw, HEADER_LEN + 1)
  if whole(a) and whole(b) then return a, b end
  return nil
end

local function unpack3(raw)
  if not raw or #raw ~= HEADER_LEN + 24 then return nil end
  local a, b, c = struct.unpack('<ddd', raw, HEADER_LEN + 1)
  if whole(a) and whole(b) and whole(c) then return a, b, c end
  return nil
end

-- The call's view of its packed keys, when it has several (a batch may
-- decide a hot key many times): each key's value as last read or decided
-- (false: missing), and the keys to write when the call ends with the
-- reset of their last decision. `run` makes them afresh on every such
-- call. A call with one key reads and writes it once anyway, and goes
-- straight to Redis: three tables fewer.
local cached, values_of, resets_of, dirty = false, {}, {}, {}

-- Reads a packed key, once per call.
local function load_packed(key)
  if not cached then return redis.call('GET', key) or nil end
  local raw = values_of[key]
  if raw == nil then
    raw = redis.call('GET', key)
    values_of[key] = raw
  end
  return raw or nil
end

-- Keeps an admitted packed state, written once per call, to expire when
-- it is back to untouched.
local function save_packed(key, d, state)
  if not cached then
    redis.call('SET', key, state, 'PX', ttl_ms(d[3]))
    return
  end
  if not resets_of[key] then dirty[#dirty + 1] = key end
  values_of[key], resets_of[key] = state, d[3]
end

-- Starts a call on `keys`.
local function start_call(keys)
  cached = #keys > 1
  if cached then values_of, resets_of, dirty = {}, {}, {} end
end

-- Forgets a packed key (a carry that leaves nothing: the key is untouched
-- under its new quota), at once or when the call ends.
local function forget_packed(key)
  if not cached then
    redis.call('DEL', key)
    return
  end
  if not resets_of[key] then dirty[#dirty + 1] = key end
  values_of[key], resets_of[key] = false, 0
end

-- Writes every changed packed key of a call with a cache.
local function flush()
  if not cached then return end
  for _, key in ipairs(dirty) do
    local value = values_of[key]
    if value then
      redis.call('SET', key, value, 'PX', ttl_ms(resets_of[key]))
    else
      redis.call('DEL', key)
    end
  end
end

-- The entry of an algorithm whose state is one packed string.
local function packed(decide)
  return {load = load_packed, decide = decide, save = save_packed}
end
