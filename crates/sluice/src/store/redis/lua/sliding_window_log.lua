-- Sliding window log (algorithm 5). State: a sorted set of admissions,
-- member "at_us:cost:seq" with score at_us (seq keeps members unique when
-- two admissions share a microsecond). Mirrors algorithm/sliding_window_log.rs.
algorithms[5] = function(key, limit, period, unit, rate, cost, now)
  -- Everything after now - period, oldest first; the newest may be ahead of
  -- our clock, in which case we count from it.
  local members = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%d', now - period), '+inf')
  local ats, costs = {}, {}
  for i, m in ipairs(members) do
    local at, c = string.match(m, '^(%d+):(%d+):')
    ats[i], costs[i] = tonumber(at), tonumber(c)
  end
  local newest = ats[#ats] or 0
  local skew = math.max(0, newest - now)
  local t = math.max(now, newest)
  -- The live entries are the last ones: find the first, and what they hold.
  local first, used = #ats + 1, 0
  for i = #ats, 1, -1 do
    if ats[i] + period <= t then break end
    first, used = i, used + costs[i]
  end
  local reset = 0
  if first <= #ats then reset = ats[#ats] + period - t end

  if cost > limit then
    return denied(math.max(0, limit - used), reset, -1, skew)
  end
  if used + cost <= limit then
    if cost == 0 then return allowed(limit - used, reset, skew) end
    return allowed(limit - used - cost, period, skew), string.format('%d:%d:%d', t, cost, used + cost), t
  end
  -- Walk the live log oldest first until enough has expired to make room.
  local still, retry = used, 0
  for i = first, #ats do
    still = still - costs[i]
    if still + cost <= limit then
      retry = ats[i] + period - t
      break
    end
  end
  return denied(math.max(0, limit - used), reset, retry, skew)
end
