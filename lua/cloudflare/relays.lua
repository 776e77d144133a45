--- The MoQ relays resource: `cf.moq.relays` and `cf.moq.relays.tokens`.
-- @module cloudflare.relays

local errors = require "cloudflare.errors"
local models = require "cloudflare.models"
local ensure = require "cloudflare.ensure"
local paginate = require "cloudflare.paginate"
local validate = require "cloudflare.validate"

local M = {}

local Relays = { __name = "cloudflare.Relays" }
Relays.__index = Relays
M.Relays = Relays

local Tokens = { __name = "cloudflare.RelayTokens" }
Tokens.__index = Tokens
M.Tokens = Tokens

local Page = { __name = "cloudflare.RelayPage" }
Page.__index = Page
M.Page = Page

-- Raise for misuse: a method called with '.' or params of the wrong type.
local function check_call(self, class, method, params, params_arg)
  if getmetatable(self) ~= class then
    local owner = class == Tokens and "relays.tokens" or "relays"
    error(string.format("%s.%s: call it with ':' (%s:%s(...)), not '.'",
                        owner, method, owner, method), 3)
  end
  if params ~= nil and type(params) ~= "table" then
    error(string.format("%s: params (argument %d) must be a table, got %s",
                        method, params_arg, type(params)), 3)
  end
end

function M.new(client)
  local relays = setmetatable({ client = client }, Relays)
  relays.tokens = setmetatable({ client = client }, Tokens)
  return relays
end

function Relays.__tostring()
  return "cloudflare.Relays (methods: list, get, create, update, " ..
    "delete, each, pages, all, find_by_name, ensure; tokens:rotate)"
end

function Tokens.__tostring()
  return "cloudflare.RelayTokens (methods: rotate)"
end

--- Fetch the page after this one, following the keyset cursor.
-- @return the next page; nil when this page was the last; or nil and an
--   error
function Page:next_page()
  return paginate.next_page(self)
end

function Page:__tostring()
  local info = rawget(self, "result_info") or {}
  return string.format("cloudflare.RelayPage (relays: %d, count=%s, " ..
                       "total=%s; methods: next_page)", #self,
                       tostring(info.count), tostring(info.total))
end

-- Check the common parts of a call: the account id and, where given,
-- the relay id.
local function prepare(client, params, relay_id)
  local account_id, err = client:_account_id(params)
  if not account_id then return nil, err end
  account_id, err = validate.path_id("account_id", account_id)
  if not account_id then return nil, err end
  if relay_id ~= false then
    local ok, e = validate.path_id("relay_id", relay_id)
    if not ok then return nil, e end
  end
  return account_id
end

--- List relays, newest first (oldest first with `asc = true`).
-- @tparam[opt] table params `asc`, `per_page`, `created_after`,
--   `created_before`, `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   (seconds for the whole call, retries included) and `headers`
-- @return a page: an array of relay summaries with `result_info`
--   (`count`, `total`); or nil and an error
function Relays:list(params, opts)
  check_call(self, Relays, "list", params, 1)
  params = params or {}

  local query, err = validate.list_query(params)
  if not query then return nil, err end
  local account_id, e = prepare(self.client, params, false)
  if not account_id then return nil, e end

  local op = {
    method = "GET", idempotent = true, account_id = account_id,
    query = query,
    schema = { array = models.schemas.summary, mt = Page },
  }
  local result, call_err = self.client:_call(op, opts)
  if not result then return nil, call_err end

  local info, info_err = models.shape(models.schemas.result_info,
    op.envelope.result_info or {}, "result_info")
  if not info then
    return nil, errors.new("ResponseDecodeError", "unexpected response: " ..
                           info_err, { status = 200 })
  end
  result.result_info = info
  return paginate.adopt(result, self, params, opts)
end

--- Get one relay with its config and status (never its tokens).
-- @tparam string relay_id the relay's `uid`
-- @tparam[opt] table params `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   and `headers`
-- @return the relay, or nil and an error
function Relays:get(relay_id, params, opts)
  check_call(self, Relays, "get", params, 2)
  params = params or {}

  local ok, err = validate.no_body(params)
  if not ok then return nil, err end
  local account_id, e = prepare(self.client, params, relay_id)
  if not account_id then return nil, e end

  return self.client:_call({
    method = "GET", idempotent = true, account_id = account_id,
    segments = { relay_id },
    schema = models.schemas.relay,
  }, opts)
end

--- Create a relay. The result contains both tokens, shown only this once.
-- @tparam table params `name` (required), `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   and `headers`
-- @return the created relay, or nil and an error
function Relays:create(params, opts)
  check_call(self, Relays, "create", params, 1)
  if params == nil then
    error("create: params (argument 1) must be a table, got nil", 2)
  end

  local body, err = validate.create_body(params)
  if not body then return nil, err end
  local account_id, e = prepare(self.client, params, false)
  if not account_id then return nil, e end

  local relay, call_err = self.client:_call({
    method = "POST", account_id = account_id, body = body,
    schema = models.schemas.created,
  }, opts)
  if not relay then return nil, call_err end
  return relay
end

--- Update a relay's name or config. Fields left out keep their values;
-- a config sub-object that is present replaces the stored one whole.
-- @tparam string relay_id the relay's `uid`
-- @tparam table params `name`, `config`, `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   and `headers`
-- @return the relay, or nil and an error
function Relays:update(relay_id, params, opts)
  check_call(self, Relays, "update", params, 2)
  if params == nil then
    error("update: params (argument 2) must be a table, got nil", 2)
  end

  local body, err = validate.update_body(params)
  if not body then return nil, err end
  local account_id, e = prepare(self.client, params, relay_id)
  if not account_id then return nil, e end

  return self.client:_call({
    method = "PUT", idempotent = true, account_id = account_id,
    segments = { relay_id },
    body = body, schema = models.schemas.relay,
  }, opts)
end

--- Delete a relay.
-- @tparam string relay_id the relay's `uid`
-- @tparam[opt] table params `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   and `headers`
-- @return true, or nil and an error
function Relays:delete(relay_id, params, opts)
  check_call(self, Relays, "delete", params, 2)
  params = params or {}

  local ok, err = validate.no_body(params)
  if not ok then return nil, err end
  local account_id, e = prepare(self.client, params, relay_id)
  if not account_id then return nil, e end

  local result, call_err = self.client:_call({
    method = "DELETE", idempotent = true, account_id = account_id,
    segments = { relay_id },
    allow_empty = true,
  }, opts)
  if result == nil then return nil, call_err end
  return true
end

--- Rotate one of a relay's tokens. The old token stops working at once.
-- @tparam string relay_id the relay's `uid`
-- @tparam table params `type` (`"publish_subscribe"` or `"subscribe"`),
--   `account_id`
-- @tparam[opt] table opts per-call `timeout`, `max_retries`, `deadline`
--   and `headers`
-- @return the new token `{ token, type }`, or nil and an error
function Tokens:rotate(relay_id, params, opts)
  check_call(self, Tokens, "rotate", params, 2)
  if params == nil then
    error("rotate: params (argument 2) must be a table, got nil", 2)
  end

  local body, err = validate.rotate_body(params)
  if not body then return nil, err end
  local account_id, e = prepare(self.client, params, relay_id)
  if not account_id then return nil, e end

  local token, call_err = self.client:_call({
    method = "POST", account_id = account_id,
    segments = { relay_id, "tokens", "rotate" },
    body = body, schema = models.schemas.token,
  }, opts)
  if not token then return nil, call_err end
  return token
end

--- Iterate over every relay across pages.
--
--    for relay, err in relays:each { asc = true } do
--      if not relay then error(tostring(err)) end
--      print(relay.uid, relay.name)
--    end
--
-- @tparam[opt] table params the params of `list`, plus `max_items`
-- @tparam[opt] table opts per-call options for each request
-- @return an iterator yielding relay summaries; a failure yields
--   `false, err` once and ends the loop
function Relays:each(params, opts)
  check_call(self, Relays, "each", params, 1)
  return paginate.each(self, params, opts)
end

--- Iterate over pages; each step yields a `cloudflare.RelayPage`.
-- @tparam[opt] table params the params of `list`
-- @tparam[opt] table opts per-call options for each request
-- @return an iterator; a failure yields `false, err` once
function Relays:pages(params, opts)
  check_call(self, Relays, "pages", params, 1)
  return paginate.pages(self, params, opts)
end

--- Collect every relay across pages into one array.
-- @tparam[opt] table params the params of `list`, plus `max_items`
-- @tparam[opt] table opts per-call options for each request
-- @return an array of relay summaries, or nil and an error
function Relays:all(params, opts)
  check_call(self, Relays, "all", params, 1)
  return paginate.all(self, params, opts)
end

--- Make a relay with this name and config exist, for idempotent
-- automation: create it if no relay has the name, update its config if it
-- differs, or leave it alone. Two relays with the name are an error.
-- @tparam table params `name` (required), `config`, `account_id`
-- @tparam[opt] table opts per-call options for each request
-- @return the relay and what was done (`"created"`, `"updated"` or
--   `"unchanged"`); the tokens are present only after `"created"`. Or nil
--   and an error.
function Relays:ensure(params, opts)
  check_call(self, Relays, "ensure", params, 1)
  if params == nil then
    error("ensure: params (argument 1) must be a table, got nil", 2)
  end
  return ensure.ensure(self, params, opts)
end

--- Find every relay with exactly this name.
-- @tparam string name the relay name
-- @tparam[opt] table params `account_id`
-- @tparam[opt] table opts per-call options for each request
-- @return an array of relay summaries (empty when none matches), or nil
--   and an error
function Relays:find_by_name(name, params, opts)
  check_call(self, Relays, "find_by_name", params, 2)
  if type(name) ~= "string" or name == "" then
    return nil, errors.validation("name", "expected a non-empty string", name)
  end
  local list_params = { account_id = params and params.account_id,
                        asc = true, per_page = paginate.DEFAULT_PER_PAGE }
  if params then
    local ok, err = validate.no_body(params)
    if not ok then return nil, err end
  end
  local found = {}
  for relay, err in paginate.each(self, list_params, opts) do
    if not relay then
      return nil, err
    end
    if relay.name == name then
      found[#found + 1] = relay
    end
  end
  return found
end

return M
