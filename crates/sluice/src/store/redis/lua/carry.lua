-- Carrying a key's state over to a changed quota. Mirrors `carry` in
-- algorithm/<name>.rs and algorithm/mod.rs exactly (see there for why
-- each rule holds); the stores' contract tests hold them equal.
--
-- A packed state's header is the quota it was saved under (prelude.lua).
-- When a check's quota differs, `bring` (main.lua calls it before every
-- decision) converts the state and keeps it, whatever the decision, or
-- deletes the key when nothing carries:
--
--   buckets (1-3)  the debt: the scaled units missing from a full bucket
--                  (for GCRA and the leaky bucket, how far the TAT is
--                  ahead), in whole tokens rounded up when a token's size
--                  changes, at most MAX_DEBT; carried between the three.
--   fixed (4)      the count, in the same window under the same period,
--                  else in the new window that holds now.
--   counter (6)    the counts under the same period, else the estimate at
--                  now, rounded up, as the new window's count.
--   log (5)        nothing to do: a sorted set of absolute times and costs.
--
-- Any other change of algorithm starts the key afresh. A log and a packed
-- state are different Redis types: the one found under the other's
-- algorithm is deleted.

-- 2^51: the most debt carried, in scaled units of the new quota.
local MAX_DEBT = 2251799813685248

-- w * rate + rest, exactly, or false when it is beyond MAX_DEBT.
local function ahead(w, rate, rest)
  if w > floor_div(MAX_DEBT, rate) then return false end
  local d = w * rate + rest
  if d > MAX_DEBT then return false end
  return d
end

-- The token bucket's debt at now in its scaled units (false: beyond
-- MAX_DEBT): missing from a full bucket, plus the refill of the time the
-- stored instant is ahead of now.
algorithms[1].debt = function(raw, burst, unit, rate, now)
  local level, at = unpack2(raw)
  if not level then return 0 end
  local capacity = burst * unit
  local t = math.max(now, at)
  -- A sum beyond 2^53 is far above the capacity: its rounding is harmless.
  local refilled = level + (t - at) * rate
  if refilled > capacity then refilled = capacity end
  return ahead(t - now, rate, capacity - refilled)
end

-- The bucket that holds `debt` scaled units at now, or nil (untouched).
algorithms[1].indebted = function(debt, burst, unit, rate, now)
  if debt == 0 then return nil end
  local capacity = burst * unit
  if debt <= capacity then return pack2(capacity - debt, now) end
  return pack2(0, now + ceil_div(debt - capacity, rate))
end

-- GCRA's debt: how far the TAT is ahead of now.
local function tat_debt(raw, burst, unit, rate, now)
  local at, frac = unpack2(raw)
  if not at or at < now then return 0 end
  return ahead(at - now, rate, frac)
end

-- The TAT that holds `debt` scaled units at now, exactly, or nil.
local function tat_indebted(debt, burst, unit, rate, now)
  if debt == 0 then return nil end
  local whole_us, rest = floor_div(debt, rate)
  return pack2(now + whole_us, rest)
end

algorithms[2].debt, algorithms[2].indebted = tat_debt, tat_indebted
algorithms[3].debt, algorithms[3].indebted = tat_debt, tat_indebted

-- A debt of `unit`-sized tokens in `new_unit`-sized ones: the same when
-- they are equal, else whole tokens rounded up; at most MAX_DEBT.
local function carry_debt(debt, unit, new_unit)
  local most_tokens = floor_div(MAX_DEBT, new_unit)
  local most = most_tokens * new_unit
  if not debt then return most end
  if unit ~= new_unit then
    local tokens = ceil_div(debt, unit)
    if tokens > most_tokens then return most end
    debt = tokens * new_unit
  end
  if debt > most then return most end
  return debt
end

algorithms[4].carry = function(raw, old_period, period, now)
  local w, count = unpack2(raw)
  if not w then return nil end
  if old_period == period then return pack2(w, count) end
  local start = w * old_period
  if start + old_period <= now or count == 0 then return nil end
  return pack2(floor_div(math.max(now, start), period), count)
end

algorithms[6].carry = function(raw, old_period, period, now)
  local w, c, p = unpack3(raw)
  if not w then return nil end
  if old_period == period then return pack3(w, c, p) end
  local now_window = floor_div(now, old_period)
  local current, previous = c, p
  if w + 1 == now_window then
    w, current, previous = now_window, 0, c
  elseif w < now_window then
    return nil
  end
  local start = w * old_period
  local t = math.max(now, start)
  local used = current + ceil_div(previous * (old_period - (t - start)), old_period)
  -- Kept where the counter's products stay exact (at least the limit).
  local most = floor_div(1125899906842624, period)
  if used > most then used = most end
  if used == 0 then return nil end
  return pack3(floor_div(t, period), used, 0)
end

-- The quota numbers a packed state was saved under, or nil for a value
-- that is not one.
local function saved_under(raw)
  if #raw ~= HEADER_LEN + 16 and #raw ~= HEADER_LEN + 24 then return nil end
  local code, capacity, period, unit, rate = struct.unpack(HEADER, raw)
  if not (whole(code) and algorithms[code] and whole(capacity) and whole(period)
    and whole(unit) and whole(rate)) or period < 1 or unit < 1 or rate < 1 then
    return nil
  end
  return code, capacity, period, unit, rate
end

-- The packed state `raw`, saved under another quota, carried over to the
-- quota of `header` (code, capacity, period, unit, rate); nil: untouched.
local function carry_packed(raw, code, capacity, period, unit, rate, now)
  local old_code, old_capacity, old_period, old_unit, old_rate = saved_under(raw)
  if not old_code then return nil end
  local old, new = algorithms[old_code], algorithms[code]
  if old.debt and new.indebted then
    local debt = old.debt(raw, old_capacity, old_unit, old_rate, now)
    return new.indebted(carry_debt(debt, old_unit, unit), capacity, unit, rate, now)
  end
  if old_code ~= code then return nil end
  return new.carry(raw, old_period, period, now)
end

-- What `entry.decide` reads of `key` for a check of the quota (code,
-- capacity, period, unit, rate): the state carried over to it when it was
-- saved under another. When `keep`, the carried state is saved (or the
-- key deleted when nothing carries); a peek keeps nothing.
local function bring(key, entry, code, capacity, period, unit, rate, now, keep)
  with_header(code, capacity, period, unit, rate)
  local ok, input = pcall(entry.load, key, period, now)
  if not ok then
    -- Another algorithm's type (a log's sorted set, a packed string):
    -- nothing carries between them.
    if not keep then
      if entry.load == load_packed then return nil end
      return {}
    end
    redis.call('DEL', key)
    return entry.load(key, period, now)
  end
  if entry.load ~= load_packed or not input or string.sub(input, 1, HEADER_LEN) == header then
    return input
  end
  local carried = carry_packed(input, code, capacity, period, unit, rate, now)
  if keep then
    if carried then
      save_packed(key, entry.decide(carried, capacity, period, unit, rate, 0, now), carried)
    else
      forget_packed(key)
    end
  end
  return carried
end
