-- GCRA (algorithm 2). State: at_us and frac (packed), the theoretical
-- arrival time at_us + frac / rate µs. Mirrors algorithm/gcra.rs.
--
-- Returns the decision, the new state, and the backlog before this request
-- in scaled time units (the leaky bucket turns it into a delay).
local function gcra(raw, burst, unit, rate, cost, now)
  local tolerance = burst * unit
  local backlog = 0
  local at, frac = unpack2(raw)
  if at and at >= now then
    -- (at - now) * rate <= tolerance for every state this script wrote;
    -- a larger (foreign) value is clamped, as in Rust.
    backlog = (at - now) * rate + frac
    if backlog > tolerance then backlog = tolerance end
  end
  if cost > burst then
    return denied(floor_div(tolerance - backlog, unit), ceil_div(backlog, rate), -1, 0), nil, backlog
  end
  local after = backlog + cost * unit
  if after <= tolerance then
    local d = allowed(floor_div(tolerance - after, unit), ceil_div(after, rate), 0)
    if cost == 0 then return d, nil, backlog end
    local whole, rest = floor_div(after, rate)
    return d, pack2(now + whole, rest), backlog
  end
  return denied(floor_div(tolerance - backlog, unit), ceil_div(backlog, rate),
    ceil_div(after - tolerance, rate), 0), nil, backlog
end

algorithms[2] = packed(function(raw, burst, period, unit, rate, cost, now)
  local d, state = gcra(raw, burst, unit, rate, cost, now)
  return d, state
end)
