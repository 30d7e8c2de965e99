-- The Lua script of the article Sluice started from, copied verbatim (only
-- this header added) so that bench/run measures it in the same run as
-- Sluice's own script: "Building a Robust and Scalable API Rate Limiter with
-- Redis and Lua" (2023-10-27), section "Practical Implementation", step 3
-- "Write the Lua Script" (examples/article_api.rs is the same API on Sluice).
--
-- Called as EVALSHA <sha> 1 <key> <rate_limit> <time_window_s> <bucket_size>.
-- Note what it does, as written: two keys per client (KEYS[1] and
-- KEYS[1] .. ':last_refill', the second not declared in KEYS, so it is not
-- Redis Cluster safe), time in whole seconds, and two SETs on every call,
-- denials included.

-- Define rate limiting parameters
local key = KEYS[1]        -- Unique key for the user/API endpoint
local rate_limit = tonumber(ARGV[1])   -- Maximum requests per time window
local time_window = tonumber(ARGV[2])   -- Time window in seconds
local bucket_size = tonumber(ARGV[3])   -- Maximum bucket size (initial tokens)

-- Get current bucket data
local current_tokens = redis.call("GET", key)
if not current_tokens then
    current_tokens = bucket_size -- Initialize the bucket with the maximum tokens
end

-- Calculate the number of tokens to add based on time elapsed
local last_refill = redis.call("GET", key .. ":last_refill")
if not last_refill then
    last_refill = 0
end

local now = tonumber(redis.call("TIME")[1])
local time_elapsed = now - tonumber(last_refill)

-- Refill tokens (up to bucket size)
local tokens_to_add = math.floor(time_elapsed * (bucket_size / time_window))
current_tokens = math.min(bucket_size, tonumber(current_tokens) + tokens_to_add)


-- Check if enough tokens are available for the request
if current_tokens > 0 then
    -- Consume a token
    local new_tokens = tonumber(current_tokens) - 1
    redis.call("SET", key, new_tokens, "EX", time_window)
    redis.call("SET", key .. ":last_refill", now, "EX", time_window) -- Set last refill time

    return 1 -- Allow the request
else
    -- Request is rate limited
    redis.call("SET", key, current_tokens, "EX", time_window)  -- Update tokens even if limited
    redis.call("SET", key .. ":last_refill", now, "EX", time_window) -- Update last refill time
    return 0 -- Deny the request
end
