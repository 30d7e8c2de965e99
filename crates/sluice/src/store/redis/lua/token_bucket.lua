-- Token bucket (algorithm 1). State: the string "level:at_us", the bucket's
-- level in scaled units measured at at_us. Mirrors algorithm/token_bucket.rs.
algorithms[1] = function(key, q, cost, now)
  local capacity = q.capacity * q.unit
  local rate = q.rate
  local t, level = now, capacity
  local stored, at = numbers(redis.call('GET', key))
  if stored then
    if at > now then t = at end
    -- A sum beyond 2^53 is far above the capacity: its rounding is harmless.
    level = stored + (t - at) * rate
    if level > capacity then level = capacity end
  end
  local skew = t - now
  local function remaining(l) return (floor_div(l, q.unit)) end
  local function full_after(l) return ceil_div(capacity - l, rate) end

  if cost > q.capacity then
    return delayed_by(denied(remaining(level), full_after(level), -1), skew), nil
  end
  local need = cost * q.unit
  if level >= need then
    local after = level - need
    local d = delayed_by(allowed(remaining(after), full_after(after)), skew)
    if cost == 0 then return d, nil end
    return d, function()
      set_for(key, string.format('%d:%d', after, t), d[3])
    end
  end
  local retry = ceil_div(need - level, rate)
  return delayed_by(denied(remaining(level), full_after(level), retry), skew), nil
end
