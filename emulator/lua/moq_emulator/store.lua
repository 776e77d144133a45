-- In-memory relay store.
--
-- nginx runs as a single process (`master_process off`), so this module's
-- tables are the whole state of the emulator. Deleted relays stay in the
-- store with `deleted = true`, hidden from the API but visible to the test
-- routes.

local clock = require "moq_emulator.clock"
local json = require "moq_emulator.json"

local store = {}

local format_time = clock.format_rfc3339

-- Every stored relay, by uid.
local relays_by_uid = {}

-- Relays of each account in insertion order, by account_id.
local relays_by_account = {}

-- Insertion counter: the tie-breaker of relays with equal `created`.
local sequence = 0

local urandom

--- Returns `length` random lowercase hex characters from /dev/urandom.
function store.random_hex(length)
  if not urandom then
    urandom = assert(io.open("/dev/urandom", "rb"))
  end
  local bytes = urandom:read(math.ceil(length / 2))
  local hex = bytes:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
  return hex:sub(1, length)
end

-- NOTE: tokens are 64 random hex characters here. The live API does not
-- publish its token format, so clients should treat tokens as opaque.
local function new_token()
  return store.random_hex(64)
end

local function new_uid()
  while true do
    local uid = store.random_hex(32)
    if not relays_by_uid[uid] then
      return uid
    end
  end
end

--- Copies a decoded JSON value, keeping array markers.
function store.copy(value)
  if type(value) ~= "table" or value == json.null then
    return value
  end
  local result = {}
  for key, item in pairs(value) do
    result[key] = store.copy(item)
  end
  return setmetatable(result, getmetatable(value))
end

--- Returns the config that create sets: lingering subscribe enabled with a
-- 30000 ms ceiling, origin fallback disabled with no origins.
function store.default_config()
  return {
    lingering_subscribe = { enabled = true, max_timeout_ms = 30000 },
    origin_fallback = { enabled = false, origins = json.array() },
  }
end

--- Removes every relay.
function store.reset()
  relays_by_uid = {}
  relays_by_account = {}
  sequence = 0
end

--- Stores a new relay and returns it.
-- `fields` contains `account_id` and `name`, and optionally `uid`, `created`
-- and `modified` (microseconds), `config`, `status` and `deleted`. Without
-- `created`, the relay gets the next tick of the emulator's clock.
function store.insert(fields)
  local created = fields.created or clock.next()
  sequence = sequence + 1
  local relay = {
    uid = fields.uid or new_uid(),
    account_id = fields.account_id,
    name = fields.name,
    created = created,
    modified = fields.modified or created,
    config = fields.config or store.default_config(),
    status = fields.status,
    deleted = fields.deleted or false,
    token_publish_subscribe = new_token(),
    token_subscribe = new_token(),
    sequence = sequence,
  }
  relays_by_uid[relay.uid] = relay
  local list = relays_by_account[relay.account_id]
  if not list then
    list = {}
    relays_by_account[relay.account_id] = list
  end
  list[#list + 1] = relay
  return relay
end

--- Returns the relay with this uid whatever its account and state, or nil.
function store.lookup(uid)
  return relays_by_uid[uid]
end

--- Returns the relay of this account with this uid unless it is deleted.
function store.find(account_id, uid)
  local relay = relays_by_uid[uid]
  if relay and relay.account_id == account_id and not relay.deleted then
    return relay
  end
  return nil
end

--- Records a change to a relay: sets `modified` to the next clock tick.
function store.touch(relay)
  relay.modified = clock.next()
end

--- Replaces the token of the given type and returns the new value.
function store.rotate_token(relay, token_type)
  local token = new_token()
  relay["token_" .. token_type] = token
  store.touch(relay)
  return token
end

-- Orders relays by `created`, then by insertion for equal times.
local function created_ascending(a, b)
  if a.created ~= b.created then
    return a.created < b.created
  end
  return a.sequence < b.sequence
end

local function created_descending(a, b)
  return created_ascending(b, a)
end

--- Lists the live relays of an account.
-- `filter` contains `asc` (boolean), `per_page`, and optionally
-- `created_after` and `created_before`, each `{ usec = n, remainder = b }`
-- as `clock.parse_rfc3339` returns them. Both bounds are strict.
-- Returns the page and the number of relays that match the bounds.
function store.list(account_id, filter)
  local after, before = filter.created_after, filter.created_before
  local matches = {}
  for _, relay in ipairs(relays_by_account[account_id] or {}) do
    local keep = not relay.deleted
    if keep and after then
      keep = relay.created > after.usec
    end
    if keep and before then
      -- A bound with digits past the microsecond lies just after `usec`,
      -- so a relay created at exactly `usec` is before it.
      keep = relay.created < before.usec
        or (relay.created == before.usec and before.remainder)
    end
    if keep then
      matches[#matches + 1] = relay
    end
  end
  table.sort(matches, filter.asc and created_ascending
    or created_descending)
  local page = {}
  for i = 1, math.min(filter.per_page, #matches) do
    page[i] = matches[i]
  end
  return page, #matches
end

local summary_keys = { "uid", "name", "created", "modified" }

local detail_keys = {
  "uid", "name", "created", "modified", "config", "status",
  "token_publish_subscribe", "token_subscribe", "account_id", "deleted",
}

--- Returns the list item of a relay: uid, name, created, modified.
function store.summary_view(relay)
  return json.object({
    uid = relay.uid,
    name = relay.name,
    created = format_time(relay.created),
    modified = format_time(relay.modified),
  }, summary_keys)
end

--- Returns the get and update result: the summary, config and, when set,
-- status. Tokens are never part of it.
function store.relay_view(relay)
  local view = store.summary_view(relay)
  view.config = store.copy(relay.config)
  view.status = relay.status
  return json.object(view, detail_keys)
end

--- Returns the create result: the summary, config and both tokens.
function store.created_view(relay)
  local view = store.summary_view(relay)
  view.config = store.copy(relay.config)
  view.token_publish_subscribe = relay.token_publish_subscribe
  view.token_subscribe = relay.token_subscribe
  return json.object(view, detail_keys)
end

--- Returns everything stored about a relay, for the test routes. `status`
-- is null when unset.
function store.stored_view(relay)
  local view = store.created_view(relay)
  view.status = relay.status or json.null
  view.account_id = relay.account_id
  view.deleted = relay.deleted
  return json.object(view, detail_keys)
end

return store
