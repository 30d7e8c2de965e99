-- Sliding window log (algorithm 5). State: a sorted set of admissions,
-- member "at_us:cost:seq" with score at_us (seq keeps members unique when
-- two admissions share a microsecond). Mirrors algorithm/sliding_window_log.rs.
algorithms[5] = function(key, q, cost, now)
  local period, limit = q.period, q.capacity
  -- Everything after now - period, oldest first; the newest may be ahead of
  -- our clock, in which case we count from it.
  local members = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%d', now - period), '+inf')
  local log = {}
  for i, m in ipairs(members) do
    local at, c = string.match(m, '^(%d+):(%d+):')
    log[i] = {tonumber(at), tonumber(c)}
  end
  local newest = 0
  if #log > 0 then newest = log[#log][1] end
  local skew = math.max(0, newest - now)
  local t = math.max(now, newest)
  local used, newest_live = 0, nil
  local live = {}
  for _, e in ipairs(log) do
    if e[1] + period > t then
      used = used + e[2]
      newest_live = e[1]
      live[#live + 1] = e
    end
  end
  local function reset(at) if at then return at + period - t end return 0 end

  if cost > limit then
    return delayed_by(denied(math.max(0, limit - used), reset(newest_live), -1), skew), nil
  end
  if used + cost <= limit then
    local reset_at = newest_live
    if cost > 0 then reset_at = t end
    local d = delayed_by(allowed(limit - used - cost, reset(reset_at)), skew)
    if cost == 0 then return d, nil end
    return d, function()
      redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', t - period))
      redis.call('ZADD', key, t, string.format('%d:%d:%d', t, cost, used + cost))
      redis.call('PEXPIRE', key, ttl_ms(d[3]))
    end
  end
  -- Walk the log oldest first until enough has expired to make room.
  local still, retry = used, 0
  for _, e in ipairs(live) do
    still = still - e[2]
    if still + cost <= limit then
      retry = e[1] + period - t
      break
    end
  end
  return delayed_by(denied(math.max(0, limit - used), reset(newest_live), retry), skew), nil
end
