--- Models: the API's objects as Lua tables.
--
-- A model is a plain table whose fields are exactly the API's, with a
-- metatable that names its type (`__name`) and a `__tostring` that shows
-- the relay and hides every token. Fields the server adds that this
-- library does not know are kept as they came.
-- @module cloudflare.models

local M = {}

local math_type = math.type or function(n)
  if type(n) ~= "number" then
    return nil
  end
  return n == math.floor(n) and "integer" or "float"
end

local tointeger = math.tointeger or function(n)
  if type(n) == "number" and n == math.floor(n) then
    return n
  end
  return nil
end

-- Values that must never be shown: the token fields of every model.
local SECRET_FIELDS = {
  token = true,
  token_publish_subscribe = true,
  token_subscribe = true,
}
M.SECRET_FIELDS = SECRET_FIELDS
local TOKEN_ORDER = { "token_publish_subscribe", "token_subscribe", "token" }

--- Describe a secret without showing it, e.g. `<hidden, 43 characters>`.
function M.mask(value)
  if type(value) ~= "string" then
    return "<hidden>"
  end
  return string.format("<hidden, %d characters>", #value)
end

-- Metatables, one per type. `__jsontype` marks for the JSON encoder
-- whether an empty table is an array or an object.
local function model_type(name, jsontype)
  return { __name = "cloudflare." .. name, __jsontype = jsontype }
end

M.RelaySummary = model_type("RelaySummary", "object")
M.Relay = model_type("Relay", "object")
M.CreatedRelay = model_type("CreatedRelay", "object")
M.RelayConfig = model_type("RelayConfig", "object")
M.LingeringSubscribe = model_type("LingeringSubscribe", "object")
M.OriginFallback = model_type("OriginFallback", "object")
M.Origins = model_type("Origins", "array")
M.Origin = model_type("Origin", "object")
M.RelayToken = model_type("RelayToken", "object")
M.ResultInfo = model_type("ResultInfo", "object")

local function describe_config(config)
  if type(config) ~= "table" then
    return nil
  end
  local parts = {}
  local ls = config.lingering_subscribe
  if type(ls) == "table" then
    parts[#parts + 1] = string.format("lingering_subscribe=%s",
      ls.enabled and ("on/" .. tostring(ls.max_timeout_ms) .. "ms") or "off")
  end
  local of = config.origin_fallback
  if type(of) == "table" then
    local count = type(of.origins) == "table" and #of.origins or 0
    parts[#parts + 1] = string.format("origin_fallback=%s (origins: %d)",
      of.enabled and "on" or "off", count)
  end
  return table.concat(parts, " ")
end

-- One line for any relay-like model: type, uid, name, then the rest.
local function relay_tostring(self)
  local mt = getmetatable(self)
  local parts = { string.format("%s uid=%s name=%q", mt.__name,
    tostring(rawget(self, "uid")), tostring(rawget(self, "name"))) }
  if rawget(self, "status") ~= nil then
    parts[#parts + 1] = "status=" .. tostring(rawget(self, "status"))
  end
  local config = describe_config(rawget(self, "config"))
  if config and config ~= "" then
    parts[#parts + 1] = config
  end
  if rawget(self, "created") then
    parts[#parts + 1] = "created=" .. tostring(rawget(self, "created"))
  end
  for _, field in ipairs(TOKEN_ORDER) do
    if rawget(self, field) ~= nil then
      parts[#parts + 1] = field .. "=" .. M.mask(rawget(self, field))
    end
  end
  return table.concat(parts, " ")
end

M.RelaySummary.__tostring = relay_tostring
M.Relay.__tostring = relay_tostring
M.CreatedRelay.__tostring = relay_tostring

M.RelayConfig.__tostring = function(self)
  return "cloudflare.RelayConfig " .. (describe_config(self) or "")
end

M.LingeringSubscribe.__tostring = function(self)
  return string.format("cloudflare.LingeringSubscribe enabled=%s " ..
                       "max_timeout_ms=%s", tostring(rawget(self, "enabled")),
                       tostring(rawget(self, "max_timeout_ms")))
end

M.OriginFallback.__tostring = function(self)
  local origins = rawget(self, "origins")
  return string.format("cloudflare.OriginFallback enabled=%s origins=%d",
                       tostring(rawget(self, "enabled")),
                       type(origins) == "table" and #origins or 0)
end

M.Origins.__tostring = function(self)
  local urls = {}
  for i, origin in ipairs(self) do
    urls[i] = type(origin) == "table" and tostring(origin.url) or "?"
  end
  return "cloudflare.Origins [" .. table.concat(urls, ", ") .. "]"
end

M.Origin.__tostring = function(self)
  return "cloudflare.Origin url=" .. tostring(rawget(self, "url"))
end

M.RelayToken.__tostring = function(self)
  return string.format("cloudflare.RelayToken type=%s token=%s",
    tostring(rawget(self, "type")), M.mask(rawget(self, "token")))
end

M.ResultInfo.__tostring = function(self)
  return string.format("cloudflare.ResultInfo count=%s total=%s",
    tostring(rawget(self, "count")), tostring(rawget(self, "total")))
end

-- Schemas. A field spec is a type name ("string", "boolean",
-- "integer", "number") or a nested schema table; `required` lists fields
-- that must be present.
local ORIGIN = { mt = M.Origin, fields = { url = "string" } }

local CONFIG = {
  mt = M.RelayConfig,
  fields = {
    lingering_subscribe = {
      mt = M.LingeringSubscribe,
      fields = { enabled = "boolean", max_timeout_ms = "integer" },
    },
    origin_fallback = {
      mt = M.OriginFallback,
      fields = {
        enabled = "boolean",
        origins = { array = ORIGIN, mt = M.Origins },
      },
    },
  },
}

local SUMMARY_FIELDS = {
  uid = "string", name = "string", created = "string", modified = "string",
}
local REQUIRED = { "uid", "name", "created", "modified" }

local function with(base, extra)
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(extra) do out[k] = v end
  return out
end

M.schemas = {
  summary = { mt = M.RelaySummary, fields = SUMMARY_FIELDS,
              required = REQUIRED },
  relay = { mt = M.Relay, required = REQUIRED,
            fields = with(SUMMARY_FIELDS,
                          { config = CONFIG, status = "string" }) },
  created = { mt = M.CreatedRelay,
              required = { "uid", "name", "created", "modified",
                           "token_publish_subscribe", "token_subscribe" },
              fields = with(SUMMARY_FIELDS, {
                config = CONFIG,
                token_publish_subscribe = "string",
                token_subscribe = "string",
              }) },
  token = { mt = M.RelayToken, required = { "token", "type" },
            fields = { token = "string", type = "string" } },
  result_info = { mt = M.ResultInfo,
                  fields = { count = "integer", total = "integer",
                             page = "integer", per_page = "integer",
                             total_count = "integer" } },
  config = CONFIG,
}

local function type_name(value)
  local kind = type(value)
  if kind == "number" then
    return math_type(value) == "integer" and "an integer" or "a float"
  end
  if kind == "table" then
    return #value > 0 and "an array" or "an object"
  end
  if kind == "userdata" then
    return "null"
  end
  return "a " .. kind
end

local function is_array(value)
  if type(value) ~= "table" then
    return false
  end
  local n = #value
  for k in pairs(value) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then
      return false
    end
  end
  return true
end

local function is_object(value)
  if type(value) ~= "table" then
    return false
  end
  for k in pairs(value) do
    if type(k) ~= "string" then
      return false
    end
  end
  return true
end

-- Check one scalar against its spec; returns the value to store (an
-- integral float becomes an integer) or nil plus the expected type.
local function check_scalar(spec, value)
  if spec == "integer" then
    local n = type(value) == "number" and tointeger(value)
    if n then
      return n
    end
    return nil, "an integer"
  end
  if spec == "number" then
    if type(value) == "number" then
      return value
    end
    return nil, "a number"
  end
  if type(value) == spec then
    return value
  end
  return nil, "a " .. spec
end

local shape

local function shape_field(spec, value, path)
  if type(spec) == "string" then
    local v, expected = check_scalar(spec, value)
    if v == nil then
      return nil, string.format("%s: expected %s, got %s", path, expected,
                                type_name(value))
    end
    return v
  end
  if spec.array then
    if not is_array(value) then
      return nil, string.format("%s: expected an array, got %s", path,
                                type_name(value))
    end
    local out = {}
    for i, item in ipairs(value) do
      local v, err = shape(spec.array, item, path .. "[" .. i .. "]")
      if err then
        return nil, err
      end
      out[i] = v
    end
    return setmetatable(out, spec.mt)
  end
  return shape(spec, value, path)
end

--- Check `value` against a schema and return the model, or nil and a
-- message naming the first field that does not match.
function shape(schema, value, path)
  if not is_object(value) or (next(value) ~= nil and is_array(value)) then
    return nil, string.format("%s: expected an object, got %s", path,
                              type_name(value))
  end
  for _, field in ipairs(schema.required or {}) do
    if value[field] == nil then
      return nil, string.format("%s.%s: missing", path, field)
    end
  end
  local out = {}
  for k, v in pairs(value) do
    local spec = schema.fields[k]
    if spec then
      local shaped, err = shape_field(spec, v, path .. "." .. k)
      if err then
        return nil, err
      end
      out[k] = shaped
    else
      out[k] = v
    end
  end
  return setmetatable(out, schema.mt)
end

M.shape = shape

--- Check `value` against a field spec: a type name, an object schema or
-- `{ array = schema, mt = metatable }`.
M.convert = shape_field

return M
