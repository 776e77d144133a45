-- Fault injection: queued responses that replace or delay real ones.
--
-- Faults wait in one first-in, first-out queue. An API request takes the
-- first fault whose endpoint is its own or `*`. A request that matches no
-- endpoint, such as an unknown path, takes only `*` faults.

local json = require "moq_emulator.json"
local validate = require "moq_emulator.validate"

local faults = {}

local endpoints = {
  list = true, get = true, create = true, update = true, delete = true,
  rotate = true, ["*"] = true,
}

local response_fields = {
  status = true, headers = true, body = true, body_base64 = true,
  delay_ms = true, trickle = true, drop = true, content_length = true,
  passthrough = true, after = true,
}

-- Upper bound of `delay_ms` and `trickle.interval_ms`, so that a queued
-- fault cannot hold a connection open for long.
local MAX_DELAY_MS = 300000

-- Entries `{ endpoint = name, response = normalized, spec = as posted }`.
local queue = {}

local function is_integer_in(value, low, high)
  return validate.is_integer(value) and value >= low and value <= high
end

local function normalize_headers(spec, fault)
  for name, value in pairs(spec) do
    if not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then
      return nil, "headers: invalid header name " .. name
    end
    if type(value) == "number" then
      value = tostring(value)
    end
    local values = json.is_array(value) and value or { value }
    for _, item in ipairs(values) do
      if type(item) ~= "string" or item:find("[%z\r\n]") then
        return nil, "headers." .. name .. " must be a string without "
          .. "CR, LF or NUL, or an array of such strings"
      end
    end
    if name:lower() == "content-length" then
      if not tostring(value):find("^%d+$") then
        return nil, "headers.Content-Length must be a whole number"
      end
      fault.content_length = fault.content_length or tonumber(value)
    else
      fault.headers[name] = value
    end
  end
  return true
end

local function normalize_body(spec, fault)
  if spec.body ~= nil and spec.body_base64 ~= nil then
    return nil, "body and body_base64 are mutually exclusive"
  end
  if spec.body ~= nil then
    if type(spec.body) ~= "string" then
      return nil, "body must be a string"
    end
    fault.body = spec.body
  elseif spec.body_base64 ~= nil then
    local body = type(spec.body_base64) == "string"
      and ngx.decode_base64(spec.body_base64)
    if not body then
      return nil, "body_base64 must be a base64 string"
    end
    fault.body = body
  end
  return true
end

local function normalize_trickle(spec, fault)
  if not json.is_object(spec) then
    return nil, "trickle must be an object"
  end
  for key in pairs(spec) do
    if key ~= "chunk" and key ~= "interval_ms" then
      return nil, "trickle: unknown field " .. key
    end
  end
  if not is_integer_in(spec.chunk, 1, 2^31) then
    return nil, "trickle.chunk must be a positive integer (bytes)"
  end
  local interval = spec.interval_ms or 0
  if not is_integer_in(interval, 0, MAX_DELAY_MS) then
    return nil, "trickle.interval_ms must be an integer from 0 to "
      .. MAX_DELAY_MS
  end
  fault.trickle = { chunk = spec.chunk, interval_ms = interval }
  return true
end

-- Checks the fields that only control timing and the connection.
local function normalize_delivery(spec, fault)
  if spec.delay_ms ~= nil then
    if not is_integer_in(spec.delay_ms, 0, MAX_DELAY_MS) then
      return nil, "delay_ms must be an integer from 0 to " .. MAX_DELAY_MS
    end
    fault.delay_ms = spec.delay_ms
  end
  if spec.drop ~= nil then
    if spec.drop ~= "before_headers" and spec.drop ~= "mid_body" then
      return nil, "drop must be \"before_headers\" or \"mid_body\""
    end
    fault.drop = spec.drop
  end
  if spec.content_length ~= nil then
    if not is_integer_in(spec.content_length, 0, 2^53) then
      return nil, "content_length must be a non-negative integer"
    end
    fault.content_length = spec.content_length
  end
  if spec.after ~= nil and type(spec.after) ~= "boolean" then
    return nil, "after must be a boolean"
  end
  fault.after = spec.after == true
  return true
end

-- `passthrough` delays a request and then handles it for real, so the
-- only other field it takes is `delay_ms`.
local function normalize_passthrough(spec, fault)
  if spec.passthrough ~= true then
    return nil, "passthrough must be true when present"
  end
  for key in pairs(spec) do
    if key ~= "passthrough" and key ~= "delay_ms" then
      return nil, "passthrough takes only delay_ms, not " .. key
    end
  end
  fault.passthrough = true
  return true
end

-- Validates one posted response and returns its normalized form, or nil
-- and a message naming the field.
local function normalize_response(spec)
  if not json.is_object(spec) then
    return nil, "each response must be an object"
  end
  for key in pairs(spec) do
    if not response_fields[key] then
      return nil, "unknown field " .. key
    end
  end
  local fault = {
    status = 500, headers = {}, body = "", delay_ms = 0,
    passthrough = false,
  }
  local ok, err = normalize_delivery(spec, fault)
  if ok and spec.passthrough ~= nil then
    ok, err = normalize_passthrough(spec, fault)
  end
  if ok and spec.status ~= nil then
    if not is_integer_in(spec.status, 100, 599) then
      ok, err = nil, "status must be an integer from 100 to 599"
    end
    fault.status = spec.status
  end
  if ok and spec.headers ~= nil then
    if json.is_object(spec.headers) then
      ok, err = normalize_headers(spec.headers, fault)
    else
      ok, err = nil, "headers must be an object"
    end
  end
  if ok then
    ok, err = normalize_body(spec, fault)
  end
  if ok and spec.trickle ~= nil then
    ok, err = normalize_trickle(spec.trickle, fault)
  end
  if not ok then
    return nil, err
  end
  return fault
end

--- Queues responses for an endpoint.
-- Returns the number queued, or nil and a message. Nothing is queued when
-- any response is invalid.
function faults.add(endpoint, responses)
  if not endpoints[endpoint] then
    return nil, "endpoint must be one of list, get, create, update, "
      .. "delete, rotate or *"
  end
  if not json.is_array(responses) or #responses == 0 then
    return nil, "responses must be a non-empty array"
  end
  local entries = {}
  for i, spec in ipairs(responses) do
    local fault, err = normalize_response(spec)
    if not fault then
      return nil, "responses[" .. (i - 1) .. "]: " .. err
    end
    entries[i] = { endpoint = endpoint, response = fault, spec = spec }
  end
  for _, entry in ipairs(entries) do
    queue[#queue + 1] = entry
  end
  return #entries
end

--- Removes and returns the first fault for an endpoint (nil for a request
-- that matched none), or returns nil when none is queued.
function faults.take(endpoint)
  for i, entry in ipairs(queue) do
    if entry.endpoint == "*" or entry.endpoint == endpoint then
      table.remove(queue, i)
      return entry.response
    end
  end
  return nil
end

--- Returns the queued faults as posted, in order.
function faults.list()
  local result = json.array()
  for i, entry in ipairs(queue) do
    result[i] = json.object({ endpoint = entry.endpoint,
      response = entry.spec }, { "endpoint", "response" })
  end
  return result
end

--- Removes every queued fault.
function faults.clear()
  queue = {}
end

--- Waits for the fault's `delay_ms`.
function faults.delay(fault)
  if fault.delay_ms > 0 then
    ngx.sleep(fault.delay_ms / 1000)
  end
end

-- Sends the body a chunk at a time, flushing each, with a pause between.
-- Returns false when the client has gone.
local function send_trickle(body, trickle)
  ngx.send_headers()
  for first = 1, #body, trickle.chunk do
    if first > 1 and trickle.interval_ms > 0 then
      ngx.sleep(trickle.interval_ms / 1000)
    end
    ngx.print(body:sub(first, first + trickle.chunk - 1))
    if not ngx.flush(true) then
      return false
    end
  end
  return true
end

--- Waits for the fault's delay, then sends its response.
-- The connection closes without a response for `drop = before_headers`,
-- after half the body for `drop = mid_body`, and after the body when
-- `content_length` differs from the body's length, so that a wrong length
-- cannot corrupt the next response on a kept-alive connection.
function faults.send(fault)
  faults.delay(fault)
  if fault.drop == "before_headers" then
    return ngx.exit(444)
  end
  ngx.status = fault.status
  for name, value in pairs(fault.headers) do
    ngx.header[name] = value
  end
  local body = fault.body
  local declared_length = fault.content_length or #body
  ngx.header["Content-Length"] = declared_length
  if fault.drop == "mid_body" then
    ngx.send_headers()
    ngx.print(body:sub(1, math.floor(#body / 2)))
    ngx.flush(true)
    return ngx.exit(444)
  end
  local sent = true
  if fault.trickle then
    sent = send_trickle(body, fault.trickle)
  else
    ngx.print(body)
  end
  if not sent or declared_length ~= #body then
    ngx.flush(true)
    return ngx.exit(444)
  end
  return ngx.exit(ngx.OK)
end

return faults
