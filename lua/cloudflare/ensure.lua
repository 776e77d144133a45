--- `relays:ensure`: make a relay with a given name and config exist.
-- @module cloudflare.ensure

local errors = require "cloudflare.errors"
local models = require "cloudflare.models"
local validate = require "cloudflare.validate"

local M = {}

-- True when every field set in `want` has the same value in `have`. A
-- list (origins) must match in length too, so that an empty list
-- requests clearing a non-empty one.
local function covers(have, want)
  if type(want) ~= "table" then
    return have == want
  end
  if type(have) ~= "table" then
    return false
  end
  local is_list = getmetatable(have) == models.Origins or #have > 0
    or #want > 0
  if is_list and #want ~= #have then
    return false
  end
  for key, value in pairs(want) do
    if not covers(have[key], value) then
      return false
    end
  end
  return true
end
M.covers = covers

--- Create the relay named `params.name` if none exists, update its
-- config if it differs, or leave it alone.
-- @return the relay and the action (`"created"`, `"updated"` or
--   `"unchanged"`), or nil and an error
function M.ensure(relays, params, opts)
  local ok, err = validate.known_keys(params,
    { name = true, config = true, account_id = true }, "")
  if not ok then return nil, err end
  if type(params.name) ~= "string" or params.name == "" then
    return nil, errors.validation("name", "expected a non-empty string",
                                  params.name)
  end
  -- Validate the config before anything is sent.
  if params.config ~= nil then
    local _, config_err = validate.update_body { config = params.config }
    if config_err then return nil, config_err end
  end
  local scope = { account_id = params.account_id }

  local found, find_err = relays:find_by_name(params.name, scope, opts)
  if not found then return nil, find_err end

  if #found > 1 then
    local uids = {}
    for i, relay in ipairs(found) do uids[i] = relay.uid end
    return nil, errors.new("ConflictError", string.format(
      "%d relays are named %q (%s); rename or delete all but one, then " ..
      "call ensure again", #found, params.name, table.concat(uids, ", ")),
      { field = "name", uids = uids })
  end

  if #found == 0 then
    local created, create_err = relays:create(
      { name = params.name, account_id = params.account_id }, opts)
    if not created then return nil, create_err end
    if params.config == nil or covers(created.config, params.config) then
      return created, "created"
    end
    local updated, update_err = relays:update(created.uid,
      { config = params.config, account_id = params.account_id }, opts)
    if not updated then
      -- The relay exists now: return its tokens with the error, since the
      -- API shows them only once.
      update_err.relay = created
      return nil, update_err
    end
    -- The tokens exist only in the create response: keep them.
    updated.token_publish_subscribe = created.token_publish_subscribe
    updated.token_subscribe = created.token_subscribe
    return setmetatable(updated, models.CreatedRelay), "created"
  end

  local relay, get_err = relays:get(found[1].uid, scope, opts)
  if not relay then return nil, get_err end
  if params.config == nil or covers(relay.config, params.config) then
    return relay, "unchanged"
  end
  local updated, update_err = relays:update(relay.uid,
    { config = params.config, account_id = params.account_id }, opts)
  if not updated then return nil, update_err end
  return updated, "updated"
end

return M
