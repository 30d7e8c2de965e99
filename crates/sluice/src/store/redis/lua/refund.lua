-- Refunds (mode 'r'): give back a charge made at `at` by an earlier call,
-- when another Redis Cluster slot denied the same all-or-nothing request.
-- Each one undoes what the algorithm's write added, as far as it is still
-- there: a bucket regains the tokens (never above its capacity), a window
-- loses the count if the window is still kept, a log loses the entry.
--
--   refunds[code](key, capacity, period, unit, rate, cost, at, now)
local refunds = {}

refunds[1] = function(key, burst, period, unit, rate, cost, at, now)
  local capacity = burst * unit
  local stored, stored_at = unpack2(redis.call('GET', key))
  if not stored then return end
  local t = math.max(now, stored_at)
  local level = math.min(capacity, stored + (t - stored_at) * rate + cost * unit)
  if level >= capacity then redis.call('DEL', key); return end
  local reset = ceil_div(capacity - level, rate) + t - now
  redis.call('SET', key, pack2(level, t), 'PX', ttl_ms(reset))
end

local function refund_gcra(key, burst, period, unit, rate, cost, at, now)
  local tat, frac = unpack2(redis.call('GET', key))
  if not tat or tat < now then return end
  local backlog = (tat - now) * rate + frac - cost * unit
  if backlog <= 0 then redis.call('DEL', key); return end
  local whole, rest = floor_div(backlog, rate)
  redis.call('SET', key, pack2(now + whole, rest), 'PX', ttl_ms(ceil_div(backlog, rate)))
end
refunds[2] = refund_gcra
refunds[3] = refund_gcra

refunds[4] = function(key, limit, period, unit, rate, cost, at, now)
  local w, count = unpack2(redis.call('GET', key))
  if w and w == floor_div(at, period) then
    redis.call('SET', key, pack2(w, math.max(0, count - cost)), 'KEEPTTL')
  end
end

refunds[5] = function(key, limit, period, unit, rate, cost, at, now)
  local at_text = string.format('%d', at)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, at_text, at_text)) do
    if string.match(m, '^%d+:(%d+):') == string.format('%d', cost) then
      redis.call('ZREM', key, m)
      return
    end
  end
end

refunds[6] = function(key, limit, period, unit, rate, cost, at, now)
  local w, current, previous = unpack3(redis.call('GET', key))
  if not w then return end
  local charged = floor_div(at, period)
  if w == charged then
    current = math.max(0, current - cost)
  elseif w == charged + 1 then
    previous = math.max(0, previous - cost)
  else
    return
  end
  redis.call('SET', key, pack3(w, current, previous), 'KEEPTTL')
end
