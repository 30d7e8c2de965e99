-- The entry point. One call decides any number of checks, atomically.
--
-- KEYS[i]  the state key of check i (all in one slot on Redis Cluster).
-- ARGV[1]  the time in microseconds since the Unix epoch, or '' to use
--          Redis TIME (so that servers with skewed clocks agree).
-- ARGV[2]  the mode: 'd' decides all or nothing, 'p' peeks (what a cost-1
--          check would be told, nothing written), 'r<at>' refunds the
--          charges that an earlier 'd' call made at time <at>.
-- ARGV[3 + 7(i-1) ...]  check i: algorithm code (1 token_bucket, 2 gcra,
--          3 leaky_bucket, 4 fixed_window, 5 sliding_window_log,
--          6 sliding_window_counter), cost, shadow (0/1), capacity (burst for
--          buckets, limit for windows), period (µs), unit, rate.
--
-- Returns {now, then per check: allowed, remaining, reset_after_us,
-- retry_after_us (-1: never), delay_us, shadow (0/1)}.
--
-- Why one script: the decision reads the state, decides and writes it back;
-- done over several round trips, two servers could both read the same
-- state and both admit. Inside a script nothing runs in between. For the
-- all-or-nothing rule, every check is decided first and written only when
-- every non-shadow check admits.

local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
else
  now = tonumber(ARGV[1])
  ttl_slack_ms = 60000
end
local mode = ARGV[2]

local checks = {}
for i = 1, #KEYS do
  local b = 3 + 7 * (i - 1)
  checks[i] = {
    algorithm = tonumber(ARGV[b]), cost = tonumber(ARGV[b + 1]), shadow = ARGV[b + 2] == '1',
    q = {capacity = tonumber(ARGV[b + 3]), period = tonumber(ARGV[b + 4]),
         unit = tonumber(ARGV[b + 5]), rate = tonumber(ARGV[b + 6])},
  }
end

local function decide(i, cost)
  local c = checks[i]
  return algorithms[c.algorithm](KEYS[i], c.q, cost, now)
end

local results = {}
if string.sub(mode, 1, 1) == 'r' then
  local at = tonumber(string.sub(mode, 2))
  for i = 1, #KEYS do
    local c = checks[i]
    refunds[c.algorithm](KEYS[i], c.q, c.cost, at, math.max(now, at))
    results[i] = {1, 0, 0, 0, 0, 0}
  end
elseif mode == 'p' then
  for i = 1, #KEYS do
    local d = decide(i, 1)
    if d[1] == 1 then
      local standing = decide(i, 0)
      standing[5] = d[5]
      d = standing
    end
    results[i] = d
  end
else
  local commits, all = {}, true
  for i = 1, #KEYS do
    local d, commit = decide(i, checks[i].cost)
    if d[1] == 0 then
      if checks[i].shadow then
        d = {1, d[2], d[3], 0, d[5], 1}
      else
        all = false
      end
    end
    results[i], commits[i] = d, commit
  end
  for i = 1, #KEYS do
    if all then
      if commits[i] then commits[i]() end
    elseif results[i][1] == 1 and results[i][6] ~= 1 then
      -- Nothing is charged: report what stands.
      results[i] = decide(i, 0)
    end
  end
end

local reply = {now}
for i = 1, #KEYS do
  local d = results[i]
  for j = 1, 5 do reply[#reply + 1] = d[j] end
  reply[#reply + 1] = d[6] or 0
end
return reply
