-- Sliding window log (algorithm 5). Mirrors algorithm/sliding_window_log.rs.
--
-- State: a sorted set with one member per microsecond that admitted
-- something, "<at_us>:<cost>:c<cum>" at score at_us: the units admitted at
-- that instant, and the running total of the units logged up to and
-- including it since the log began. The format holds absolute times and
-- costs only, nothing of the quota. Every admission is logged at or after
-- the newest entry, so ranks, times and totals grow together, and the
-- totals make every question a lookup instead of a sum:
--
--   used   = cum of the newest - (cum - cost) of the oldest live entry:
--            ZRANGE -1 -1 and ZRANGEBYSCORE ... LIMIT 0 1, O(log n) each;
--   retry  = the time of the first entry whose cum reaches
--            cum of the newest + cost - limit (once it has expired, what is
--            left plus the cost fits): a search over the ranks where it
--            can be (`first_reaching`), for a denial that a wait can
--            admit, once per key and target in a call: the ranks after the
--            oldest live entry are read once per call and searched in Lua
--            for a cost under 128, one range read for a cost within 128 of
--            the limit, O(log n) lookups at worst;
--   admit  = ZADD of one member (replacing the newest when it is at the
--            same instant), after dropping what had expired by the newest
--            entry's time (ZREMRANGEBYSCORE: each entry is dropped once, so
--            amortised O(log n)).
--
-- So no check reads, sums or copies the log, whatever its length, and a
-- batch reads each log key once (a view kept per call, as packed keys are).
-- A value Sluice did not write reads as untouched and is replaced at the
-- next admission (see `read_log`); a Redis type Sluice never writes fails
-- the check (prelude `refuse`).

-- The numbers of a member, or nil for one Sluice did not write (the
-- earlier format, "<at>:<cost>:<seq>", included).
local function log_entry(member)
  if not member then return nil end
  local at, cost, cum = string.match(member, '^(%d+):(%d+):c(%d+)$')
  if not at then return nil end
  at, cost, cum = tonumber(at), tonumber(cost), tonumber(cum)
  if cost < 1 or cum < cost then return nil end
  return at, cost, cum
end

-- A log that reads as untouched and is replaced at the next admission.
local function replaced(key) return {key = key, replace = true} end

-- What decide needs of the log at `now`: the newest entry (member, at,
-- cost, cum), `base` (the total before the oldest live entry; nil when
-- none is live), or `replace` for a value Sluice did not write: a string
-- (another algorithm's state under the same key) or members it cannot
-- read. Either is in Sluice's namespace, so replacing it loses nothing
-- but a stale state.
local function read_log(key, period, now)
  local newest = redis.pcall('ZRANGE', key, -1, -1)
  if newest.err then
    if key_type(key) == 'string' then return replaced(key) end
    refuse(key)
  end
  local at, cost, cum = log_entry(newest[1])
  if not newest[1] then return {key = key} end
  if not at then return replaced(key) end
  local input = {key = key, member = newest[1], at = at, cost = cost, cum = cum}
  local t = math.max(now, at)
  if at + period > t then
    local oldest = redis.call('ZRANGEBYSCORE', key,
      '(' .. string.format('%d', t - period), '+inf', 'LIMIT', 0, 1)[1]
    local _, c, total = log_entry(oldest)
    if not c or total > cum then return replaced(key) end
    input.base, input.oldest = total - c, oldest
  end
  return input
end

-- The log's view, read once per call when the call has several keys.
local function load_log(key, period, now)
  if not cached then return read_log(key, period, now) end
  local input = logs_of[key]
  if not input then
    input = read_log(key, period, now)
    logs_of[key] = input
  end
  return input
end

-- Ranks read in one ZRANGE once a search has narrowed to them.
local SPAN = 128

-- The time of the first entry whose running total reaches `target` (at
-- most the newest's), or nil if a member on the way is not Sluice's. Every
-- entry holds at least 1, so the entry sought is at most target - base - 1
-- ranks after the oldest live one (found by ZRANK), and at most
-- cum - target ranks before the newest: for a cost c on a full log the
-- span is at most min(c, limit - c + 1) ranks. Spans of up to SPAN ranks
-- are read in one ZRANGE and searched here; wider ones are first halved by
-- one-rank reads, log2(span / SPAN) of them (at most 10 at a limit of
-- 100,000). The answer is kept for the rest of the call.
local function first_reaching(input, target)
  if target >= input.cum then return input.at end
  if input.target == target then return input.target_at end
  local key = input.key
  -- Kept for the call until an admission moves the ranks (see save_log).
  if not input.n then
    input.n = redis.call('ZCARD', key)
    input.first = input.oldest and redis.call('ZRANK', key, input.oldest)
  end
  local n, first = input.n, input.first
  local lo, hi = 0, n - 1
  if first then lo, hi = first, math.min(hi, first + target - input.base - 1) end
  lo = math.max(lo, n - 1 - (input.cum - target))
  while hi - lo >= SPAN do
    local mid = math.floor((lo + hi) / 2)
    local at, _, cum = log_entry(redis.call('ZRANGE', key, mid, mid)[1])
    if not at then return nil end
    if cum >= target then hi = mid else lo = mid + 1 end
  end
  -- The ranks from `from` on, read once per call when they are the front
  -- of the live log (where most answers are), else for this search.
  local span, from
  if first and lo >= first and hi < first + SPAN then
    input.front = input.front or redis.call('ZRANGE', key, first, first + SPAN - 1)
    span, from = input.front, first
  else
    span, from = redis.call('ZRANGE', key, lo, hi), lo
  end
  local a, b = lo - from + 1, hi - from + 1
  while a < b do
    local m = math.floor((a + b) / 2)
    local at, _, cum = log_entry(span[m])
    if not at then return nil end
    if cum >= target then b = m else a = m + 1 end
  end
  local found = log_entry(span[a])
  input.target, input.target_at = target, found
  return found
end

local function decide_log(input, limit, period, unit, rate, cost, now)
  local newest, used = input.at or 0, 0
  if input.base then used = input.cum - input.base end
  local skew = math.max(0, newest - now)
  local t = math.max(now, newest)
  local reset = 0
  if used > 0 then reset = newest + period - t end

  if cost > limit then
    return denied(math.max(0, limit - used), reset, -1, skew)
  end
  if used + cost <= limit then
    if cost == 0 then return allowed(limit - used, reset, skew) end
    input.add_at, input.add_cost = t, cost
    return allowed(limit - used - cost, period, skew), input
  end
  -- A member that is not Sluice's on the way: wait until everything has
  -- expired, which certainly makes room.
  local at = first_reaching(input, input.cum + cost - limit) or newest
  return denied(math.max(0, limit - used), reset, at + period - t, skew)
end

-- Totals are exact as doubles below 2^53: past 2^50 (about 10^10 requests
-- at the largest limit without one period of rest), the log is renumbered
-- from 0, once, in O(n).
local function renumber(key)
  local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local _, c, total = log_entry(members[1])
  local base = total - c
  for i = 1, #members, 2 do
    local at, cost, cum = log_entry(members[i])
    redis.call('ZREM', key, members[i])
    redis.call('ZADD', key, members[i + 1], string.format('%d:%d:c%d', at, cost, cum - base))
  end
  return base
end

-- Logs the admission decide made (input.add_at, input.add_cost), drops
-- what has expired, expires the key with it, and updates the call's view.
local function save_log(key, d, input, score, period)
  local t, cost = input.add_at, input.add_cost
  if input.replace then
    redis.call('DEL', key)
    input.replace, input.member, input.at, input.cost, input.cum, input.base = nil
  end
  local merged = input.at == t
  if merged then
    -- The same instant: one entry, as the Rust log keeps it.
    redis.call('ZREM', key, input.member)
    input.cost = input.cost + cost
  else
    -- Dropped: what had expired when the newest entry was logged, which
    -- no clock can count again (decide counts from the newest entry at
    -- the earliest). Not what expires at `t`: a refund may take the new
    -- entry back, and the Rust log keeps the same entries.
    if input.at and input.trimmed ~= input.at then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', input.at - period))
      input.trimmed = input.at
    end
    input.cost = cost
  end
  local cum = (input.cum or 0) + cost
  local old = input.member
  input.at, input.cum = t, cum
  input.member = string.format('%d:%d:c%d', t, input.cost, cum)
  -- The oldest live entry: unchanged, unless there was none (the new one
  -- is) or it was the newest, merged into the new member.
  if not input.base or (merged and input.oldest == old) then
    input.base = input.base or (cum - cost)
    input.oldest = input.member
  end
  redis.call('ZADD', key, t, input.member)
  redis.call('PEXPIRE', key, ttl_ms(d[3]))
  -- A denial's answer kept for the call stays right: the entries it
  -- searched are still there with their totals, and the new one is newer.
  -- The ranks kept do not: the front may have been dropped.
  input.n, input.first, input.front = nil, nil, nil
  if cum > 1125899906842624 then
    local base = renumber(key)
    input.cum, input.base = cum - base, input.base - base
    input.member = string.format('%d:%d:c%d', t, input.cost, input.cum)
    -- Renamed and renumbered: the retry search spans the whole log, and
    -- no answer kept for an old total holds.
    input.oldest, input.target = nil, nil

  end
end

algorithms[5] = {load = load_log, decide = decide_log, save = save_log}
