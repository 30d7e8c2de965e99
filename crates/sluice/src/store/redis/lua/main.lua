-- The entry point: `run(keys, argv)` decides any number of independent
-- groups of checks in one call; each group is decided atomically, all or
-- nothing, and the groups one after the other.
--
-- keys[i]  the state key of check i, in order over all groups (on Redis
--          Cluster all in one slot).
-- argv[1]  the time in microseconds since the Unix epoch, or '' to use
--          Redis TIME once for the whole call (so that servers with skewed
--          clocks agree).
-- argv[2]  the mode: 'd' decides, 'p' peeks (what a cost-1 check would be
--          told, nothing written), 'r<at>' refunds the charges that an
--          earlier 'd' call made at time <at>.
-- then, per group: its number of checks n, then one string of 7 packed
--          little-endian doubles per check (one C call unpacks them, where
--          7 tonumber calls cost several times more): algorithm code
--          (1 token_bucket, 2 gcra, 3 leaky_bucket, 4 fixed_window,
--          5 sliding_window_log, 6 sliding_window_counter), cost, shadow
--          (0/1), capacity (burst for buckets, limit for windows), period
--          (µs), unit, rate.
--
-- Returns {now, then per check: allowed, remaining, reset_after_us,
-- retry_after_us (-1: never), delay_us, shadow (0/1)}.
--
-- Why one script: a decision reads the state, decides and writes it back;
-- done over several round trips, two servers could both read the same
-- state and both admit. Inside a script nothing runs in between. For the
-- all-or-nothing rule, a group's checks are all decided first and written
-- only when every non-shadow check admits. Batching many clients' groups
-- in one call shares its fixed cost (the call, TIME) between them.

-- The call's view of its keys: each key's value as last read or decided
-- (false: missing), and the keys to write at the end with the reset of
-- their last decision. `run` makes them afresh on every call.
local values_of, resets_of, dirty = {}, {}, {}

-- Decides one check, reading its key once per call.
local function decide(code, key, capacity, period, unit, rate, cost, now)
  if code == 5 then
    return algorithms[5](key, capacity, period, unit, rate, cost, now)
  end
  local raw = values_of[key]
  if raw == nil then
    raw = redis.call('GET', key)
    values_of[key] = raw
  end
  return algorithms[code](raw or nil, capacity, period, unit, rate, cost, now)
end

-- Keeps what an admitting decision `d` of algorithm `code` changed: the
-- sliding log at once, other keys when the call ends.
local function write(code, key, d, state, score, period)
  if code == 5 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', score - period))
    redis.call('ZADD', key, score, state)
    redis.call('PEXPIRE', key, ttl_ms(d[3]))
    return
  end
  if not resets_of[key] then dirty[#dirty + 1] = key end
  values_of[key], resets_of[key] = state, d[3]
end

-- Writes every changed key once, to expire when it is back to untouched.
local function flush()
  for _, key in ipairs(dirty) do
    redis.call('SET', key, values_of[key], 'PX', ttl_ms(resets_of[key]))
  end
end

-- Appends decision `d` (shadow: 0/1) to the reply.
local function reply_with(reply, d, shadow)
  local n = #reply
  reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4], reply[n + 5], reply[n + 6] =
    d[1], d[2], d[3], d[4], d[5], shadow
end

-- The 7 values of check i (from 0) of a group's packed values.
local function check_at(values, i)
  local code, cost, shadow, capacity, period, unit, rate =
    struct.unpack('<ddddddd', values, 1 + 56 * i)
  return code, cost, shadow == 1, capacity, period, unit, rate
end

-- Decides the group of n checks whose keys start at keys[k].
local function decide_group(keys, values, k, n, now, reply)
  if n == 1 then
    local code, cost, shadow, capacity, period, unit, rate = check_at(values, 0)
    local d, state, score = decide(code, keys[k], capacity, period, unit, rate, cost, now)
    if d[1] == 1 then
      if state then write(code, keys[k], d, state, score, period) end
      reply_with(reply, d, 0)
    elseif shadow then
      d[1], d[4] = 1, 0
      reply_with(reply, d, 1)
    else
      reply_with(reply, d, 0)
    end
    return
  end
  local decisions, states, scores, all = {}, {}, {}, true
  for i = 0, n - 1 do
    local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
    local d, state, score = decide(code, keys[k + i], capacity, period, unit, rate, cost, now)
    if d[1] == 0 then
      if shadow then
        d[1], d[4], d[6] = 1, 0, 1
      else
        all = false
      end
    end
    decisions[i], states[i], scores[i] = d, state, score
  end
  for i = 0, n - 1 do
    local d = decisions[i]
    local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
    if all then
      if states[i] then write(code, keys[k + i], d, states[i], scores[i], period) end
    elseif d[1] == 1 and d[6] ~= 1 then
      -- Nothing is charged: report what stands.
      d = decide(code, keys[k + i], capacity, period, unit, rate, 0, now)
    end
    reply_with(reply, d, d[6] or 0)
  end
end

-- What a check of cost 1 would be told, with the standing state.
local function peek_group(keys, values, k, n, now, reply)
  for i = 0, n - 1 do
    local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
    local key = keys[k + i]
    local d = decide(code, key, capacity, period, unit, rate, 1, now)
    if d[1] == 1 then
      local standing = decide(code, key, capacity, period, unit, rate, 0, now)
      standing[5] = d[5]
      d = standing
    end
    reply_with(reply, d, 0)
  end
end

local function refund_group(keys, values, k, n, now, at, reply)
  for i = 0, n - 1 do
    local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
    refunds[code](keys[k + i], capacity, period, unit, rate, cost, at, math.max(now, at))
    reply_with(reply, {1, 0, 0, 0, 0}, 0)
  end
end

-- One check alone, the most common call at low load: no cache, no group.
local function decide_one(key, values, now)
  local code, cost, shadow, capacity, period, unit, rate = check_at(values, 0)
  local d, state, score
  if code == 5 then
    d, state, score = algorithms[5](key, capacity, period, unit, rate, cost, now)
    if state then write(code, key, d, state, score, period) end
  else
    d, state = algorithms[code](redis.call('GET', key) or nil, capacity, period, unit, rate, cost, now)
    if state then redis.call('SET', key, state, 'PX', ttl_ms(d[3])) end
  end
  if d[1] == 0 and shadow then return {now, 1, d[2], d[3], 0, d[5], 1} end
  return {now, d[1], d[2], d[3], d[4], d[5], 0}
end

local function run(keys, argv)
  local now
  if argv[1] == '' then
    local time = redis.call('TIME')
    now = tonumber(time[1]) * 1000000 + tonumber(time[2])
    ttl_slack_ms = 0
  else
    now = tonumber(argv[1])
    ttl_slack_ms = 60000
  end
  local mode = argv[2]
  if mode == 'd' and #keys == 1 then return decide_one(keys[1], argv[4], now) end
  values_of, resets_of, dirty = {}, {}, {}
  local reply = {now}
  local k = 1
  for a = 3, #argv - 1, 2 do
    local n, values = tonumber(argv[a]), argv[a + 1]
    if mode == 'd' then
      decide_group(keys, values, k, n, now, reply)
    elseif mode == 'p' then
      peek_group(keys, values, k, n, now, reply)
    else
      refund_group(keys, values, k, n, now, tonumber(string.sub(mode, 2)), reply)
    end
    k = k + n
  end
  flush()
  return reply
end
