-- Validation of API request bodies and query strings.
--
-- Every check returns nil and an error `{ status, code, message }` on
-- failure. The codes are the emulator's own choices, because the live API
-- does not document them. emulator/README.md lists them.

local clock = require "moq_emulator.clock"
local json = require "moq_emulator.json"
local store = require "moq_emulator.store"

local validate = {}

validate.codes = {
  INVALID_JSON = 10001,
  NOT_AN_OBJECT = 10002,
  UNKNOWN_FIELD = 10003,
  INVALID_NAME = 10004,
  INVALID_TYPE = 10005,
  INVALID_MAX_TIMEOUT_MS = 10006,
  INVALID_ENABLED = 10007,
  INVALID_ORIGINS = 10008,
  INVALID_CONFIG = 10009,
  CONFIG_CONFLICT = 10010,
  INVALID_ASC = 10011,
  INVALID_PER_PAGE = 10012,
  INVALID_CREATED_BOUND = 10013,
  UNKNOWN_QUERY_PARAMETER = 10014,
  DUPLICATE_QUERY_PARAMETER = 10015,
  RELAY_NOT_FOUND = 10020,
}

local codes = validate.codes

-- Maximum length of `name` in characters (UTF-8 code points).
validate.MAX_NAME_LENGTH = 255

-- Range of `config.lingering_subscribe.max_timeout_ms`, from the API
-- reference.
validate.MAX_TIMEOUT_MS = 300000

-- `per_page` when the query omits it, and its maximum.
validate.DEFAULT_PER_PAGE = 20
validate.MAX_PER_PAGE = 1000

local function invalid(code, message)
  return nil, { status = 400, code = code, message = message }
end

local function is_integer(value)
  return type(value) == "number" and value == math.floor(value)
    and value > -math.huge and value < math.huge
end

validate.is_integer = is_integer

local function character_count(text)
  local _, continuation_bytes = text:gsub("[\128-\191]", "")
  return #text - continuation_bytes
end

--- Decodes a request body that must be a JSON object.
function validate.object_body(raw)
  if raw == nil or raw == "" then
    return invalid(codes.INVALID_JSON, "Request body is missing; "
      .. "expected a JSON object")
  end
  local body, err = json.decode(raw)
  if body == nil then
    return invalid(codes.INVALID_JSON,
      "Request body is not valid JSON: " .. err)
  end
  if not json.is_object(body) then
    return invalid(codes.NOT_AN_OBJECT,
      "Request body must be a JSON object")
  end
  return body
end

-- Rejects keys of `object` that `allowed` does not list. `path` prefixes
-- the field name in the message, such as "config.".
local function check_fields(object, allowed, path)
  local unknown = {}
  for key in pairs(object) do
    if not allowed[key] then
      unknown[#unknown + 1] = key
    end
  end
  if #unknown > 0 then
    table.sort(unknown)
    return invalid(codes.UNKNOWN_FIELD,
      "Unknown field: " .. path .. unknown[1])
  end
  return true
end

validate.check_fields = check_fields

--- Checks a relay name: a non-empty string of at most 255 characters.
function validate.name(value)
  if value == nil then
    return invalid(codes.INVALID_NAME, "name is required")
  end
  if type(value) ~= "string" then
    return invalid(codes.INVALID_NAME, "name must be a string")
  end
  if value == "" then
    return invalid(codes.INVALID_NAME, "name must not be empty")
  end
  if character_count(value) > validate.MAX_NAME_LENGTH then
    return invalid(codes.INVALID_NAME, "name must be at most "
      .. validate.MAX_NAME_LENGTH .. " characters")
  end
  return value
end

local function check_enabled(object, path)
  if object.enabled ~= nil and type(object.enabled) ~= "boolean" then
    return invalid(codes.INVALID_ENABLED,
      path .. "enabled must be a boolean")
  end
  return true
end

local function check_lingering_subscribe(value)
  local path = "config.lingering_subscribe."
  local ok, err = check_fields(value,
    { enabled = true, max_timeout_ms = true }, path)
  if ok then
    ok, err = check_enabled(value, path)
  end
  if not ok then
    return nil, err
  end
  local timeout = value.max_timeout_ms
  if timeout ~= nil and (not is_integer(timeout) or timeout < 0
      or timeout > validate.MAX_TIMEOUT_MS) then
    return invalid(codes.INVALID_MAX_TIMEOUT_MS, path
      .. "max_timeout_ms must be an integer from 0 to "
      .. validate.MAX_TIMEOUT_MS)
  end
  return true
end

local function check_origins(origins)
  local path = "config.origin_fallback.origins"
  if not json.is_array(origins) then
    return invalid(codes.INVALID_ORIGINS, path
      .. " must be an array of objects with a string url")
  end
  for i, origin in ipairs(origins) do
    local item = path .. "[" .. (i - 1) .. "]"
    if not json.is_object(origin) then
      return invalid(codes.INVALID_ORIGINS, item .. " must be an object")
    end
    local ok, err = check_fields(origin, { url = true }, item .. ".")
    if not ok then
      return nil, err
    end
    if type(origin.url) ~= "string" then
      return invalid(codes.INVALID_ORIGINS,
        item .. ".url must be a string")
    end
  end
  return true
end

local function check_origin_fallback(value)
  local path = "config.origin_fallback."
  local ok, err = check_fields(value,
    { enabled = true, origins = true }, path)
  if ok then
    ok, err = check_enabled(value, path)
  end
  if ok and value.origins ~= nil then
    ok, err = check_origins(value.origins)
  end
  if not ok then
    return nil, err
  end
  return true
end

local config_checks = {
  lingering_subscribe = check_lingering_subscribe,
  origin_fallback = check_origin_fallback,
}

--- Validates a partial config and merges it onto `stored`.
-- Each sub-object present in `patch` replaces the stored one whole. The
-- merged config must not enable both lingering subscribe and origin
-- fallback. Returns the merged config, a new table.
function validate.merge_config(stored, patch)
  if not json.is_object(patch) then
    return invalid(codes.INVALID_CONFIG, "config must be an object")
  end
  local ok, err = check_fields(patch, config_checks, "config.")
  if not ok then
    return nil, err
  end
  local merged = store.copy(stored)
  for _, key in ipairs({ "lingering_subscribe", "origin_fallback" }) do
    local value = patch[key]
    if value ~= nil then
      if not json.is_object(value) then
        return invalid(codes.INVALID_CONFIG,
          "config." .. key .. " must be an object")
      end
      ok, err = config_checks[key](value)
      if not ok then
        return nil, err
      end
      merged[key] = store.copy(value)
    end
  end
  local lingering = merged.lingering_subscribe
  local fallback = merged.origin_fallback
  if lingering and lingering.enabled == true
    and fallback and fallback.enabled == true then
    return invalid(codes.CONFIG_CONFLICT, "config.lingering_subscribe "
      .. "and config.origin_fallback are mutually exclusive, so at most "
      .. "one of them may be enabled")
  end
  return merged
end

--- Validates a create body: `name` only. Returns the name.
function validate.create_body(body)
  local ok, err = check_fields(body, { name = true }, "")
  if not ok then
    return nil, err
  end
  return validate.name(body.name)
end

--- Validates an update body against the stored relay.
-- Returns the new name (nil when absent) and the merged config (nil when
-- `config` is absent).
function validate.update_body(body, relay)
  local ok, err = check_fields(body, { name = true, config = true }, "")
  if not ok then
    return nil, nil, err
  end
  local name
  if body.name ~= nil then
    name, err = validate.name(body.name)
    if not name then
      return nil, nil, err
    end
  end
  local config
  if body.config ~= nil then
    config, err = validate.merge_config(relay.config, body.config)
    if not config then
      return nil, nil, err
    end
  end
  return name, config
end

local token_types = { publish_subscribe = true, subscribe = true }

--- Validates a rotate body and returns the token type.
function validate.rotate_body(body)
  local ok, err = check_fields(body, { type = true }, "")
  if not ok then
    return nil, err
  end
  if not token_types[body.type] then
    return invalid(codes.INVALID_TYPE,
      "type must be \"publish_subscribe\" or \"subscribe\"")
  end
  return body.type
end

local function decode_query_component(text)
  text = text:gsub("%+", " ")
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

--- Splits a raw query string into decoded name and value pairs.
-- `+` decodes to a space, as in HTML form encoding. Returns the parameters
-- by name, or nil and an error for a repeated name.
function validate.parse_query(raw)
  local params = {}
  for piece in (raw or ""):gmatch("[^&]+") do
    local name, value = piece:match("^([^=]*)=?(.*)$")
    name = decode_query_component(name)
    if params[name] ~= nil then
      return invalid(codes.DUPLICATE_QUERY_PARAMETER,
        "Query parameter " .. name .. " is repeated")
    end
    params[name] = decode_query_component(value)
  end
  return params
end

local function unknown_parameter(params, allowed)
  local names = {}
  for name in pairs(params) do
    if not allowed[name] then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names[1]
end

--- Rejects any query parameter, for the endpoints that take none.
function validate.no_query(raw)
  local params, err = validate.parse_query(raw)
  if not params then
    return nil, err
  end
  local name = unknown_parameter(params, {})
  if name then
    return invalid(codes.UNKNOWN_QUERY_PARAMETER,
      "Unknown query parameter: " .. name)
  end
  return true
end

local list_parameters = {
  asc = true, per_page = true, created_after = true, created_before = true,
}

local function parse_created_bound(params, name)
  local text = params[name]
  if text == nil then
    return true
  end
  local usec, remainder = clock.parse_rfc3339(text)
  if not usec then
    return invalid(codes.INVALID_CREATED_BOUND, name
      .. " must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z")
  end
  return { usec = usec, remainder = remainder }
end

--- Validates the query of the list endpoint.
-- Returns the filter that `store.list` takes.
function validate.list_query(raw)
  local params, err = validate.parse_query(raw)
  if not params then
    return nil, err
  end
  local name = unknown_parameter(params, list_parameters)
  if name then
    return invalid(codes.UNKNOWN_QUERY_PARAMETER,
      "Unknown query parameter: " .. name)
  end
  local filter = { asc = false, per_page = validate.DEFAULT_PER_PAGE }
  if params.asc ~= nil then
    if params.asc ~= "true" and params.asc ~= "false" then
      return invalid(codes.INVALID_ASC, "asc must be true or false")
    end
    filter.asc = params.asc == "true"
  end
  if params.per_page ~= nil then
    local per_page = params.per_page:match("^%d+$")
      and tonumber(params.per_page)
    if not per_page or per_page < 1
      or per_page > validate.MAX_PER_PAGE then
      return invalid(codes.INVALID_PER_PAGE,
        "per_page must be an integer from 1 to " .. validate.MAX_PER_PAGE)
    end
    filter.per_page = per_page
  end
  for _, bound in ipairs({ "created_after", "created_before" }) do
    local value
    value, err = parse_created_bound(params, bound)
    if not value then
      return nil, err
    end
    if value ~= true then
      filter[bound] = value
    end
  end
  return filter
end

return validate
