-- Fixed window (algorithm 4). State: the string "window:count", windows
-- [k * period, (k + 1) * period) from the Unix epoch. Mirrors
-- algorithm/fixed_window.rs.
algorithms[4] = function(key, q, cost, now)
  local period, limit = q.period, q.capacity
  local window = floor_div(now, period)
  local count = 0
  local w, c = numbers(redis.call('GET', key))
  -- A stored window ahead of ours means our clock is behind: keep counting in it.
  if w and w >= window then window, count = w, c end
  local start = window * period
  local skew = math.max(0, start - now)
  local t = math.max(now, start)
  local ends_after = start + period - t
  local function reset(n) if n > 0 then return ends_after end return 0 end

  if cost > limit then
    return delayed_by(denied(math.max(0, limit - count), reset(count), -1), skew), nil
  end
  if count + cost <= limit then
    local after = count + cost
    local d = delayed_by(allowed(limit - after, reset(after)), skew)
    if cost == 0 then return d, nil end
    return d, function()
      set_for(key, string.format('%d:%d', window, after), d[3])
    end
  end
  return delayed_by(denied(math.max(0, limit - count), reset(count), ends_after), skew), nil
end
