-- Refunds (mode 'r<at>'): give back the charges that an earlier 'd' call
-- made at `at` (that call's time), because another Redis Cluster slot
-- denied the same all-or-nothing request (store/redis/cluster.rs). The
-- refund call has its own time, `now`, usually a round trip after `at`,
-- but behind it when a failover to a replica whose clock is behind came
-- in between.
--
-- What a refund must give back. A refund of `cost` charged at `at`, made at
-- `now`, leaves the key as if the charge had not been made (and everything
-- else admitted as it was), where the state shows where the charge went.
-- It never gives back more than `cost`, never beyond an untouched key,
-- never to a window or an instant the charge did not go to, and never
-- anything older than `at`: what was there before the charge is not its
-- own. Where the state cannot show where the charge went, it gives back
-- less, or nothing, except in cases that no state can tell apart from the
-- charge's own, noted below (marked *).
--
-- Where the charge went. decide counts a request at its own time, unless
-- the state is ahead of it (a clock that stepped back keeps counting from
-- the stored time, window or newest entry: see each algorithm). So the
-- charge went to `at`, unless the state is ahead of both `at` and `now`:
-- then the clock was behind the state at the charge as it is now, and the
-- charge went to the state's time. (A state ahead of `at` but not of `now`
-- moved on after the charge: the charge is not there.)
--
--   token bucket   The level, measured at max(now, the stored time), regains
--                  cost tokens, up to the capacity (a full bucket is
--                  deleted). A state measured before `at` was written
--                  without the charge (the charged one was lost in a
--                  failover): nothing. (*) The bucket might have been full
--                  between the charge and the refund without the charge,
--                  and its refill lost: when other charges came in between,
--                  or the clock stepped back before the refund, it may give
--                  back up to the refill of that interval more.
--   gcra, leaky    The theoretical arrival time (TAT) moves back by cost × T
--                  (the emission interval), not before `at`; back at or
--                  before `now`, the key is deleted. A TAT at or before `now`
--                  or `at` holds nothing of the charge. (*) As the bucket:
--                  a TAT that other charges moved after the charge gives
--                  back up to that interval more.
--   fixed window   The count loses cost, not below 0, when the stored window
--                  is the one charged (back at 0, the key is deleted); else
--                  nothing (the window has passed and no longer counts, or
--                  the state was lost).
--   sliding        The current count loses cost when the stored window is
--   counter        the one charged, the previous count when the state has
--                  moved one window on (both back at 0, the key is
--                  deleted); else nothing. (*) For both windows:
--                  a state lost in a failover and charged again in the same
--                  window loses a charge it never held.
--   sliding log    The entries at the charged instant lose cost units (the
--                  charge's own entry, or others of that same microsecond:
--                  equal for every decision); else nothing. (*) A failover
--                  between the charge and the refund, after another
--                  admission at a later instant, takes from that instant.
--
-- The Rust model of this file is store/redis/refund.rs, whose test holds
-- them equal on a real Redis, and holds the model to "as if never
-- charged" wherever the above promises it.
--
--   algorithms[code].refund(key, capacity, period, unit, rate, cost, at, now)

-- The window index or instant the charge went to, from the stored one
-- (`stored`), `at`'s and `now`'s, in the same units.
local function charged(stored, at, now)
  if stored > at and stored > now then return stored end
  return at
end

algorithms[1].refund = function(key, burst, period, unit, rate, cost, at, now)
  local capacity = burst * unit
  local stored, stored_at = unpack2(redis.call('GET', key))
  -- Every state written since the charge was measured at `at` or later.
  if not stored or stored_at < at then return end
  local t = math.max(now, stored_at)
  local level = math.min(capacity, stored + (t - stored_at) * rate + cost * unit)
  if level >= capacity then redis.call('DEL', key); return end
  local reset = ceil_div(capacity - level, rate) + t - now
  redis.call('SET', key, pack2(level, t), 'PX', ttl_ms(reset))
end

-- The TAT is at_us + frac / rate µs; it moves back by cost × unit / rate µs,
-- computed in parts so that no product grows with the distance to `now`,
-- but not before `at`: what is queued before the charge is not its own.
local function refund_gcra(key, burst, period, unit, rate, cost, at, now)
  local tat, frac = unpack2(redis.call('GET', key))
  if not tat or tat < now or (tat == now and frac == 0) or tat < at
    or (tat == at and frac == 0) then
    return
  end
  local back, back_frac = floor_div(cost * unit, rate)
  tat, frac = tat - back, frac - back_frac
  if frac < 0 then tat, frac = tat - 1, frac + rate end
  if tat < at then tat, frac = at, 0 end
  if tat < now or (tat == now and frac == 0) then redis.call('DEL', key); return end
  local reset = tat - now
  if frac > 0 then reset = reset + 1 end
  redis.call('SET', key, pack2(tat, frac), 'PX', ttl_ms(reset))
end
algorithms[2].refund = refund_gcra
algorithms[3].refund = refund_gcra

algorithms[4].refund = function(key, limit, period, unit, rate, cost, at, now)
  local w, count = unpack2(redis.call('GET', key))
  if w and w == charged(w, floor_div(at, period), floor_div(now, period)) then
    count = math.max(0, count - cost)
    -- An empty window is an untouched key: kept, it would still pull a
    -- clock behind it into its window.
    if count == 0 then redis.call('DEL', key); return end
    redis.call('SET', key, pack2(w, count), 'KEEPTTL')
  end
end

-- The entry at the charged instant loses up to `cost`, and the running
-- totals of it and of every newer entry lose as much (k newer entries:
-- O((k + 1) log n); a refund follows its charge by one round trip, so k is
-- what was admitted in between). A member that is not Sluice's on the way
-- stops it: nothing is given back.
algorithms[5].refund = function(key, limit, period, unit, rate, cost, at, now)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
  if not newest then return end
  local instant = string.format('%d', charged(tonumber(newest), at, now))
  local members = redis.call('ZRANGEBYSCORE', key, instant, '+inf', 'WITHSCORES')
  local entries = {}
  for i = 1, #members, 2 do
    local at_us, c, cum = log_entry(members[i])
    if not at_us then return end
    entries[#entries + 1] = {members[i], members[i + 1], at_us, c, cum}
  end
  local first = entries[1]
  if not first or first[3] ~= tonumber(instant) then return end
  local taken = math.min(first[4], cost)
  first[4] = first[4] - taken
  for _, e in ipairs(entries) do
    redis.call('ZREM', key, e[1])
    if e[4] > 0 then
      redis.call('ZADD', key, e[2], string.format('%d:%d:c%d', e[3], e[4], e[5] - taken))
    end
  end
end

algorithms[6].refund = function(key, limit, period, unit, rate, cost, at, now)
  local w, current, previous = unpack3(redis.call('GET', key))
  if not w then return end
  local window = charged(w, floor_div(at, period), floor_div(now, period))
  if w == window then
    current = math.max(0, current - cost)
  elseif w == window + 1 then
    previous = math.max(0, previous - cost)
  else
    return
  end
  -- Both counts at 0 is an untouched key (as the fixed window's).
  if current == 0 and previous == 0 then redis.call('DEL', key); return end
  redis.call('SET', key, pack3(w, current, previous), 'KEEPTTL')
end
