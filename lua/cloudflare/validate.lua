--- Request validation and request body construction.
--
-- Every check runs before anything is sent. A failure returns a
-- `ValidationError` that names the field and the rule.
-- @module cloudflare.validate

local errors = require "cloudflare.errors"
local models = require "cloudflare.models"

local M = {}

-- The relay-level ceiling on the lingering subscribe timeout, in ms.
M.MAX_TIMEOUT_MS_MIN = 0
M.MAX_TIMEOUT_MS_MAX = 300000

M.TOKEN_TYPES = { publish_subscribe = true, subscribe = true }

local ARRAY_MT = { __jsontype = "array", __name = "cloudflare.array" }

local tointeger = math.tointeger or function(n)
  if type(n) == "number" and n == math.floor(n) then
    return n
  end
  return nil
end

local function fail(field, rule, value)
  return nil, errors.validation(field, rule, value)
end

--- Check that `params` has no keys outside `allowed`, so that a typo
-- such as `nmae` is reported instead of silently ignored.
function M.known_keys(params, allowed, prefix)
  for key, value in pairs(params) do
    if type(key) ~= "string" or not allowed[key] then
      local names = {}
      for name in pairs(allowed) do names[#names + 1] = name end
      table.sort(names)
      local field = prefix .. tostring(key)
      return fail(field, "unknown parameter (known: " ..
                  table.concat(names, ", ") .. ")", value)
    end
  end
  return true
end

--- Check an id used as a path segment (`account_id`, `relay_id`).
function M.path_id(field, value)
  if type(value) ~= "string" or value == "" then
    return fail(field, "expected a non-empty string", value)
  end
  if value == "." or value == ".." then
    return fail(field, "'.' and '..' are not ids", value)
  end
  if value:find("[%z\r\n]") then
    return fail(field, "must not contain CR, LF or NUL", value)
  end
  return value
end

local function boolean(field, value)
  if type(value) ~= "boolean" then
    return fail(field, "expected a boolean", value)
  end
  return value
end

local function non_empty_string(field, value)
  if type(value) ~= "string" or value == "" then
    return fail(field, "expected a non-empty string", value)
  end
  return value
end

local function integer_in(field, value, min, max)
  local n = type(value) == "number" and tointeger(value)
  if not n or n < min or n > max then
    return fail(field, string.format("expected an integer from %d to %d",
                                     min, max), value)
  end
  return n
end

-- RFC 3339 date-time: date, "T", time with optional fraction, and a "Z"
-- or numeric offset. Checked for shape here; the server checks ranges.
local RFC3339 = "^%d%d%d%d%-%d%d%-%d%d[Tt]%d%d:%d%d:%d%d"

local function timestamp(field, value)
  if type(value) ~= "string" then
    return fail(field, "expected an RFC 3339 date-time string", value)
  end
  local rest = value:match(RFC3339 .. "(.*)$")
  if rest then
    rest = rest:gsub("^%.%d+", "")
    if rest == "Z" or rest == "z" or rest:match("^[+-]%d%d:%d%d$") then
      return value
    end
  end
  return fail(field, "expected an RFC 3339 date-time such as " ..
              "2026-01-02T15:04:05Z", value)
end

-- Shape of the query parameters of list, with their checks.
local LIST_KEYS = {
  account_id = true, asc = true, per_page = true,
  created_after = true, created_before = true,
}

--- Validate list params; returns the query as an ordered array of
-- `{ name, value }` pairs with values already in their wire form.
function M.list_query(params)
  local ok, err = M.known_keys(params, LIST_KEYS, "")
  if not ok then return nil, err end

  local query = {}
  if params.asc ~= nil then
    local asc, e = boolean("asc", params.asc)
    if asc == nil then return nil, e end
    query[#query + 1] = { "asc", asc and "true" or "false" }
  end
  for _, key in ipairs { "created_after", "created_before" } do
    if params[key] ~= nil then
      local v, e = timestamp(key, params[key])
      if not v then return nil, e end
      query[#query + 1] = { key, v }
    end
  end
  if params.per_page ~= nil then
    -- The API documents no maximum page size; the server enforces its own.
    local n, e = integer_in("per_page", params.per_page, 1, 2 ^ 31 - 1)
    if not n then return nil, e end
    query[#query + 1] = { "per_page", string.format("%d", n) }
  end
  return query
end

--- Validate create params; returns the request body table.
function M.create_body(params)
  local ok, err = M.known_keys(params, { account_id = true, name = true }, "")
  if not ok then return nil, err end

  local name, e = non_empty_string("name", params.name)
  if not name then return nil, e end
  return { name = name }
end

local function lingering_subscribe(value)
  local field = "config.lingering_subscribe"
  if type(value) ~= "table" then
    return fail(field, "expected a table", value)
  end
  local ok, err = M.known_keys(value,
    { enabled = true, max_timeout_ms = true }, field .. ".")
  if not ok then return nil, err end

  local out = setmetatable({}, models.LingeringSubscribe)
  if value.enabled ~= nil then
    local v, e = boolean(field .. ".enabled", value.enabled)
    if v == nil then return nil, e end
    out.enabled = v
  end
  if value.max_timeout_ms ~= nil then
    local v, e = integer_in(field .. ".max_timeout_ms", value.max_timeout_ms,
                            M.MAX_TIMEOUT_MS_MIN, M.MAX_TIMEOUT_MS_MAX)
    if not v then return nil, e end
    out.max_timeout_ms = v
  end
  return out
end

local function origins(value)
  local field = "config.origin_fallback.origins"
  if type(value) ~= "table" then
    return fail(field, "expected an array of { url = ... } tables", value)
  end
  local n = #value
  for key in pairs(value) do
    if type(key) ~= "number" or key ~= math.floor(key) or key < 1
        or key > n then
      return fail(field, "expected an array (keys 1 to n), found key " ..
                  tostring(key), value)
    end
  end

  -- An empty list must still go out as [] rather than {}.
  local out = setmetatable({}, ARRAY_MT)
  for i = 1, n do
    local item_field = string.format("%s[%d]", field, i)
    local origin = value[i]
    if type(origin) ~= "table" then
      return fail(item_field, "expected a table { url = ... }", origin)
    end
    local ok, err = M.known_keys(origin, { url = true }, item_field .. ".")
    if not ok then return nil, err end
    local url, e = non_empty_string(item_field .. ".url", origin.url)
    if not url then return nil, e end
    out[i] = setmetatable({ url = url }, models.Origin)
  end
  return out
end

local function origin_fallback(value)
  local field = "config.origin_fallback"
  if type(value) ~= "table" then
    return fail(field, "expected a table", value)
  end
  local ok, err = M.known_keys(value, { enabled = true, origins = true },
                               field .. ".")
  if not ok then return nil, err end

  local out = setmetatable({}, models.OriginFallback)
  if value.enabled ~= nil then
    local v, e = boolean(field .. ".enabled", value.enabled)
    if v == nil then return nil, e end
    out.enabled = v
  end
  if value.origins ~= nil then
    local v, e = origins(value.origins)
    if not v then return nil, e end
    out.origins = v
  end
  return out
end

local function config(value)
  if type(value) ~= "table" then
    return fail("config", "expected a table", value)
  end
  local ok, err = M.known_keys(value,
    { lingering_subscribe = true, origin_fallback = true }, "config.")
  if not ok then return nil, err end

  local out = setmetatable({}, models.RelayConfig)
  if value.lingering_subscribe ~= nil then
    local v, e = lingering_subscribe(value.lingering_subscribe)
    if not v then return nil, e end
    out.lingering_subscribe = v
  end
  if value.origin_fallback ~= nil then
    local v, e = origin_fallback(value.origin_fallback)
    if not v then return nil, e end
    out.origin_fallback = v
  end

  -- The API keeps origin fallback and lingering subscribe mutually
  -- exclusive, so a request that enables both cannot succeed.
  if out.lingering_subscribe and out.lingering_subscribe.enabled == true
      and out.origin_fallback and out.origin_fallback.enabled == true then
    return fail("config", "lingering_subscribe.enabled and " ..
                "origin_fallback.enabled cannot both be true", "both true")
  end
  return out
end

--- Validate update params; returns the request body table.
function M.update_body(params)
  local ok, err = M.known_keys(params,
    { account_id = true, name = true, config = true }, "")
  if not ok then return nil, err end

  local body = {}
  if params.name ~= nil then
    local name, e = non_empty_string("name", params.name)
    if not name then return nil, e end
    body.name = name
  end
  if params.config ~= nil then
    local c, e = config(params.config)
    if not c then return nil, e end
    body.config = c
  end
  return setmetatable(body, { __jsontype = "object" })
end

--- Validate token rotation params; returns the request body table.
function M.rotate_body(params)
  local ok, err = M.known_keys(params, { account_id = true, type = true }, "")
  if not ok then return nil, err end

  if not M.TOKEN_TYPES[params.type] then
    return fail("type", "expected \"publish_subscribe\" or \"subscribe\"",
                params.type)
  end
  return { type = params.type }
end

--- Validate the params of an operation that takes only `account_id`.
function M.no_body(params)
  local ok, err = M.known_keys(params, { account_id = true }, "")
  if not ok then return nil, err end
  return true
end

return M
