-- Test-only routes under /__emulator/: no authentication, plain JSON in
-- and out (not the API envelope). Errors are `{"error": "message"}`.

local auth = require "moq_emulator.auth"
local clock = require "moq_emulator.clock"
local faults = require "moq_emulator.faults"
local journal = require "moq_emulator.journal"
local json = require "moq_emulator.json"
local ratelimit = require "moq_emulator.ratelimit"
local request = require "moq_emulator.request"
local response = require "moq_emulator.response"
local store = require "moq_emulator.store"
local validate = require "moq_emulator.validate"

local admin = {}

admin.PREFIX = "/__emulator"

-- Maximum `count` of one seed request.
local MAX_SEED_COUNT = 5000

local function ok()
  return response.json(200, { ok = true })
end

local function failure(status, message)
  return response.json(status, { error = message })
end

-- Decodes a body that must be a JSON object. Returns the object, or nil
-- and an error response.
local function object_body(req)
  local body, err = validate.object_body(req.body)
  if not body then
    return nil, failure(400, err.message)
  end
  return body
end

local function reject_unknown_fields(body, allowed)
  local known, err = validate.check_fields(body, allowed, "")
  if not known then
    return failure(400, err.message)
  end
  return nil
end

--- Clears relays, journal, faults and rate-limit windows, and puts the
-- command-line credentials back in force.
local function reset()
  store.reset()
  journal.clear()
  faults.clear()
  ratelimit.reset()
  auth.restore()
  return ok()
end

local function is_account_id(value)
  return type(value) == "string" and #value <= 64
    and value:find("^[A-Za-z0-9]+$") ~= nil
end

local seed_fields = {
  account_id = true, name = true, created = true, modified = true,
  config = true, status = true, uid = true, deleted = true, count = true,
}

local function parse_time_field(body, key)
  if body[key] == nil then
    return true
  end
  local usec = clock.parse_rfc3339(body[key])
  if not usec then
    return nil, key .. " must be an RFC 3339 date-time"
  end
  return usec
end

-- Checks `status`, `uid`, `deleted` and `count` of a seed body. Returns
-- the count, or nil and a message.
local function check_seed_extras(body)
  if body.status ~= nil and body.status ~= "connected"
    and body.status ~= json.null then
    return nil, "status must be \"connected\" or null"
  end
  if body.deleted ~= nil and type(body.deleted) ~= "boolean" then
    return nil, "deleted must be a boolean"
  end
  local count = body.count
  if count ~= nil and (not validate.is_integer(count) or count < 1
      or count > MAX_SEED_COUNT) then
    return nil, "count must be an integer from 1 to " .. MAX_SEED_COUNT
  end
  if body.uid ~= nil then
    if type(body.uid) ~= "string" or not body.uid:find("^%x+$")
      or #body.uid ~= 32 or body.uid:find("%u") then
      return nil, "uid must be 32 lowercase hex characters"
    end
    if store.lookup(body.uid) then
      return nil, "uid " .. body.uid .. " already exists"
    end
    if count ~= nil and count > 1 then
      return nil, "uid cannot be combined with a count above 1"
    end
  end
  return count
end

-- Validates a seed body. Returns the relay fields and the count (nil when
-- absent), or nil and a message.
local function seed_request(body)
  if not is_account_id(body.account_id) then
    return nil, nil, "account_id must be 1 to 64 letters and digits"
  end
  local name, err = validate.name(body.name)
  if not name then
    return nil, nil, err.message
  end
  local count
  count, err = check_seed_extras(body)
  if err then
    return nil, nil, err
  end
  local created, modified
  created, err = parse_time_field(body, "created")
  if created then
    modified, err = parse_time_field(body, "modified")
  end
  if err then
    return nil, nil, err
  end
  local config = store.default_config()
  if body.config ~= nil then
    config, err = validate.merge_config(config, body.config)
    if not config then
      return nil, nil, err.message
    end
  end
  local fields = {
    account_id = body.account_id, name = name, config = config,
    created = created ~= true and created or nil,
    modified = modified ~= true and modified or nil,
    status = body.status ~= json.null and body.status or nil,
    uid = body.uid, deleted = body.deleted,
  }
  return fields, count
end

--- Stores relays with exact fields. Ties in `created` are allowed, and
-- seeding does not move the emulator's clock.
local function seed(req)
  local body, err = object_body(req)
  if not body then
    return err
  end
  local rejected = reject_unknown_fields(body, seed_fields)
  if rejected then
    return rejected
  end
  local fields, count, message = seed_request(body)
  if not fields then
    return failure(400, message)
  end
  if count == nil then
    return response.json(200, store.stored_view(store.insert(fields)))
  end
  local relays = json.array()
  for i = 1, count do
    local copy = store.copy(fields)
    copy.name = fields.name .. "-" .. i
    relays[i] = store.stored_view(store.insert(copy))
  end
  return response.json(200, relays)
end

local function stored_relay(uid)
  local relay = store.lookup(uid)
  if not relay then
    return failure(404, "no relay with uid " .. uid)
  end
  return response.json(200, store.stored_view(relay))
end

local function set_status(req, uid)
  local relay = store.lookup(uid)
  if not relay then
    return failure(404, "no relay with uid " .. uid)
  end
  local body, err = object_body(req)
  if not body then
    return err
  end
  local rejected = reject_unknown_fields(body, { status = true })
  if rejected then
    return rejected
  end
  if body.status == json.null then
    relay.status = nil
  elseif body.status == "connected" then
    relay.status = "connected"
  else
    return failure(400, "status must be \"connected\" or null")
  end
  return response.json(200, store.stored_view(relay))
end

local function add_faults(req)
  local body, err = object_body(req)
  if not body then
    return err
  end
  local rejected = reject_unknown_fields(body,
    { endpoint = true, responses = true })
  if rejected then
    return rejected
  end
  local queued, message = faults.add(body.endpoint, body.responses)
  if not queued then
    return failure(400, message)
  end
  return response.json(200, { ok = true, queued = queued })
end

-- Reads the `accounts` list of a credential entry.
local function entry_accounts(entry, where)
  local accounts = entry.accounts
  if accounts == nil then
    return {}
  end
  if not json.is_array(accounts) then
    return nil, where .. ".accounts must be an array of account ids"
  end
  for _, account_id in ipairs(accounts) do
    if not is_account_id(account_id) then
      return nil, where .. ".accounts must be an array of account ids"
    end
  end
  return accounts
end

local function read_tokens(list, credentials)
  for i, entry in ipairs(list) do
    local where = "tokens[" .. (i - 1) .. "]"
    if not json.is_object(entry) or not auth.is_valid_token(entry.token) then
      return nil, where .. ".token must be a string of letters, digits, "
        .. "'_' and '-'"
    end
    local accounts, err = entry_accounts(entry, where)
    if not accounts then
      return nil, err
    end
    auth.add_token(credentials, entry.token, accounts)
  end
  return true
end

local function read_api_keys(list, credentials)
  for i, entry in ipairs(list) do
    local where = "api_keys[" .. (i - 1) .. "]"
    if not json.is_object(entry) or type(entry.email) ~= "string"
      or type(entry.key) ~= "string" then
      return nil, where .. " must have string email and key"
    end
    local accounts, err = entry_accounts(entry, where)
    if not accounts then
      return nil, err
    end
    auth.add_api_key(credentials, entry.email, entry.key, accounts)
  end
  return true
end

--- Replaces the accepted credentials until the next reset.
local function replace_credentials(req)
  local body, err = object_body(req)
  if not body then
    return err
  end
  local rejected = reject_unknown_fields(body,
    { tokens = true, api_keys = true })
  if rejected then
    return rejected
  end
  local credentials = auth.new_credentials()
  for key, read in pairs({ tokens = read_tokens,
      api_keys = read_api_keys }) do
    local list = body[key]
    if list ~= nil then
      if not json.is_array(list) then
        return failure(400, key .. " must be an array")
      end
      local done, message = read(list, credentials)
      if not done then
        return failure(400, message)
      end
    end
  end
  auth.replace(credentials)
  return ok()
end

-- Handlers by path (segments after /__emulator joined with `/`, with a
-- uid replaced by `*`) and method.
local routes = {
  ["health"] = { GET = ok },
  ["reset"] = { POST = reset },
  ["relays"] = { POST = seed },
  ["relays/*"] = { GET = function(_, uid) return stored_relay(uid) end },
  ["relays/*/status"] = { PUT = set_status },
  ["faults"] = {
    GET = function() return response.json(200, faults.list()) end,
    POST = add_faults,
    DELETE = function() faults.clear() return ok() end,
  },
  ["journal"] = {
    GET = function() return response.json(200, journal.list()) end,
    DELETE = function() journal.clear() return ok() end,
  },
  ["credentials"] = { PUT = replace_credentials },
}

--- Handles a request under /__emulator/ and returns the response.
function admin.handle(req)
  local segments = request.split_path(req.path:sub(#admin.PREFIX + 1))
  local uid
  if segments[1] == "relays" and segments[2] then
    uid = request.decode_segment(segments[2])
    segments[2] = "*"
  end
  local methods = routes[table.concat(segments, "/")]
  if not methods then
    return failure(404, "no test route " .. req.path)
  end
  local handler = methods[req.method]
  if not handler then
    return failure(405, "method " .. req.method .. " not allowed on "
      .. req.path)
  end
  return handler(req, uid)
end

return admin
