-- Leaky bucket, queue form (algorithm 3). State: as GCRA's, the time at
-- which the queue will have drained. Mirrors algorithm/leaky_bucket.rs: an
-- admitted request waits for the backlog ahead of it to drain.
algorithms[3] = packed(function(raw, burst, period, unit, rate, cost, now)
  local d, state, wait = gcra(raw, burst, unit, rate, cost, now)
  if d[1] == 1 then d[5] = wait end
  return d, state
end)
