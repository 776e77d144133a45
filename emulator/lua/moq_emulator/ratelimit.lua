-- Fixed-window request quota per credential.
--
-- A credential's window opens with its first counted request and lasts
-- `window` seconds. Within it, `quota` requests are served. Later ones
-- get 429 until the window closes. The live API allows 1200 requests per
-- five minutes per user, which is the default here.

local clock = require "moq_emulator.clock"

local ratelimit = {}

local quota = 1200
local window = 300

-- Open windows: `buckets[identity] = { start = seconds, count = n }`.
local buckets = {}

--- Sets the quota (requests) and the window (seconds).
function ratelimit.configure(new_quota, new_window)
  quota, window = new_quota, new_window
end

--- Closes every window.
function ratelimit.reset()
  buckets = {}
end

-- Returns the open window of an identity, or nil when it has closed.
local function open_bucket(identity, now)
  local bucket = identity and buckets[identity]
  if bucket and now < bucket.start + window then
    return bucket
  end
  return nil
end

-- Returns the state of a window as headers, and the whole seconds left.
local function headers_for(bucket, now)
  local used, seconds_left = 0, window
  if bucket then
    used = bucket.count
    seconds_left = math.max(1, math.ceil(bucket.start + window - now))
  end
  return {
    ["Ratelimit"] = string.format('"default";r=%d;t=%d',
      math.max(0, quota - used), seconds_left),
    ["Ratelimit-Policy"] = string.format('"default";q=%d;w=%d',
      quota, window),
  }, seconds_left
end

--- Returns the rate-limit headers of an identity without counting a
-- request. A nil identity shows a full quota.
function ratelimit.peek(identity)
  local now = clock.seconds()
  return (headers_for(open_bucket(identity, now), now))
end

--- Counts a request of an identity.
-- Returns whether it is within the quota, the rate-limit headers, and the
-- whole seconds until the window closes (the Retry-After value).
function ratelimit.consume(identity)
  local now = clock.seconds()
  local bucket = open_bucket(identity, now)
  if not bucket then
    bucket = { start = now, count = 0 }
    buckets[identity] = bucket
  end
  if bucket.count >= quota then
    local headers, seconds_left = headers_for(bucket, now)
    return false, headers, seconds_left
  end
  bucket.count = bucket.count + 1
  local headers, seconds_left = headers_for(bucket, now)
  return true, headers, seconds_left
end

return ratelimit
