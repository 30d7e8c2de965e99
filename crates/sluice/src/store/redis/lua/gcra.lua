-- GCRA (algorithm 2). State: the string "at_us:frac", the theoretical
-- arrival time at_us + frac / rate µs. Mirrors algorithm/gcra.rs.
--
-- Returns the decision, the commit, and the backlog before this request in
-- scaled time units (the leaky bucket turns it into a delay).
local function gcra(key, q, cost, now)
  local rate = q.rate
  local tolerance = q.capacity * q.unit
  local backlog = 0
  local at, frac = numbers(redis.call('GET', key))
  if at and at >= now then
    -- (at - now) * rate <= tolerance for every state this script wrote;
    -- a larger (foreign) value is clamped, as in Rust.
    backlog = (at - now) * rate + frac
    if backlog > tolerance then backlog = tolerance end
  end
  local function remaining(b) return (floor_div(tolerance - b, q.unit)) end
  local function empty_after(b) return ceil_div(b, rate) end

  if cost > q.capacity then
    return denied(remaining(backlog), empty_after(backlog), -1), nil, backlog
  end
  local need = cost * q.unit
  if backlog + need <= tolerance then
    local after = backlog + need
    local d = allowed(remaining(after), empty_after(after))
    if cost == 0 then return d, nil, backlog end
    return d, function()
      local whole, rest = floor_div(after, rate)
      set_for(key, string.format('%d:%d', now + whole, rest), d[3])
    end, backlog
  end
  local retry = ceil_div(backlog + need - tolerance, rate)
  return denied(remaining(backlog), empty_after(backlog), retry), nil, backlog
end

algorithms[2] = function(key, q, cost, now)
  local d, commit = gcra(key, q, cost, now)
  return d, commit
end
