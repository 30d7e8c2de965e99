-- Sliding window counter (algorithm 6). State: window,
-- current and previous (packed). Mirrors algorithm/sliding_window_counter.rs:
-- admitted iff previous * (period - elapsed) + (current + cost) * period
-- <= limit * period, every product at most 2^51 (quota.rs checks
-- limit * period <= 2^50).
-- Until the key is untouched: the next window's end while the current
-- window counts, this one's end while only the previous one does.
local function counter_reset(n, previous, start, period, t)
  if n > 0 then return start + 2 * period - t end
  if previous > 0 then return start + period - t end
  return 0
end

algorithms[6] = packed(function(raw, limit, period, unit, rate, cost, now)
  local window = floor_div(now, period)
  local current, previous = 0, 0
  local w, c, p = unpack3(raw)
  if w then
    if w >= window then
      window, current, previous = w, c, p
    elseif w + 1 == window then
      previous = c
    end
  end
  local start = window * period
  local skew = math.max(0, start - now)
  local t = math.max(now, start)
  local weighted = previous * (period - (t - start))
  local weighted_units = ceil_div(weighted, period)
  local reset = counter_reset(current, previous, start, period, t)

  if cost > limit then
    return denied(math.max(0, limit - (current + weighted_units)), reset, -1, skew)
  end
  if weighted + (current + cost) * period <= limit * period then
    local after = current + cost
    local d = allowed(math.max(0, limit - (after + weighted_units)), counter_reset(after, previous, start, period, t), skew)
    if cost == 0 then return d end
    return d, pack3(window, after, previous)
  end
  -- The earliest elapsed time at which weight * (period - elapsed) <= room * period.
  local retry
  if current + cost <= limit then
    retry = 0
    if previous > 0 then
      retry = math.max(0, period - floor_div((limit - current - cost) * period, previous))
    end
  else
    retry = period + math.max(0, period - floor_div((limit - cost) * period, current))
  end
  return denied(math.max(0, limit - (current + weighted_units)), reset,
    retry + start - t, skew)
end)
