-- Sliding window log (algorithm 5). State: a sorted set of admissions,
-- member "at_us:cost:seq" with score at_us (seq keeps members unique when
-- two admissions share a microsecond). Mirrors algorithm/sliding_window_log.rs.

-- Adds `member` at `score`, never over an existing member: a member that
-- is taken already (a refund gave back part of a microsecond's entries, so
-- seq counts from less) gets a '+' until it is new, as two admissions must
-- stay two entries. Reading looks at at_us and cost only.
local function add_entry(key, score, member)
  while redis.call('ZADD', key, 'NX', score, member) == 0 do
    member = member .. '+'
  end
end

-- Everything after now - period, oldest first; the newest may be ahead of
-- our clock, in which case decide counts from it.
local function load_log(key, period, now)
  return redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%d', now - period), '+inf')
end

local function decide_log(members, limit, period, unit, rate, cost, now)
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

-- Drops what has expired, adds the admission and expires the key with it.
local function save_log(key, d, member, score, period)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', score - period))
  add_entry(key, score, member)
  redis.call('PEXPIRE', key, ttl_ms(d[3]))
end

algorithms[5] = {load = load_log, decide = decide_log, save = save_log}
