--- fuzz_request: request validation and request body encoding.
--
-- Each input is JSON for the params of a call. When it decodes to a
-- table, the four body and query validators of cloudflare.validate run
-- on it, and path_id on its account_id. A validator must return either a
-- result or nil and a ValidationError, and a raised error is a bug. A
-- body that passes is encoded as the client encodes it, and must decode
-- back to the same data. The decoded input itself goes through the same
-- round trip.

local client = require "cloudflare.client"
local core = require "cloudflare.core"
local errors = require "cloudflare.errors"
local roundtrip = require "roundtrip"
local validate = require "cloudflare.validate"

-- Characters that client.escape may leave in a path segment or query.
local ESCAPED = "^[%w%-%._~%%]*$"

local function check_validation_error(name, err)
  if not errors.is(err, "ValidationError") then
    error(string.format("%s returned nil and %s instead of a " ..
                        "ValidationError", name, tostring(err)))
  end
  if type(err.field) ~= "string" or type(err.message) ~= "string" then
    error(name .. " returned a ValidationError without field or message")
  end
  if tostring(err):find("[\r\n]") then
    error(name .. ": tostring of the error spans lines")
  end
end

-- Check that each { name, value } pair of the query survives escaping.
local function check_query(query)
  for i, pair in ipairs(query) do
    if type(pair[1]) ~= "string" or type(pair[2]) ~= "string" then
      error(string.format("list_query pair %d is not two strings", i))
    end
    if not client.escape(pair[2]):find(ESCAPED) then
      error("client.escape left a reserved character in " .. pair[2])
    end
  end
end

-- Check the rules of the API that a valid config must follow.
local function check_config(config)
  local lingering = config.lingering_subscribe
  local fallback = config.origin_fallback
  if lingering and lingering.enabled == true and fallback
      and fallback.enabled == true then
    error("update_body accepted both lingering_subscribe and " ..
          "origin_fallback enabled")
  end
  local timeout = lingering and lingering.max_timeout_ms
  if timeout ~= nil and (math.type(timeout) ~= "integer"
      or timeout < validate.MAX_TIMEOUT_MS_MIN
      or timeout > validate.MAX_TIMEOUT_MS_MAX) then
    error("update_body accepted max_timeout_ms " .. tostring(timeout))
  end
  for i, origin in ipairs(fallback and fallback.origins or {}) do
    if type(origin.url) ~= "string" or origin.url == "" then
      error(string.format("update_body accepted origins[%d] without a url",
                          i))
    end
  end
end

local function check_body(name, params, body)
  if name == "create_body" and body.name ~= params.name then
    error("create_body changed the name")
  end
  if name == "rotate_body" and not validate.TOKEN_TYPES[body.type] then
    error("rotate_body accepted type " .. tostring(body.type))
  end
  if name == "update_body" then
    if body.name ~= params.name then
      error("update_body changed the name")
    end
    if body.config ~= nil then
      check_config(body.config)
    end
  end
end

-- Check the wire form of the list query values.
local function check_query_values(query)
  for _, pair in ipairs(query) do
    local name, value = pair[1], pair[2]
    if name == "asc" and value ~= "true" and value ~= "false" then
      error("list_query sends asc=" .. value)
    end
    if name == "per_page" then
      local n = value:match("^%d+$") and tonumber(value)
      if not n or n < 1 or n > 2 ^ 31 - 1 then
        error("list_query sends per_page=" .. value)
      end
    end
  end
end

local VALIDATORS = {
  { "update_body", validate.update_body },
  { "create_body", validate.create_body },
  { "rotate_body", validate.rotate_body },
  { "list_query", validate.list_query },
}

local function run_validators(params)
  for _, validator in ipairs(VALIDATORS) do
    local name, validate_params = validator[1], validator[2]
    local result, err = validate_params(params)
    if result == nil then
      check_validation_error(name, err)
    elseif name == "list_query" then
      check_query(result)
      check_query_values(result)
      roundtrip.check(result, "list_query result")
    else
      check_body(name, params, result)
      roundtrip.check(result, name .. " result")
    end
  end

  -- The account id becomes a path segment once it passes path_id.
  if params.account_id ~= nil then
    local id, err = validate.path_id("account_id", params.account_id)
    if id == nil then
      check_validation_error("path_id", err)
    elseif not client.escape(id):find(ESCAPED) then
      error("client.escape left a reserved character in " .. id)
    end
  end
end

return function(input)
  local params = core.json_decode(input)
  if params == nil then
    return
  end
  roundtrip.check(params, "decoded input")
  if type(params) == "table" then
    run_validators(params)
  end
end
