--- RFC 3339 timestamps: the `created` and `modified` fields, and the
-- `created_after` and `created_before` list parameters.
-- @module cloudflare.time

local policy = require "cloudflare.policy"

local M = {}

-- NOTE: integer nanoseconds need Lua 5.3+ (`//`, math.tointeger). On
-- LuaJIT this module would need a two-part representation instead.
local NS_PER_SECOND = 1000000000

--- Parse an RFC 3339 date-time to whole seconds and nanoseconds since
-- the Unix epoch, UTC. Returns nil and a message for anything else.
-- @tparam string value e.g. `2026-12-04T15:20:01.123456Z`
-- @return seconds (integer), nanoseconds (integer, 0 to 999999999)
function M.parse_parts(value)
  if type(value) ~= "string" then
    return nil, "expected an RFC 3339 string, got " .. type(value)
  end
  local y, mo, d, h, mi, s, rest = value:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then
    return nil, "invalid RFC 3339 date-time " .. string.format("%q", value)
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  h, mi, s = tonumber(h), tonumber(mi), tonumber(s)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59
      or s > 60 then
    return nil, "out-of-range RFC 3339 date-time " ..
      string.format("%q", value)
  end

  local nanos = 0
  local fraction = rest:match("^%.(%d+)")
  if fraction then
    rest = rest:sub(#fraction + 2)
    nanos = math.tointeger(tonumber((fraction .. "000000000"):sub(1, 9)))
  end

  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then
      return nil, "invalid RFC 3339 offset in " ..
        string.format("%q", value)
    end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60)
      * (sign == "-" and -1 or 1)
  end

  local seconds = policy.days_from_civil(y, mo, d) * 86400
    + h * 3600 + mi * 60 + s - offset
  return math.tointeger(seconds), nanos
end

--- Parse an RFC 3339 date-time to epoch seconds, with the fraction as a
-- float. Returns nil and a message for anything else.
function M.parse(value)
  local seconds, nanos = M.parse_parts(value)
  if not seconds then
    return nil, nanos
  end
  return seconds + nanos / NS_PER_SECOND
end

--- Format epoch seconds (integer or float) as RFC 3339 in UTC, with
-- microseconds when the value has a fraction:
-- `2026-12-04T15:20:01.123456Z`.
function M.format(epoch)
  if type(epoch) ~= "number" or epoch ~= epoch then
    error("time.format: expected epoch seconds, got " .. type(epoch), 2)
  end
  local seconds = math.floor(epoch)
  local micros = math.floor((epoch - seconds) * 1e6 + 0.5)
  if micros >= 1000000 then
    seconds, micros = seconds + 1, micros - 1000000
  end
  return M.format_parts(seconds, micros * 1000)
end

--- Format whole seconds and nanoseconds as RFC 3339 in UTC, with only
-- the fraction digits the value needs.
function M.format_parts(seconds, nanos)
  local text = os.date("!%Y-%m-%dT%H:%M:%S", seconds)
  if nanos and nanos > 0 then
    local digits = string.format("%09d", nanos):gsub("0+$", "")
    text = text .. "." .. digits
  end
  return text .. "Z"
end

--- Shift an RFC 3339 date-time by `delta` nanoseconds and return it in
-- UTC. Used to make a keyset cursor inclusive of its own timestamp.
function M.shift(value, delta)
  local seconds, nanos = M.parse_parts(value)
  if not seconds then
    return nil, nanos
  end
  nanos = nanos + delta
  seconds = seconds + nanos // NS_PER_SECOND
  nanos = nanos % NS_PER_SECOND
  return M.format_parts(seconds, nanos)
end

--- Compare two RFC 3339 date-times: -1, 0 or 1, or nil and a message.
function M.compare(a, b)
  local sa, na = M.parse_parts(a)
  if not sa then return nil, na end
  local sb, nb = M.parse_parts(b)
  if not sb then return nil, nb end
  if sa ~= sb then
    return sa < sb and -1 or 1
  end
  if na ~= nb then
    return na < nb and -1 or 1
  end
  return 0
end

return M
