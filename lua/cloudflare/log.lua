--- Logging with secrets removed.
--
-- A log line never contains a token or key: headers that carry
-- credentials are masked, token fields in JSON bodies are replaced, and
-- every line passes through the client's redaction of known secrets.
-- @module cloudflare.log

local core = require "cloudflare.core"

local M = {}

M.LEVELS = { debug = 10, info = 20, warn = 30, error = 40, off = 100 }

-- Request headers whose values are credentials.
local SECRET_HEADERS = {
  ["authorization"] = true,
  ["x-auth-key"] = true,
  ["x-auth-user-service-key"] = true,
  ["cookie"] = true,
}

--- Write one line to standard error: the default logger.
function M.stderr_logger(level, message)
  io.stderr:write("[cloudflare] ", level, ": ", message, "\n")
end

--- Check a level name; returns its number, or nil and a message.
function M.level_number(name)
  local n = M.LEVELS[name]
  if not n then
    return nil, string.format("invalid log_level %q: expected debug, " ..
                              "info, warn, error or off", tostring(name))
  end
  return n
end

--- Mask credential headers in an array of "Name: value" lines.
function M.redact_headers(lines)
  local out = {}
  for i, line in ipairs(lines) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name and SECRET_HEADERS[name:lower()] then
      local scheme = value:match("^(%a+) ")
      value = scheme and (scheme .. " [REDACTED]") or "[REDACTED]"
      out[i] = name .. ": " .. value
    else
      out[i] = line
    end
  end
  return out
end

-- Replace, in place, every value whose key starts with "token".
local function redact_tree(value, depth)
  if type(value) ~= "table" or depth > 64 then
    return
  end
  for key, item in pairs(value) do
    if type(key) == "string" and key:find("^token") then
      value[key] = "[REDACTED]"
    else
      redact_tree(item, depth + 1)
    end
  end
end

--- Replace the values of token fields in a JSON text with [REDACTED].
-- The text is decoded, so escapes in keys or values hide nothing; text
-- that is not JSON gets a pattern replacement instead.
function M.redact_body(body)
  if type(body) ~= "string" then
    return body
  end
  local decoded = core.json_decode(body)
  if type(decoded) == "table" then
    redact_tree(decoded, 0)
    local text = core.json_encode(decoded)
    if text then
      return text
    end
  end
  return (body:gsub('("token[%w_]*"%s*:%s*)"[^"]*"', '%1"[REDACTED]"'))
end

--- Shorten a body for a log line: at most `max` bytes, one line.
function M.clip(text, max)
  max = max or 2048
  text = text:gsub("[\r\n]+", " ")
  if #text > max then
    return text:sub(1, max) .. string.format("... (%d bytes)", #text)
  end
  return text
end

return M
