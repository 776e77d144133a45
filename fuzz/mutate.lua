--- A structure-aware mutator for JSON inputs, used by every fuzz target
-- through LLVMFuzzerCustomMutator in fuzz/harness.c.
--
-- Byte-level mutations seldom turn a valid envelope into another valid
-- envelope with one field of the wrong type, which is where response
-- handling breaks. This mutator decodes the input, changes one value in
-- the tree (a value of another type, a removed or added field, a copied
-- subtree) and encodes the result. When the input does not decode, it
-- returns nil and the harness falls back to libFuzzer's own mutations.

local core = require "cloudflare.core"

local M = {}

-- Nodes visited per input: bounds the work on large documents.
local MAX_NODES = 4096

-- Field names of the API's envelope, models and request params.
local FIELD_NAMES = {
  "success", "errors", "messages", "result", "result_info", "code",
  "message", "error_chain", "documentation_url", "source", "pointer",
  "uid", "name", "created", "modified", "status", "config",
  "lingering_subscribe", "origin_fallback", "origins", "url", "enabled",
  "max_timeout_ms", "token", "token_subscribe", "token_publish_subscribe",
  "type", "count", "total", "page", "per_page", "total_count",
  "account_id", "asc", "created_after", "created_before", "max_items",
}

local function array(...)
  return setmetatable({ ... }, core.array_mt)
end

-- Makers of replacement values. Each call builds a new table, so that no
-- table is shared between two places of a document.
local VALUE_MAKERS = {
  function() return true end,
  function() return false end,
  function() return core.null end,
  function() return 0 end,
  function() return 1 end,
  function() return -1 end,
  function() return -0.0 end,
  function() return 0.5 end,
  function() return 1e308 end,
  function() return 300001 end,
  function() return 9007199254740993 end,
  function() return math.maxinteger end,
  function() return math.mininteger end,
  function() return "" end,
  function() return "x" end,
  function() return "subscribe" end,
  function() return "publish_subscribe" end,
  function() return "connected" end,
  function() return "4b0d1e6f2a9c4e3b8d5f7a1c0e2b4d6f" end,
  function() return "https://origin.example.com/moq" end,
  function() return "2026-01-02T15:04:05Z" end,
  function() return "2026-12-04T15:20:01.123456789+05:30" end,
  function() return "9999-12-31T23:59:60Z" end,
  function() return "0000-01-01T00:00:00z" end,
  function() return "caf\u{e9} \u{1F600} \0 \"q\" \\ \n" end,
  function() return string.rep("a", 300) end,
  function() return {} end,
  function() return array() end,
  function() return array(1, "two", core.null) end,
  function() return { code = 1000, message = "error" } end,
  function() return { enabled = true, max_timeout_ms = 30000 } end,
  function() return array({ url = "https://origin.example.com/moq" }) end,
}

-- A small linear congruential generator, so that the mutator does not
-- touch math.random, which the code under test may use.
local rng_state = 0

local function random(n)
  rng_state = rng_state * 6364136223846793005 + 1442695040888963407
  return ((rng_state >> 33) % n) + 1
end

-- Collect every table of the tree with the keys it holds, as
-- { table, key } slots, breadth first.
local function collect_slots(root)
  local slots, queue, head = {}, { root }, 1
  while queue[head] and #slots < MAX_NODES do
    local node = queue[head]
    head = head + 1
    for key, value in pairs(node) do
      slots[#slots + 1] = { node, key }
      if type(value) == "table" then
        queue[#queue + 1] = value
      end
    end
  end
  return slots, queue
end

-- Deep copy, so that a copied subtree does not create a cycle.
local function copy(value, depth)
  if type(value) ~= "table" or depth > 64 then
    return value
  end
  local out = setmetatable({}, getmetatable(value))
  for key, item in pairs(value) do
    out[key] = copy(item, depth + 1)
  end
  return out
end

local function is_sequence(node)
  return #node > 0 or getmetatable(node) == core.array_mt
end

-- Remove a slot. Array elements shift down, so that no gap appears.
local function remove_slot(node, key)
  if type(key) == "number" then
    table.remove(node, key)
  else
    node[key] = nil
  end
end

-- Add a value to a table: an element to an array, a field to an object.
local function add_to(node, value)
  if is_sequence(node) then
    table.insert(node, random(#node + 1), value)
  else
    node[FIELD_NAMES[random(#FIELD_NAMES)]] = value
  end
end

local function mutate_tree(root)
  local slots, tables = collect_slots(root)
  local choice = random(5)

  if #slots == 0 or choice == 1 then
    add_to(tables[random(#tables)], VALUE_MAKERS[random(#VALUE_MAKERS)]())
    return root
  end

  local slot = slots[random(#slots)]
  local node, key = slot[1], slot[2]
  if choice == 2 then
    node[key] = VALUE_MAKERS[random(#VALUE_MAKERS)]()
  elseif choice == 3 then
    remove_slot(node, key)
  elseif choice == 4 then
    local source = slots[random(#slots)]
    node[key] = copy(source[1][source[2]], 0)
  else
    -- Wrap the value in an array or in an object under a known field.
    local value = node[key]
    if random(2) == 1 then
      node[key] = array(value)
    else
      node[key] = { [FIELD_NAMES[random(#FIELD_NAMES)]] = value }
    end
  end
  return root
end

--- Return a mutated copy of the JSON text `data`, at most `max_size`
-- bytes, or nil when `data` is not JSON or the result is too large.
-- `seed` makes the choice of mutation reproducible.
function M.mutate(data, max_size, seed)
  rng_state = seed
  local root = core.json_decode(data)
  if root == nil then
    return nil
  end
  if type(root) ~= "table" then
    root = VALUE_MAKERS[random(#VALUE_MAKERS)]()
    if type(root) ~= "table" then
      root = { [FIELD_NAMES[random(#FIELD_NAMES)]] = root }
    end
  end

  local text = core.json_encode(mutate_tree(root))
  if text == nil or #text > max_size then
    return nil
  end
  return text
end

return M
