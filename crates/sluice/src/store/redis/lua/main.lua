-- The entry point: `run(keys, argv)` decides any number of independent
-- groups of checks in one call; each group is decided atomically, all or
-- nothing, and the groups one after the other.
--
-- keys[i]  the state key of check i, in order over all groups (on Redis
--          Cluster all in one slot).
-- argv[1]  the time in microseconds since the Unix epoch, or '' to use
--          Redis TIME once for the whole call (so that servers with skewed
--          clocks agree), or '<' and a deadline in microseconds: Redis
--          TIME, and if it is past the deadline, answer the error LATE and
--          decide nothing (the caller has given up: a call held while Redis
--          was paused must not charge when it resumes).
-- argv[2]  the mode (library.rs `Mode`): 'd' decides, 'p' peeks (what a
--          cost-1 check would be told, nothing written), 'r<at>' refunds
--          the charges that an earlier 'd' call made at time <at>
--          (refund.lua).
-- then, per group: its number of checks n, then one string of 7 packed
--          little-endian doubles per check (one C call unpacks them, where
--          7 tonumber calls cost several times more): algorithm code
--          (library.rs `code`), cost, shadow (0/1), capacity (burst for
--          buckets, limit for windows), period (µs), unit, rate.
--
-- Returns {now, then per check: allowed, remaining, reset_after_us,
-- retry_after_us (-1: never), delay_us, shadow (0/1)}; a refund answers
-- {1, 0, 0, 0, 0, 0} per check. A check that could not be decided answers
-- an error marker instead, {-1, problem, detail, position, 0, 0}: problem
-- 1 is a key holding a Redis type Sluice never writes (detail: 1 list,
-- 2 set, 3 hash, 4 stream, 0 another), problem 2 a failure of the library
-- itself (its text goes to the Redis log); position is the check at fault,
-- counted from 0 in its group (reply.rs names its key).
--
-- Isolation: each group is decided under `pcall`, so an error (one key's
-- value, a script error) fails its own group only, and the other groups
-- of the call are decided. A group reads every key it needs before it
-- writes any (the saves come after every decision), and writes cannot
-- fail once the reads succeeded (a key's type is known by then; Redis
-- refuses a call for lack of memory before it starts, not halfway), so a
-- failed group has written nothing: no check is both charged and answered
-- as failed.
--
-- Why one script: a decision reads the state, decides and writes it back;
-- done over several round trips, two servers could both read the same
-- state and both admit. Inside a script nothing runs in between. For the
-- all-or-nothing rule, a group's checks are all decided first and saved
-- only when every non-shadow check admits. Batching many clients' groups
-- in one call shares its fixed cost (the call, TIME) between them.

-- The numbers of check i (from 0) of a group's packed values.
local function check_at(values, i)
  return struct.unpack('<ddddddd', values, 1 + 56 * i)
end

-- Decides check i of a group on `key`, charging `cost` (nil: the check's
-- own). The one place shadow mode applies: a shadow check's denial is
-- reported allowed, with d[6] = 1, and denies nothing. Returns the
-- decision, and what the algorithm's entry saves when the group admits.
local function decide_check(key, values, i, now, cost)
  local code, own, shadow, capacity, period, unit, rate = check_at(values, i)
  local entry = algorithms[code]
  -- Carried over to this quota first, if it changed (carry.lua).
  local input = bring(key, entry, code, capacity, period, unit, rate, now, true)
  local d, state, score = entry.decide(input, capacity, period, unit, rate, cost or own, now)
  if d[1] == 0 and shadow == 1 then d[1], d[4], d[6] = 1, 0, 1 end
  return d, entry, state, score, period
end

-- How many values of the call's reply are filled (the reply is made
-- presized for one check: a table grown one value at a time is resized
-- three times on the way to 7).
local filled = 1

-- Appends decision `d` to the reply.
local function reply_with(reply, d)
  local n = filled
  reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4], reply[n + 5], reply[n + 6] =
    d[1], d[2], d[3], d[4], d[5], d[6]
  filled = n + 6
end

-- The check of its group being decided, for the error marker.
local deciding = 0

-- The codes of the Redis types an error marker names.
local TYPE_CODES = {list = 1, set = 2, hash = 3, stream = 4}

-- Appends an error marker (see the top of this file) for each of the n
-- checks of a group that failed with `err` at its check `position`.
local function reply_failed(reply, n, err, position)
  local problem, detail = 2, 0
  if type(err) == 'table' then err = err.err end
  local refused = type(err) == 'string' and string.match(err, '^sluice%-refused:(%a+)$')
  if refused then
    problem, detail = 1, TYPE_CODES[refused] or 0
  else
    redis.log(redis.LOG_WARNING, 'sluice: a check failed: ' .. tostring(err))
  end
  local marker = {-1, problem, detail, position, 0, 0}
  for _ = 1, n do reply_with(reply, marker) end
end

-- Decides the group of n checks whose keys start at keys[k]. Each check
-- is decided and its answer appended; its state is saved as soon as the
-- group is known to admit: at once for the last check (so a group of one
-- holds nothing back), at the end for the others. When an enforced check
-- denies, nothing is saved, and the checks that admitted report what
-- stands instead.
local function decide_group(keys, values, k, n, now, reply)
  local held, all = nil, true
  for i = 0, n - 1 do
    local key = keys[k + i]
    deciding = i
    local d, entry, state, score, period = decide_check(key, values, i, now)
    if d[1] == 0 then all = false end
    if state and all then
      if i == n - 1 then
        entry.save(key, d, state, score, period)
      else
        held = held or {}
        held[#held + 1] = {entry, key, d, state, score, period}
      end
    end
    reply_with(reply, d)
  end
  if held and all then
    for _, h in ipairs(held) do h[1].save(h[2], h[3], h[4], h[5], h[6]) end
  elseif not all then
    -- Nothing is charged: the checks that admitted report what stands.
    local base = filled - 6 * n
    for i = 0, n - 1 do
      local at = base + 6 * i
      if reply[at + 1] == 1 and reply[at + 6] == 0 then
        local d = decide_check(keys[k + i], values, i, now, 0)
        reply[at + 2], reply[at + 3], reply[at + 4], reply[at + 5] = d[2], d[3], d[4], d[5]
      end
    end
  end
end

-- What the check would be told at its cost, nothing kept (a cost of 0:
-- the key as it stands); algorithm::peek.
local function peek_check(key, values, i, now)
  local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
  local entry = algorithms[code]
  local input = bring(key, entry, code, capacity, period, unit, rate, now, false)
  return entry.decide(input, capacity, period, unit, rate, cost, now)
end

local REFUNDED = {1, 0, 0, 0, 0, 0}

-- Gives back check i's charge made at `at` (refund.lua).
local function refund_check(key, values, i, now, at)
  local code, cost, shadow, capacity, period, unit, rate = check_at(values, i)
  -- Only a state saved under this quota holds the charge in its units.
  with_header(code, capacity, period, unit, rate)
  local kind = redis.call('TYPE', key).ok
  if code == 5 then
    if kind ~= 'zset' then return REFUNDED end
  elseif kind ~= 'string' or string.sub(redis.call('GET', key), 1, HEADER_LEN) ~= header then
    return REFUNDED
  end
  algorithms[code].refund(key, capacity, period, unit, rate, cost, at, now)
  return REFUNDED
end

local function run(keys, argv)
  local now
  if argv[1] == '' or string.byte(argv[1]) == 60 then -- '' or '<deadline'
    local time = redis.call('TIME')
    now = tonumber(time[1]) * 1000000 + tonumber(time[2])
    ttl_slack_ms = 0
    if argv[1] ~= '' and now > tonumber(string.sub(argv[1], 2)) then
      return redis.error_reply('LATE the call reached Redis after its deadline')
    end
  else
    now = tonumber(argv[1])
    ttl_slack_ms = 60000
  end
  local mode, at = argv[2], nil
  if mode ~= 'd' and mode ~= 'p' then
    at = tonumber(string.match(mode, '^r(%d+)$'))
    if not at then return redis.error_reply('sluice: unknown mode ' .. mode) end
  end
  if #keys == 0 then return {now} end
  start_call(keys)
  local reply, k = {now, 0, 0, 0, 0, 0, 0}, 1
  filled = 1
  for a = 3, #argv - 1, 2 do
    local n, values = tonumber(argv[a]), argv[a + 1]
    if mode == 'd' then
      local before = filled
      local ok, err = pcall(decide_group, keys, values, k, n, now, reply)
      if not ok then
        filled = before
        reply_failed(reply, n, err, deciding)
      end
    else
      -- Peeks and refunds are per check: a check's error is its own.
      local each = peek_check
      if mode ~= 'p' then each = refund_check end
      for i = 0, n - 1 do
        local ok, d = pcall(each, keys[k + i], values, i, now, at)
        if ok then reply_with(reply, d) else reply_failed(reply, 1, d, i) end
      end
    end
    k = k + n
  end
  flush()
  return reply
end
