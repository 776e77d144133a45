--- Retry policy, backoff, `Retry-After` and `Ratelimit` header parsing.
--
-- Pure functions: the client feeds them responses and clock readings.
-- @module cloudflare.policy

local M = {}

--- First backoff delay in seconds, doubled per attempt up to the max.
M.INITIAL_BACKOFF = 0.5
M.MAX_BACKOFF = 8

local MONTHS = {
  Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
  Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12,
}

-- Days since 1970-01-01 of a proleptic Gregorian date.
local floor = math.floor

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor((y >= 0 and y or y - 399) / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
M.days_from_civil = days_from_civil

--- Parse an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`) to epoch seconds.
function M.parse_http_date(value)
  local d, mon, y, h, mi, s = value:match(
    "^%a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then
    return nil
  end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

--- Return the wait a response requests, in seconds, or nil when it
-- requests none or the value cannot be used (unparseable or in the past).
-- @tparam table headers lower-cased response headers
-- @tparam number now_epoch the current time, epoch seconds
function M.retry_after(headers, now_epoch)
  local ms = headers["retry-after-ms"]
  if ms and ms:match("^%s*%d+%.?%d*%s*$") then
    local seconds = tonumber(ms) / 1000
    if seconds > 0 then
      return seconds
    end
  end
  local value = headers["retry-after"]
  if not value then
    return nil
  end
  if value:match("^%s*%d+%s*$") then
    local seconds = tonumber(value)
    return seconds > 0 and seconds or nil
  end
  local at = M.parse_http_date(value)
  if at and at > now_epoch then
    return at - now_epoch
  end
  return nil
end

--- Exponential backoff with jitter: a random point in the upper half of
-- `min(INITIAL_BACKOFF * 2^(attempt-1), MAX_BACKOFF)`.
function M.backoff(attempt, random)
  random = random or math.random
  local delay = math.min(M.INITIAL_BACKOFF * 2 ^ (attempt - 1),
                         M.MAX_BACKOFF)
  return delay * (0.5 + 0.5 * random())
end

-- Statuses worth another attempt on an idempotent request.
local RETRY_STATUS = { [408] = true, [409] = true, [429] = true }

--- Decide whether a failed attempt may be sent again.
-- @tparam table outcome `status` and `headers` of a response, or
--   `transport` (the transport error's kind) and `request_sent`
-- @tparam boolean idempotent GET, PUT and DELETE are; create and
--   rotate are not
-- @return retry (boolean), and `true` as a second value when the server
--   may have acted on a request that will not be sent again
function M.should_retry(outcome, idempotent)
  if outcome.status then
    local header = outcome.headers and outcome.headers["x-should-retry"]
    local status = outcome.status
    -- The header overrides the status rule for idempotent requests only,
    -- because a server that acted on a create and then requests a retry
    -- would get a second relay.
    if idempotent and header == "true" then
      return true
    elseif idempotent and header == "false" then
      return false
    end
    local retryable = RETRY_STATUS[status] or status >= 500
    if idempotent then
      return retryable and true or false
    end
    -- A 429 means the server turned the request away unprocessed; after a
    -- 5xx it may have created the relay or rotated the token already.
    if status == 429 then
      return true
    end
    return false, status >= 500
  end

  local kind = outcome.transport
  if kind == "connect" then
    return true
  end
  if kind == "timeout" or kind == "read" or kind == "send" then
    if idempotent then
      return true
    end
    if not outcome.request_sent then
      return true
    end
    return false, true
  end
  return false
end

--- Parse `Ratelimit: "default";r=50;t=30` to remaining and reset seconds.
function M.parse_ratelimit(value)
  if type(value) ~= "string" then
    return nil
  end
  local r = value:match(";%s*r=(%d+)")
  local t = value:match(";%s*t=(%d+)")
  if not r then
    return nil
  end
  return tonumber(r), tonumber(t) or 0
end

--- Parse `Ratelimit-Policy: "burst";q=100;w=60` to quota and window.
function M.parse_ratelimit_policy(value)
  if type(value) ~= "string" then
    return nil
  end
  local q = value:match(";%s*q=(%d+)")
  local w = value:match(";%s*w=(%d+)")
  if not q then
    return nil
  end
  return tonumber(q), tonumber(w)
end

return M
