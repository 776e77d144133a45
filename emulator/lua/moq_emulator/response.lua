-- Building and sending responses.
--
-- A response is a table `{ status = n, headers = { name = value },
-- body = "bytes" }`. Handlers return one instead of writing to nginx, so
-- a fault can discard the real response after the request took effect.

local json = require "moq_emulator.json"

local response = {}

local envelope_keys = {
  "success", "errors", "messages", "result", "result_info",
}

local error_keys = { "code", "message", "error_chain" }

--- Returns a response with a JSON body.
function response.json(status, value, headers)
  headers = headers or {}
  headers["Content-Type"] = "application/json"
  return { status = status, headers = headers, body = json.encode(value) }
end

-- Returns an error as an envelope entry with its chain, if any.
local function error_entry(err)
  local entry = { code = err.code, message = err.message }
  if err.error_chain then
    local chain = json.array()
    for i, link in ipairs(err.error_chain) do
      chain[i] = error_entry(link)
    end
    entry.error_chain = chain
  end
  return json.object(entry, error_keys)
end

--- Returns a successful API envelope. `result_info` is for lists only.
function response.success(status, result, result_info)
  local envelope = {
    success = true,
    errors = json.array(),
    messages = json.array(),
    result = result == nil and json.null or result,
    result_info = result_info,
  }
  return response.json(status, json.object(envelope, envelope_keys))
end

--- Returns a failed API envelope for an error
-- `{ status, code, message, error_chain }`.
function response.failure(err)
  local envelope = {
    success = false,
    errors = json.array({ error_entry(err) }),
    messages = json.array(),
    result = json.null,
  }
  return response.json(err.status, json.object(envelope, envelope_keys))
end

--- Sends a response and ends the request.
function response.send(resp)
  ngx.status = resp.status
  for name, value in pairs(resp.headers or {}) do
    ngx.header[name] = value
  end
  local body = resp.body or ""
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

return response
