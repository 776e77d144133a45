-- JSON encoder and decoder for the emulator.
--
-- Debian's lua-cjson 2.1.0 encodes an empty Lua table as `{}` and decodes
-- `{}` and `[]` to the same empty table, so it can neither send an empty
-- `errors` array nor tell a body of `[]` from `{}`. This module keeps the
-- difference: decoded arrays carry the `array_mt` metatable, and the encoder
-- writes a table as an array when it has that metatable or is a non-empty
-- sequence. JSON null decodes to the `null` sentinel.

local json = {}

local byte, char, find, format, sub =
  string.byte, string.char, string.find, string.format, string.sub
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge

-- Sentinel for JSON null, in decoded values and in values to encode.
json.null = setmetatable({}, {
  __tostring = function() return "null" end,
})

-- Marker metatable of arrays: decoded arrays carry it, and `json.array`
-- sets it so that an empty Lua table encodes as `[]`.
json.array_mt = { __name = "json.array" }

-- Maximum nesting of arrays and objects that `decode` accepts, so a
-- hostile body cannot exhaust the Lua stack.
local MAX_DEPTH = 64

--- Marks a table as a JSON array and returns it.
function json.array(t)
  return setmetatable(t or {}, json.array_mt)
end

--- Marks a table as a JSON object whose listed keys come first, in order.
-- Other keys follow in sorted order.
function json.object(t, key_order)
  return setmetatable(t, { __key_order = key_order })
end

--- Returns true when the decoded value is a JSON array.
function json.is_array(value)
  return type(value) == "table" and getmetatable(value) == json.array_mt
end

--- Returns true when the decoded value is a JSON object.
function json.is_object(value)
  return type(value) == "table" and value ~= json.null
    and getmetatable(value) ~= json.array_mt
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

-- Bytes 0x80 and above pass through unchanged, so a raw body recorded in
-- the journal comes back byte for byte.
local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

local function encode_number(n)
  if n ~= n or n == huge or n == -huge then
    error("cannot encode a non-finite number as JSON")
  end
  if n == floor(n) and n >= -2^53 and n <= 2^53 then
    return format("%d", n)
  end
  return format("%.17g", n)
end

local function is_sequence(t)
  local count = 0
  for _ in pairs(t) do
    count = count + 1
  end
  return count > 0 and count == #t
end

local encode_value

local function encode_array(t, out)
  out[#out + 1] = "["
  for i = 1, #t do
    if i > 1 then
      out[#out + 1] = ","
    end
    encode_value(t[i], out)
  end
  out[#out + 1] = "]"
end

local function object_keys(t)
  local mt = getmetatable(t)
  local ordered = mt and mt.__key_order or {}
  local seen, keys = {}, {}
  for _, key in ipairs(ordered) do
    if t[key] ~= nil then
      keys[#keys + 1] = key
      seen[key] = true
    end
  end
  local rest = {}
  for key in pairs(t) do
    if type(key) ~= "string" then
      error("cannot encode a table key of type " .. type(key))
    end
    if not seen[key] then
      rest[#rest + 1] = key
    end
  end
  sort(rest)
  for _, key in ipairs(rest) do
    keys[#keys + 1] = key
  end
  return keys
end

local function encode_object(t, out)
  out[#out + 1] = "{"
  for i, key in ipairs(object_keys(t)) do
    if i > 1 then
      out[#out + 1] = ","
    end
    out[#out + 1] = encode_string(key)
    out[#out + 1] = ":"
    encode_value(t[key], out)
  end
  out[#out + 1] = "}"
end

encode_value = function(value, out)
  local kind = type(value)
  if value == nil or value == json.null then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = value and "true" or "false"
  elseif kind == "number" then
    out[#out + 1] = encode_number(value)
  elseif kind == "string" then
    out[#out + 1] = encode_string(value)
  elseif kind == "table" then
    if getmetatable(value) == json.array_mt or is_sequence(value) then
      encode_array(value, out)
    else
      encode_object(value, out)
    end
  else
    error("cannot encode a value of type " .. kind .. " as JSON")
  end
end

--- Encodes a Lua value as JSON text. Raises on values JSON cannot hold.
function json.encode(value)
  local out = {}
  encode_value(value, out)
  return concat(out)
end

-- Decoder state: the text, and a position that every step advances.
local Decoder = {}
Decoder.__index = Decoder

function Decoder:fail(message)
  error({ json_error = format("%s at byte %d", message, self.pos) }, 0)
end

function Decoder:skip_space()
  local _, last = find(self.text, "^[ \t\r\n]*", self.pos)
  self.pos = last + 1
end

function Decoder:peek()
  return sub(self.text, self.pos, self.pos)
end

local function utf8_encode(code)
  if code < 0x80 then
    return char(code)
  elseif code < 0x800 then
    return char(0xC0 + floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return char(0xE0 + floor(code / 0x1000),
      0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return char(0xF0 + floor(code / 0x40000),
    0x80 + floor(code / 0x1000) % 0x40,
    0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local simple_escapes = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
  n = "\n", r = "\r", t = "\t",
}

function Decoder:read_hex4()
  local hex = sub(self.text, self.pos, self.pos + 3)
  if not hex:find("^%x%x%x%x$") then
    self:fail("invalid \\u escape")
  end
  self.pos = self.pos + 4
  return tonumber(hex, 16)
end

-- Decodes a \u escape whose `\u` has been consumed, joining a UTF-16
-- surrogate pair into one code point.
function Decoder:read_unicode_escape()
  local code = self:read_hex4()
  if code >= 0xD800 and code <= 0xDBFF then
    if sub(self.text, self.pos, self.pos + 1) ~= "\\u" then
      self:fail("unpaired surrogate in \\u escape")
    end
    self.pos = self.pos + 2
    local low = self:read_hex4()
    if low < 0xDC00 or low > 0xDFFF then
      self:fail("invalid low surrogate in \\u escape")
    end
    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
  elseif code >= 0xDC00 and code <= 0xDFFF then
    self:fail("unpaired surrogate in \\u escape")
  end
  return utf8_encode(code)
end

function Decoder:read_string()
  local text, parts = self.text, {}
  self.pos = self.pos + 1
  while true do
    local first, last = find(text, '^[^"\\%z\1-\31]+', self.pos)
    if first then
      parts[#parts + 1] = sub(text, first, last)
      self.pos = last + 1
    end
    local c = sub(text, self.pos, self.pos)
    if c == '"' then
      self.pos = self.pos + 1
      return concat(parts)
    elseif c == "\\" then
      local e = sub(text, self.pos + 1, self.pos + 1)
      self.pos = self.pos + 2
      if e == "u" then
        parts[#parts + 1] = self:read_unicode_escape()
      elseif simple_escapes[e] then
        parts[#parts + 1] = simple_escapes[e]
      else
        self:fail("invalid escape in string")
      end
    elseif c == "" then
      self:fail("unterminated string")
    else
      self:fail("control character in string")
    end
  end
end

function Decoder:read_number()
  local text, pos = self.text, self.pos
  local _, last = find(text, "^-?0", pos)
  if not last then
    _, last = find(text, "^-?[1-9]%d*", pos)
  end
  if not last then
    self:fail("invalid number")
  end
  local _, frac_last = find(text, "^%.%d+", last + 1)
  last = frac_last or last
  local _, exp_last = find(text, "^[eE][-+]?%d+", last + 1)
  last = exp_last or last
  self.pos = last + 1
  local n = tonumber(sub(text, pos, last))
  if n == huge or n == -huge then
    self:fail("number out of range")
  end
  return n
end

local literals = { ["true"] = true, ["false"] = false }

function Decoder:read_literal()
  for word, value in pairs(literals) do
    if sub(self.text, self.pos, self.pos + #word - 1) == word then
      self.pos = self.pos + #word
      return value
    end
  end
  if sub(self.text, self.pos, self.pos + 3) == "null" then
    self.pos = self.pos + 4
    return json.null
  end
  self:fail("unexpected character")
end

function Decoder:read_array(depth)
  local result = json.array({})
  self.pos = self.pos + 1
  self:skip_space()
  if self:peek() == "]" then
    self.pos = self.pos + 1
    return result
  end
  while true do
    result[#result + 1] = self:read_value(depth + 1)
    self:skip_space()
    local c = self:peek()
    self.pos = self.pos + 1
    if c == "]" then
      return result
    elseif c ~= "," then
      self:fail("expected ',' or ']' in array")
    end
  end
end

function Decoder:read_object(depth)
  local result = {}
  self.pos = self.pos + 1
  self:skip_space()
  if self:peek() == "}" then
    self.pos = self.pos + 1
    return result
  end
  while true do
    self:skip_space()
    if self:peek() ~= '"' then
      self:fail("expected a string key in object")
    end
    local key = self:read_string()
    self:skip_space()
    if self:peek() ~= ":" then
      self:fail("expected ':' in object")
    end
    self.pos = self.pos + 1
    result[key] = self:read_value(depth + 1)
    self:skip_space()
    local c = self:peek()
    self.pos = self.pos + 1
    if c == "}" then
      return result
    elseif c ~= "," then
      self:fail("expected ',' or '}' in object")
    end
  end
end

function Decoder:read_value(depth)
  if depth > MAX_DEPTH then
    self:fail("nesting deeper than " .. MAX_DEPTH)
  end
  self:skip_space()
  local c = self:peek()
  if c == "{" then
    return self:read_object(depth)
  elseif c == "[" then
    return self:read_array(depth)
  elseif c == '"' then
    return self:read_string()
  elseif c == "-" or c:find("^%d$") then
    return self:read_number()
  elseif c == "" then
    self:fail("unexpected end of input")
  end
  return self:read_literal()
end

-- Returns the byte offset of the first byte that is not part of a valid
-- UTF-8 sequence (RFC 3629: no overlongs, surrogates or values above
-- U+10FFFF), or nil when the whole text is valid.
local function invalid_utf8_at(text)
  local pos, len = 1, #text
  while pos <= len do
    local c = byte(text, pos)
    local need, min
    if c < 0x80 then
      need = 0
    elseif c >= 0xC2 and c <= 0xDF then
      need, min = 1, 0x80
    elseif c >= 0xE0 and c <= 0xEF then
      need, min = 2, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then
      need, min = 3, 0x10000
    else
      return pos
    end
    if need > 0 then
      local value = c % (2 ^ (6 - need))
      for i = 1, need do
        local continuation = byte(text, pos + i)
        if not continuation or continuation < 0x80 or continuation > 0xBF then
          return pos
        end
        value = value * 64 + continuation % 64
      end
      if value < min or value > 0x10FFFF
          or (value >= 0xD800 and value <= 0xDFFF) then
        return pos
      end
    end
    pos = pos + need + 1
  end
  return nil
end

--- Decodes JSON text.
-- Returns the value, or nil and a message naming the byte offset of the
-- first error. A duplicate object key keeps its last value. Text that is
-- not valid UTF-8 is invalid JSON (RFC 8259, section 8.1).
function json.decode(text)
  if type(text) ~= "string" then
    return nil, "no JSON text"
  end
  local bad = invalid_utf8_at(text)
  if bad then
    return nil, "invalid UTF-8 at byte " .. bad
  end
  local decoder = setmetatable({ text = text, pos = 1 }, Decoder)
  local ok, value = pcall(function()
    local result = decoder:read_value(1)
    decoder:skip_space()
    if decoder.pos <= #text then
      decoder:fail("trailing characters")
    end
    return result
  end)
  if ok then
    return value
  end
  if type(value) == "table" and value.json_error then
    return nil, value.json_error
  end
  error(value, 0)
end

return json
