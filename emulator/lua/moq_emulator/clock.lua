-- RFC 3339 timestamps and the emulator's strictly increasing clock.
--
-- A time is a number of microseconds since 1970-01-01T00:00:00Z. Doubles
-- hold such counts exactly up to the year 2255, well past any relay's
-- `created`, and keep their order beyond it.

local clock = {}

local floor, format = math.floor, string.format

-- Days since 1970-01-01 of a proleptic Gregorian date, from the
-- "days_from_civil" algorithm of Howard Hinnant's date library notes.
local function days_from_civil(year, month, day)
  if month <= 2 then
    year = year - 1
  end
  local era = floor(year / 400)
  local year_of_era = year - era * 400
  local shifted_month = (month + 9) % 12
  local day_of_year = floor((153 * shifted_month + 2) / 5) + day - 1
  local day_of_era = year_of_era * 365 + floor(year_of_era / 4)
    - floor(year_of_era / 100) + day_of_year
  return era * 146097 + day_of_era - 719468
end

-- Inverse of `days_from_civil`: returns year, month and day.
local function civil_from_days(days)
  days = days + 719468
  local era = floor(days / 146097)
  local day_of_era = days - era * 146097
  local year_of_era = floor((day_of_era - floor(day_of_era / 1460)
    + floor(day_of_era / 36524) - floor(day_of_era / 146096)) / 365)
  local day_of_year = day_of_era - (365 * year_of_era
    + floor(year_of_era / 4) - floor(year_of_era / 100))
  local shifted_month = floor((5 * day_of_year + 2) / 153)
  local day = day_of_year - floor((153 * shifted_month + 2) / 5) + 1
  local month = shifted_month < 10 and shifted_month + 3
    or shifted_month - 9
  local year = year_of_era + era * 400
  if month <= 2 then
    year = year + 1
  end
  return year, month, day
end

local function days_in_month(year, month)
  local lengths = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  local leap = year % 4 == 0 and (year % 100 ~= 0 or year % 400 == 0)
  if month == 2 and leap then
    return 29
  end
  return lengths[month]
end

local function parse_offset(text)
  if text == "Z" or text == "z" then
    return 0
  end
  local sign, hours, minutes = text:match("^([-+])(%d%d):(%d%d)$")
  if not sign then
    return nil
  end
  hours, minutes = tonumber(hours), tonumber(minutes)
  if hours > 23 or minutes > 59 then
    return nil
  end
  local offset = (hours * 60 + minutes) * 60
  return sign == "-" and -offset or offset
end

--- Parses an RFC 3339 date-time.
-- The fraction of a second is optional, and the offset is `Z` or
-- `+hh:mm`/`-hh:mm`. A leap second (`:60`) is rejected.
-- Returns the time in whole microseconds (digits past the sixth are
-- dropped) and a boolean that is true when the dropped digits were not all
-- zero, or nil when the text is not RFC 3339.
function clock.parse_rfc3339(text)
  if type(text) ~= "string" then
    return nil
  end
  local year, month, day, hour, minute, second, rest = text:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not year then
    return nil
  end
  local fraction, offset_text = rest:match("^%.(%d+)(.*)$")
  if not fraction then
    fraction, offset_text = "", rest
  end
  local offset = parse_offset(offset_text)
  if not offset then
    return nil
  end
  year, month, day = tonumber(year), tonumber(month), tonumber(day)
  hour, minute, second = tonumber(hour), tonumber(minute), tonumber(second)
  if month < 1 or month > 12 or day < 1
    or day > days_in_month(year, month)
    or hour > 23 or minute > 59 or second > 59 then
    return nil
  end
  local seconds = days_from_civil(year, month, day) * 86400
    + hour * 3600 + minute * 60 + second - offset
  local micros = tonumber((fraction .. "000000"):sub(1, 6))
  local has_remainder = fraction:sub(7):find("[1-9]") ~= nil
  return seconds * 1000000 + micros, has_remainder
end

--- Formats microseconds since the epoch as RFC 3339 in UTC with six
-- fraction digits, for example `2026-12-04T15:20:01.123456Z`.
function clock.format_rfc3339(usec)
  local seconds = floor(usec / 1000000)
  local micros = usec - seconds * 1000000
  local days = floor(seconds / 86400)
  local second_of_day = seconds - days * 86400
  local year, month, day = civil_from_days(days)
  return format("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", year, month, day,
    floor(second_of_day / 3600), floor(second_of_day / 60) % 60,
    second_of_day % 60, micros)
end

-- Reads the wall clock in microseconds. gettimeofday through LuaJIT's FFI
-- has microsecond resolution, and `ngx.now` (milliseconds) is the fallback.
local read_wall_clock

local function ffi_wall_clock()
  local ok, ffi = pcall(require, "ffi")
  if not ok then
    return nil
  end
  local declared = pcall(ffi.cdef, [[
    typedef struct {
      long tv_sec;
      long tv_usec;
    } moq_emulator_timeval;
    int gettimeofday(moq_emulator_timeval *tv, void *tz);
  ]])
  if not declared then
    return nil
  end
  local timeval = ffi.new("moq_emulator_timeval")
  return function()
    ffi.C.gettimeofday(timeval, nil)
    return tonumber(timeval.tv_sec) * 1000000 + tonumber(timeval.tv_usec)
  end
end

read_wall_clock = ffi_wall_clock() or function()
  ngx.update_time()
  return floor(ngx.now() * 1000) * 1000
end

-- The last time handed out by `clock.next`.
local last_usec = 0

--- Returns the current time in microseconds, bumped to one microsecond
-- after the previous result when the wall clock has not moved past it, so
-- every result is unique and strictly increasing.
function clock.next()
  local now = read_wall_clock()
  if now <= last_usec then
    now = last_usec + 1
  end
  last_usec = now
  return now
end

--- Returns the current time in seconds, with a fraction, for rate limits.
function clock.seconds()
  return read_wall_clock() / 1000000
end

return clock
