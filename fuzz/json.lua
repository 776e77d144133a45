--- fuzz_json: json_decode and json_encode of cloudflare.core alone.
--
-- Each input is decoded. When it decodes, the encoded form must decode to
-- the same data, and a second encode and decode pass must change nothing
-- more. A decode with a depth limit must return the same data or report
-- the nesting. A decode failure must
-- return nil and a message of the form "invalid JSON at byte N: ...".
-- Then one value of the decoded tree at a time is replaced by a value
-- that has no JSON form, to run the encoder's error paths, which quote
-- keys from the input into fixed-size buffers.

local core = require "cloudflare.core"
local roundtrip = require "roundtrip"

-- A small depth limit, to reach the decoder's nesting check often.
local SMALL_MAX_DEPTH = 3

-- Variants with one value that cannot be encoded, per input.
local INVALID_VARIANTS = 4

-- Upper bound on the length of an encoder error message. The encoder
-- shortens long paths and keys, so a longer message means that the
-- shortening failed.
local MAX_MESSAGE_LENGTH = 512

-- Values that json_encode must reject. Each maker receives the key of
-- the slot it fills, so that input bytes reach the error messages.
local INVALID_VALUES = {
  function() return 0 / 0 end,
  function() return math.huge end,
  function() return -math.huge end,
  function() return print end,
  function() return coroutine.create(print) end,
  function(key) return tostring(key) .. "\xff" end,
  function(key) return "\xed\xa0\x80" .. tostring(key) end,
  function() return setmetatable({}, { __jsontype = "list" }) end,
  function() return { 1, 2, [4] = 4 } end,
  function(key) return { 1, [tostring(key)] = 2 } end,
  function() return { [1.5] = 1 } end,
  function() return { [true] = 1 } end,
  function(key)
    return setmetatable({ [tostring(key)] = 1 }, core.array_mt)
  end,
  function() return setmetatable({ 1 }, { __jsontype = "object" }) end,
}

local function check_decode_error(input, message)
  if type(message) ~= "string" then
    error("json_decode returned nil without a message")
  end
  local byte = message:match("^invalid JSON at byte (%d+): .")
  if not byte then
    error("json_decode message has an unexpected form: " .. message)
  end
  if tonumber(byte) > #input + 1 then
    error(string.format("json_decode reports byte %s of a %d-byte input",
                        byte, #input))
  end
end

-- Return the deepest nesting of brackets in a valid JSON text. This
-- can exceed the nesting of the decoded value, because a duplicate key
-- replaces the earlier member and a null member is left out.
local function text_nesting(text)
  local depth, deepest = 0, 0
  local in_string, escaped = false, false
  for i = 1, #text do
    local c = text:byte(i)
    if in_string then
      if escaped then
        escaped = false
      elseif c == 92 then -- backslash
        escaped = true
      elseif c == 34 then -- quote
        in_string = false
      end
    elseif c == 34 then
      in_string = true
    elseif c == 91 or c == 123 then -- '[' or '{'
      depth = depth + 1
      if depth > deepest then
        deepest = depth
      end
    elseif c == 93 or c == 125 then -- ']' or '}'
      depth = depth - 1
    end
  end
  return deepest
end

local function check_depth_limit(input, value)
  local limited, message = core.json_decode(input, SMALL_MAX_DEPTH)
  if limited == nil then
    if not tostring(message):find("nesting deeper than", 1, true) then
      error("json_decode with max_depth " .. SMALL_MAX_DEPTH ..
            " failed on a valid document: " .. tostring(message))
    end
    if text_nesting(input) <= SMALL_MAX_DEPTH then
      error("json_decode with max_depth " .. SMALL_MAX_DEPTH ..
            " rejected a document that is not that deep")
    end
    return
  end
  local same, where = roundtrip.equal(value, limited, "limited")
  if not same then
    error("json_decode with max_depth returned other data: " .. where)
  end
end

-- Return every { table, key } slot of the tree, breadth first.
local function collect_slots(root)
  local slots, queue, head = {}, { root }, 1
  while queue[head] do
    local node = queue[head]
    head = head + 1
    for key, value in pairs(node) do
      slots[#slots + 1] = { node, key }
      if type(value) == "table" then
        queue[#queue + 1] = value
      end
    end
  end
  return slots
end

-- Make one slot of a freshly decoded copy invalid: either its value, or
-- for an object member its key, which gets an invalid UTF-8 byte.
local function make_invalid_variant(input, choice)
  local root = core.json_decode(input)
  if type(root) ~= "table" then
    return INVALID_VALUES[choice % #INVALID_VALUES + 1]("top")
  end
  local slots = collect_slots(root)
  if #slots == 0 then
    root[1] = INVALID_VALUES[choice % #INVALID_VALUES + 1](1)
    return root
  end
  local slot = slots[choice % #slots + 1]
  local node, key = slot[1], slot[2]
  if type(key) == "string" and choice % 3 == 0 then
    node[key .. "\xc0"], node[key] = node[key], nil
  else
    node[key] = INVALID_VALUES[choice % #INVALID_VALUES + 1](key)
  end
  return root
end

local function check_encode_errors(input)
  local hash = 0
  for i = 1, math.min(#input, 64) do
    hash = (hash * 31 + input:byte(i)) % 2147483647
  end
  for variant = 1, INVALID_VARIANTS do
    local value = make_invalid_variant(input, hash + variant * 7919)
    local text, message = core.json_encode(value)
    if text ~= nil then
      error("json_encode accepted a value without a JSON form: " ..
            text:sub(1, 200))
    end
    if type(message) ~= "string" or not message:find("^cannot encode ") then
      error("json_encode failed with an unexpected message: " ..
            tostring(message))
    end
    if #message > MAX_MESSAGE_LENGTH then
      error(string.format("json_encode message of %d bytes: %s", #message,
                          message:sub(1, 200)))
    end
  end
end

return function(input)
  local value, message = core.json_decode(input)
  if value == nil then
    check_decode_error(input, message)
    return
  end

  check_depth_limit(input, value)
  check_encode_errors(input)

  local text = roundtrip.check(value, "decoded input")
  if text == nil then
    return
  end

  -- One pass may normalize numbers (1.0 becomes 1, -0.0 becomes 0), but
  -- the text must not change after that.
  local second = roundtrip.check(core.json_decode(text), "re-decoded text")
  local third = core.json_encode(core.json_decode(second))
  if second ~= third then
    error(string.format("json_encode is not stable: %s then %s",
                        second:sub(1, 200), tostring(third):sub(1, 200)))
  end
end
