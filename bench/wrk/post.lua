-- wrk script for bench/run: POSTs JSON bodies naming keys drawn at random
-- from a fixed set, optionally pipelined.
--
-- Environment:
--   WRK_PATH      the path, e.g. /v1/check
--   WRK_BODY      the body, with {key} where the key goes, e.g.
--                 {"policy":"bench","key":"{key}"}
--   WRK_KEYS      how many distinct keys (user-1 … user-N); default 10000
--   WRK_PIPELINE  requests written at once per connection; default 1
--
-- Every request is formatted once, in `init`, in a random order per thread,
-- so that wrk spends as little CPU as it can per request: the server under
-- test shares the machine's cores with it.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

local batches, next_batch

function init(args)
  local path = os.getenv("WRK_PATH") or "/v1/check"
  local body = os.getenv("WRK_BODY") or '{"policy":"bench","key":"{key}"}'
  local keys = tonumber(os.getenv("WRK_KEYS") or "10000")
  local pipeline = tonumber(os.getenv("WRK_PIPELINE") or "1")
  math.randomseed(1000 + (thread_id or 0))
  local order = {}
  for i = 1, keys do order[i] = i end
  for i = keys, 2, -1 do
    local j = math.random(i)
    order[i], order[j] = order[j], order[i]
  end
  local headers = {["Content-Type"] = "application/json"}
  local requests = {}
  for i = 1, keys do
    local b = string.gsub(body, "{key}", "user-" .. order[i])
    requests[i] = wrk.format("POST", path, headers, b)
  end
  -- Batches of `pipeline` requests, cycling through the keys.
  batches = {}
  local count = math.max(1, math.floor(keys / pipeline))
  local r = 1
  for b = 1, count do
    local parts = {}
    for p = 1, pipeline do
      parts[p] = requests[r]
      r = r % keys + 1
    end
    batches[b] = table.concat(parts)
  end
  next_batch = 0
end

function request()
  next_batch = next_batch % #batches + 1
  return batches[next_batch]
end
