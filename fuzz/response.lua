--- fuzz_response: response envelopes to models.
--
-- Each input is a response body. When it decodes as JSON, the value and
-- its `result` field are shaped by models.convert with every schema.
-- Then the body goes through the whole client: a client with a fake
-- transport that returns the input runs each relays operation, with
-- HTTP 200 and with error statuses. A call must return a result, or nil
-- and a cloudflare.Error, and a raised error is a bug. The text of a
-- model must not depend on its tokens, and the text of an error must be
-- one line that does not show the api_token.

local client_module = require "cloudflare.client"
local core = require "cloudflare.core"
local errors = require "cloudflare.errors"
local models = require "cloudflare.models"
local relays_module = require "cloudflare.relays"

local API_TOKEN = "fuzz-api-token-5b1f0c2e9d7a4c68"
local ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353"
local RELAY_ID = "4b0d1e6f2a9c4e3b8d5f7a1c0e2b4d6f"

local ERROR_NAMES = {}
for _, name in ipairs(errors.names) do
  ERROR_NAMES[name] = true
end

-- The schemas the client applies to `result`, in a fixed order.
local SCHEMAS = {
  { "summary", models.schemas.summary },
  { "relay", models.schemas.relay },
  { "created", models.schemas.created },
  { "token", models.schemas.token },
  { "list", { array = models.schemas.summary, mt = relays_module.Page } },
  { "result_info", models.schemas.result_info },
  { "config", models.schemas.config },
}

-- Statuses of the error responses, besides 200.
local ERROR_STATUSES = { 404, 429, 500 }

-- Replace every byte of a token by another byte, keeping the length,
-- which is all that models.mask shows.
local function disguise(secret)
  return (secret:gsub(".", function(c)
    return c == "a" and "b" or "a"
  end))
end

-- Check that tostring(model) does not depend on the content of any token
-- field: the text must not change when every token is replaced by other
-- bytes of the same length.
local function check_model_text(model, what)
  local text = tostring(model)
  if type(text) ~= "string" then
    error(what .. ": tostring did not return a string")
  end
  local disguised, changed = {}, false
  for key, value in pairs(model) do
    if models.SECRET_FIELDS[key] and type(value) == "string" then
      value = disguise(value)
      changed = true
    end
    disguised[key] = value
  end
  if not changed then
    return
  end
  local other = tostring(setmetatable(disguised, getmetatable(model)))
  if other ~= text then
    error(string.format("%s: tostring shows a token: %s", what, text))
  end
end

local function check_converted(name, model, err)
  if model == nil then
    if type(err) ~= "string" then
      error("models.convert(" .. name .. ") returned nil without a message")
    end
    return
  end
  if type(model) ~= "table" or getmetatable(model) == nil then
    error("models.convert(" .. name .. ") returned a value without a " ..
          "metatable")
  end
  if name == "list" then
    for i, item in ipairs(model) do
      check_model_text(item, string.format("list[%d]", i))
    end
  else
    check_model_text(model, name)
  end
end

local function convert_all(value)
  for _, entry in ipairs(SCHEMAS) do
    local name, schema = entry[1], entry[2]
    check_converted(name, models.convert(schema, value, "result"))
  end
end

local function check_error(operation, err)
  if not errors.is(err) then
    error(string.format("%s returned nil and %s instead of a " ..
                        "cloudflare.Error", operation, tostring(err)))
  end
  if not ERROR_NAMES[err.name] then
    error(operation .. " returned an error named " .. tostring(err.name))
  end
  local text = tostring(err)
  if text:find("[\r\n]") then
    error(operation .. ": tostring of the error spans lines: " .. text)
  end
  if text:find(API_TOKEN, 1, true) then
    error(operation .. ": the error text shows the api_token")
  end
end

local function check_outcome(operation, result, err)
  if result == nil then
    check_error(operation, err)
  elseif result == false then
    error(operation .. " returned false")
  elseif type(result) == "table" and getmetatable(result) ~= nil then
    check_model_text(result, operation)
  end
end

local function fake_transport(status, body)
  local response = {
    status = status,
    headers = {
      ["content-type"] = "application/json",
      ["cf-ray"] = "8f1d2c3b4a596877-SJC",
    },
    body = body,
    total_time = 0.001,
  }
  return {
    request = function()
      return response
    end,
    close = function() end,
  }
end

-- A clock that never sleeps, so that retries and rate limits cost no
-- time.
local function fake_clock()
  local now = 0
  return {
    now = function() return now end,
    sleep = function(seconds) now = now + seconds end,
    time = function() return 1767225600 + now end,
  }
end

local function new_client(status, body)
  local lines = {}
  local client = client_module.new {
    api_token = API_TOKEN,
    account_id = ACCOUNT_ID,
    transport = fake_transport(status, body),
    clock = fake_clock(),
    max_retries = 0,
    log_level = "debug",
    logger = function(level, message)
      lines[#lines + 1] = level .. ": " .. message
    end,
  }
  return client, lines
end

local function check_log(lines)
  for _, line in ipairs(lines) do
    if line:find(API_TOKEN, 1, true) then
      error("a log line shows the api_token: " .. line)
    end
  end
end

-- Run every relays operation against a client whose server returns
-- `body` with `status`.
local function run_operations(status, body)
  local client, lines = new_client(status, body)
  local relays = client.moq.relays

  local page, list_err = relays:list { per_page = 2 }
  check_outcome("list", page, list_err)
  if page then
    -- nil without an error means that this page was the last.
    local next_page, next_err = page:next_page()
    if next_page ~= nil or next_err ~= nil then
      check_outcome("next_page", next_page, next_err)
    end
  end
  check_outcome("all", relays:all { max_items = 50 })
  check_outcome("get", relays:get(RELAY_ID))
  check_outcome("create", relays:create { name = "fuzz relay" })
  check_outcome("update", relays:update(RELAY_ID, {
    config = { lingering_subscribe = { enabled = true } },
  }))
  check_outcome("delete", relays:delete(RELAY_ID))
  check_outcome("rotate", relays.tokens:rotate(RELAY_ID,
                                               { type = "subscribe" }))
  check_outcome("find_by_name", relays:find_by_name("fuzz relay"))
  check_log(lines)
  client:close()
end

return function(input)
  local value = core.json_decode(input)
  if value ~= nil then
    convert_all(value)
    if type(value) == "table" and value.result ~= nil then
      convert_all(value.result)
    end
  end

  run_operations(200, input)
  for _, status in ipairs(ERROR_STATUSES) do
    local client = new_client(status, input)
    check_outcome("get " .. status, client.moq.relays:get(RELAY_ID))
    client:close()
  end
end
