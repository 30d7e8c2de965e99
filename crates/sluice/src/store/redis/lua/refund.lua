-- Refunds (mode 'r'): give back a charge made at `at` by an earlier call,
-- when another Redis Cluster slot denied the same all-or-nothing request.
-- Each one undoes what the algorithm's commit added, as far as it is still
-- there: a bucket regains the tokens (never above its capacity), a window
-- loses the count if the window is still kept, a log loses the entry.
local refunds = {}

refunds[1] = function(key, q, cost, at, now)
  local capacity = q.capacity * q.unit
  local stored, stored_at = numbers(redis.call('GET', key))
  if not stored then return end
  local t = math.max(now, stored_at)
  local level = math.min(capacity, stored + (t - stored_at) * q.rate + cost * q.unit)
  if level >= capacity then redis.call('DEL', key); return end
  set_for(key, string.format('%d:%d', level, t), ceil_div(capacity - level, q.rate) + t - now)
end

local function refund_gcra(key, q, cost, at, now)
  local tat, frac = numbers(redis.call('GET', key))
  if not tat or tat < now then return end
  local backlog = (tat - now) * q.rate + frac - cost * q.unit
  if backlog <= 0 then redis.call('DEL', key); return end
  local whole, rest = floor_div(backlog, q.rate)
  set_for(key, string.format('%d:%d', now + whole, rest), ceil_div(backlog, q.rate))
end
refunds[2] = refund_gcra
refunds[3] = refund_gcra

refunds[4] = function(key, q, cost, at, now)
  local w, count = numbers(redis.call('GET', key))
  if w and w == floor_div(at, q.period) then
    redis.call('SET', key, string.format('%d:%d', w, math.max(0, count - cost)), 'KEEPTTL')
  end
end

refunds[5] = function(key, q, cost, at, now)
  local at_text = string.format('%d', at)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, at_text, at_text)) do
    if string.match(m, '^%d+:(%d+):') == string.format('%d', cost) then
      redis.call('ZREM', key, m)
      return
    end
  end
end

refunds[6] = function(key, q, cost, at, now)
  local w, current, previous = numbers(redis.call('GET', key))
  if not (w and previous) then return end
  local charged = floor_div(at, q.period)
  if w == charged then
    current = math.max(0, current - cost)
  elseif w == charged + 1 then
    previous = math.max(0, previous - cost)
  else
    return
  end
  redis.call('SET', key, string.format('%d:%d:%d', w, current, previous), 'KEEPTTL')
end
