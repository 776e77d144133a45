--- Error objects returned as the second value of every failed call.
--
-- An error is a table with a `name` a program can test, the HTTP `status`
-- and API `code` when the server responded, and a `__tostring` that gives
-- one line a person can read.
-- @module cloudflare.errors

local M = {}

--- Error names by HTTP status.
M.by_status = {
  [400] = "BadRequestError",
  [401] = "AuthenticationError",
  [403] = "PermissionDeniedError",
  [404] = "NotFoundError",
  [409] = "ConflictError",
  [422] = "UnprocessableEntityError",
  [429] = "RateLimitError",
}

--- Every name an error can have.
M.names = {
  "ValidationError", "BadRequestError", "AuthenticationError",
  "PermissionDeniedError", "NotFoundError", "ConflictError",
  "UnprocessableEntityError", "RateLimitError", "InternalServerError",
  "APIStatusError", "APIConnectionError", "APITimeoutError",
  "ResponseDecodeError",
}

local Error = { __name = "cloudflare.Error" }
Error.__index = Error
M.Error = Error

-- Collapse line breaks so that tostring(err) is always one line.
local function one_line(s)
  return (tostring(s):gsub("[\r\n]+", " "))
end

function Error:__tostring()
  local parts = { one_line(self.name), ": " }
  if self.status then
    parts[#parts + 1] = "HTTP " .. one_line(self.status)
    -- The message names each error code in brackets already. A server
    -- can send any JSON value as a code, so it is flattened too.
    local message = tostring(self.message)
    if self.code and not message:find("(" .. tostring(self.code) .. ")", 1,
                                      true) then
      parts[#parts + 1] = ", code " .. one_line(self.code)
    end
    parts[#parts + 1] = ": "
  end
  parts[#parts + 1] = one_line(self.message or "unknown error")
  if self.method and self.path then
    parts[#parts + 1] = " (" .. one_line(self.method) .. " " ..
      one_line(self.path)
    if self.ray_id then
      parts[#parts + 1] = ", ray " .. one_line(self.ray_id)
    end
    parts[#parts + 1] = ")"
  end
  return table.concat(parts)
end

--- Return true when `err` is an error of this library, optionally of
-- the given name.
function M.is(err, name)
  if getmetatable(err) ~= Error then
    return false
  end
  return name == nil or err.name == name
end

--- Create an error.
-- @tparam string name one of `names`
-- @tparam string message what failed and what to do
-- @tparam[opt] table fields extra fields (status, code, errors, ...)
function M.new(name, message, fields)
  local err = fields or {}
  err.name = name
  err.message = message
  return setmetatable(err, Error)
end

--- Create a `ValidationError` for a value found invalid before sending.
-- @tparam string field the parameter's path, e.g. `config.origin_fallback`
-- @tparam string rule what the value must be
-- @param value the value, shown only for numbers, booleans and short
--   strings, so that a secret pasted into the wrong field is not echoed
function M.validation(field, rule, value)
  local shown
  local kind = type(value)
  if kind == "number" or kind == "boolean" then
    shown = tostring(value)
  elseif kind == "string" and #value <= 40 and not value:find("[%c]") then
    shown = string.format("%q", value)
  elseif kind == "nil" then
    shown = "nothing"
  else
    shown = "a " .. kind
  end
  local message = string.format("invalid %s: %s, got %s", field, rule, shown)
  return M.new("ValidationError", message, { field = field })
end

--- Return the error name for an HTTP status.
function M.name_for_status(status)
  if M.by_status[status] then
    return M.by_status[status]
  end
  if status >= 500 and status <= 599 then
    return "InternalServerError"
  end
  return "APIStatusError"
end

return M
