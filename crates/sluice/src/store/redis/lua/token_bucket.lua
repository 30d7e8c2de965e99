-- Token bucket (algorithm 1). State: level and at_us (packed), the bucket's
-- level in scaled units measured at at_us. Mirrors algorithm/token_bucket.rs.
algorithms[1] = packed(function(raw, burst, period, unit, rate, cost, now)
  local capacity = burst * unit
  local t, level = now, capacity
  local stored, at = unpack2(raw)
  if stored then
    if at > now then t = at end
    -- A sum beyond 2^53 is far above the capacity: its rounding is harmless.
    level = stored + (t - at) * rate
    if level > capacity then level = capacity end
  end
  local skew = t - now
  if cost > burst then
    return denied(floor_div(level, unit), ceil_div(capacity - level, rate), -1, skew)
  end
  local need = cost * unit
  if level >= need then
    local after = level - need
    local d = allowed(floor_div(after, unit), ceil_div(capacity - after, rate), skew)
    if cost == 0 then return d end
    return d, pack2(after, t)
  end
  return denied(floor_div(level, unit), ceil_div(capacity - level, rate),
    ceil_div(need - level, rate), skew)
end)
