-- GCRA (algorithm 2). State: at_us and frac (packed), the theoretical
-- arrival time at_us + frac / rate µs. Mirrors algorithm/gcra.rs.
--
-- Returns the decision, the new state, and the time until the TAT before
-- this request in whole µs rounded up (the leaky bucket's delay).
local function gcra(raw, burst, unit, rate, cost, now)
  local tolerance = burst * unit
  -- The TAT is w µs and f / rate ahead of now: ahead = w * rate + f in
  -- scaled units. Within the tolerance after every admission; a clock
  -- behind the TAT's writer finds it further ahead, maybe beyond 2^53, so
  -- `ahead` is only compared with the tolerance, and durations are counted
  -- in whole µs (until_tat) to stay exact.
  local w, f = 0, 0
  local at, frac = unpack2(raw)
  if at and at >= now then w, f = at - now, frac end
  -- ceil((ahead + extra) / rate): µs until the TAT moved by `extra`.
  local function until_tat(extra) return w + ceil_div(f + extra, rate) end
  -- What fits is decided on the backlog clamped to the tolerance, as in Rust.
  local backlog = w * rate + f
  if backlog > tolerance then backlog = tolerance end
  local wait = until_tat(0)
  if cost > burst then
    return denied(floor_div(tolerance - backlog, unit), wait, -1, 0), nil, wait
  end
  local after = backlog + cost * unit
  if after <= tolerance then
    local d = allowed(floor_div(tolerance - after, unit), until_tat(cost * unit), 0)
    if cost == 0 then return d, nil, wait end
    local whole, rest = floor_div(after, rate)
    return d, pack2(now + whole, rest), wait
  end
  return denied(floor_div(tolerance - backlog, unit), wait,
    until_tat(cost * unit - tolerance), 0), nil, wait
end

algorithms[2] = packed(function(raw, burst, period, unit, rate, cost, now)
  local d, state = gcra(raw, burst, unit, rate, cost, now)
  return d, state
end)
