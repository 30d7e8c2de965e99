-- Sliding window counter (algorithm 6). State: the string
-- "window:current:previous". Mirrors algorithm/sliding_window_counter.rs:
-- admitted iff previous * (period - elapsed) + (current + cost) * period
-- <= limit * period, every product at most 2^51 (quota.rs checks
-- limit * period <= 2^50).
algorithms[6] = function(key, q, cost, now)
  local period, limit = q.period, q.capacity
  local window = floor_div(now, period)
  local current, previous = 0, 0
  local w, c, p = numbers(redis.call('GET', key))
  if w and p then
    if w >= window then
      window, current, previous = w, c, p
    elseif w + 1 == window then
      previous = c
    end
  end
  local start = window * period
  local skew = math.max(0, start - now)
  local t = math.max(now, start)
  local elapsed = t - start
  local weighted = previous * (period - elapsed)
  local function fits(n, add) return weighted + (n + add) * period <= limit * period end
  local function remaining(n) return math.max(0, limit - (n + ceil_div(weighted, period))) end
  local function reset(n)
    if n > 0 then return start + 2 * period - t end
    if previous > 0 then return start + period - t end
    return 0
  end
  -- The earliest elapsed time at which weight * (period - elapsed) <= room * period.
  local function earliest(weight, room)
    if weight == 0 then return 0 end
    return math.max(0, period - (floor_div(room * period, weight)))
  end

  if cost > limit then
    return delayed_by(denied(remaining(current), reset(current), -1), skew), nil
  end
  if fits(current, cost) then
    local after = current + cost
    local d = delayed_by(allowed(remaining(after), reset(after)), skew)
    if cost == 0 then return d, nil end
    return d, function()
      set_for(key, string.format('%d:%d:%d', window, after, previous), d[3])
    end
  end
  local retry
  if current + cost <= limit then
    retry = earliest(previous, limit - current - cost)
  else
    retry = period + earliest(current, limit - cost)
  end
  retry = retry + start - t
  return delayed_by(denied(remaining(current), reset(current), retry), skew), nil
end
