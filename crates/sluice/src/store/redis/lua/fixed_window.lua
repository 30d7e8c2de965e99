-- Fixed window (algorithm 4). State: window and count (packed), windows
-- [k * period, (k + 1) * period) from the Unix epoch. Mirrors
-- algorithm/fixed_window.rs.
algorithms[4] = packed(function(raw, limit, period, unit, rate, cost, now)
  local window = floor_div(now, period)
  local count = 0
  local w, c = unpack2(raw)
  -- A stored window ahead of ours means our clock is behind: keep counting in it.
  if w and w >= window then window, count = w, c end
  local start = window * period
  local skew = math.max(0, start - now)
  local ends_after = start + period - math.max(now, start)
  -- Until the window ends while it counts anything, else already untouched.
  local reset = 0
  if count > 0 then reset = ends_after end
  if cost > limit then
    return denied(math.max(0, limit - count), reset, -1, skew)
  end
  if count + cost <= limit then
    local after = count + cost
    if after > 0 then reset = ends_after end
    local d = allowed(limit - after, reset, skew)
    if cost == 0 then return d end
    return d, pack2(window, after)
  end
  return denied(math.max(0, limit - count), reset, ends_after, skew)
end)
