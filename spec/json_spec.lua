-- Specs for the JSON codec of cloudflare.core: json_decode, json_encode,
-- the null sentinel and array_mt.

local core = require "cloudflare.core"

local decode = core.json_decode
local encode = core.json_encode
local null = core.null

local MESSAGE_START = "^invalid JSON at byte %d+: "

-- Assert that decoding `input` fails with a message that contains `reason`
-- (plain text), and return the message.
local function assert_rejected(input, reason)
  local ok, value, message = pcall(decode, input)
  assert.is_true(ok, "json_decode raised: " .. tostring(value))
  assert.is_nil(value)
  assert.is_string(message)
  assert.matches(MESSAGE_START, message)
  if reason then
    assert.matches(reason, message, 1, true)
  end
  return message
end

-- Assert that encoding `value` fails with exactly `expected`.
local function assert_encode_error(value, expected)
  local ok, json, message = pcall(encode, value)
  assert.is_true(ok, "json_encode raised: " .. tostring(json))
  assert.is_nil(json)
  assert.are.equal(expected, message)
end

local function is_negative_zero(x)
  return x == 0 and 1 / x < 0
end

-- A deterministic generator, so a failing case can be reproduced.
local function make_random(seed)
  local state = seed
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
end

describe("json_decode", function()
  describe("scalars", function()
    it("decodes true and false", function()
      assert.is_true(decode("true"))
      assert.is_false(decode("false"))
    end)

    it("decodes a string", function()
      assert.are.equal("hello", decode('"hello"'))
    end)

    it("decodes an empty string", function()
      assert.are.equal("", decode('""'))
    end)

    it("decodes top-level null as the sentinel", function()
      assert.are.equal(null, decode("null"))
    end)

    it("allows whitespace around the value", function()
      assert.are.equal(5, decode(" \t\r\n5 \t\r\n"))
    end)
  end)

  describe("integers", function()
    it("decodes an integer literal as an integer", function()
      local value = decode("30000")
      assert.are.equal(30000, value)
      assert.are.equal("integer", math.type(value))
    end)

    it("decodes a negative integer", function()
      local value = decode("-42")
      assert.are.equal(-42, value)
      assert.are.equal("integer", math.type(value))
    end)

    it("decodes zero and negative zero as integer 0", function()
      assert.are.equal("integer", math.type(decode("0")))
      assert.are.equal(0, decode("-0"))
      assert.are.equal("integer", math.type(decode("-0")))
    end)

    it("decodes the int64 maximum exactly", function()
      local value = decode("9223372036854775807")
      assert.are.equal(math.maxinteger, value)
      assert.are.equal("integer", math.type(value))
    end)

    it("decodes the int64 minimum exactly", function()
      local value = decode("-9223372036854775808")
      assert.are.equal(math.mininteger, value)
      assert.are.equal("integer", math.type(value))
    end)

    it("decodes one past the int64 maximum as a float", function()
      local value = decode("9223372036854775808")
      assert.are.equal("float", math.type(value))
      assert.are.equal(2.0 ^ 63, value)
    end)

    it("decodes one below the int64 minimum as a float", function()
      local value = decode("-9223372036854775809")
      assert.are.equal("float", math.type(value))
      assert.are.equal(-(2.0 ^ 63), value)
    end)

    it("decodes a 30-digit integer literal as a float", function()
      local value = decode("123456789012345678901234567890")
      assert.are.equal("float", math.type(value))
      assert.are.equal(1.2345678901234568e29, value)
    end)

    it("keeps integers inside containers", function()
      local value = decode('{"max_timeout_ms":30000,"list":[1,2]}')
      assert.are.equal("integer", math.type(value.max_timeout_ms))
      assert.are.equal("integer", math.type(value.list[2]))
    end)
  end)

  describe("floats", function()
    it("decodes a fraction as a float", function()
      local value = decode("2.5")
      assert.are.equal(2.5, value)
      assert.are.equal("float", math.type(value))
    end)

    it("decodes an integral fraction as a float", function()
      assert.are.equal("float", math.type(decode("1.0")))
    end)

    it("decodes exponents as floats", function()
      assert.are.equal(1000.0, decode("1e3"))
      assert.are.equal("float", math.type(decode("1e3")))
      assert.are.equal(1000.0, decode("1E+3"))
      assert.are.equal(0.0015, decode("1.5e-3"))
      assert.are.equal(-2.5e10, decode("-2.5E10"))
    end)

    it("decodes negative zero with its sign", function()
      local value = decode("-0.0")
      assert.are.equal("float", math.type(value))
      assert.is_true(is_negative_zero(value))
    end)

    it("reads 0.1 as the nearest double", function()
      assert.are.equal(0.1, decode("0.1"))
    end)

    it("decodes an underflowing exponent as zero", function()
      assert.are.equal(0.0, decode("1e-400"))
    end)

    it("decodes a 1000-digit fraction", function()
      local value = decode("0." .. string.rep("3", 1000))
      assert.are.equal(1 / 3, value)
    end)

    it("rejects a number beyond the double range", function()
      assert_rejected("1e400", "number out of range")
      assert_rejected("-1e400", "number out of range")
      assert_rejected(string.rep("9", 400), "number out of range")
    end)
  end)

  describe("containers", function()
    it("decodes an array into keys 1..n", function()
      local value = decode('[10, "x", true]')
      assert.are.same({ 10, "x", true }, value)
      assert.are.equal(3, #value)
    end)

    it("gives decoded arrays no metatable", function()
      assert.is_nil(getmetatable(decode("[1,2]")))
      assert.is_nil(getmetatable(decode("[]")))
    end)

    it("decodes an object into a table", function()
      assert.are.same({ a = 1, b = { c = "d" } },
                      decode('{"a":1,"b":{"c":"d"}}'))
    end)

    it("decodes empty containers as empty tables", function()
      assert.are.same({}, decode("[]"))
      assert.are.same({}, decode("{}"))
      assert.are.same({}, decode("[ ]"))
      assert.are.same({}, decode("{ \n}"))
    end)

    it("leaves a null object member absent", function()
      local value = decode('{"a":null,"b":1}')
      local keys = 0
      for _ in pairs(value) do
        keys = keys + 1
      end
      assert.is_nil(value.a)
      assert.are.equal(1, value.b)
      assert.are.equal(1, keys)
    end)

    it("keeps null array elements as the sentinel", function()
      local value = decode("[1,null,3]")
      assert.are.equal(1, value[1])
      assert.are.equal(null, value[2])
      assert.are.equal(3, value[3])
      assert.are.equal(3, #value)
    end)

    it("keeps the last of duplicate keys", function()
      assert.are.equal(2, decode('{"a":1,"a":2}').a)
    end)

    it("removes a duplicate key whose last value is null", function()
      assert.is_nil(decode('{"a":1,"a":null}').a)
    end)

    it("decodes a key containing NUL", function()
      assert.are.equal(1, decode('{"a\\u0000b":1}')["a\0b"])
    end)
  end)

  describe("string escapes", function()
    it("decodes every short escape", function()
      assert.are.equal("\"\\/\b\f\n\r\t",
                       decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    end)

    it("decodes \\u escapes into UTF-8", function()
      assert.are.equal("A", decode('"\\u0041"'))
      assert.are.equal("\xC3\xA9", decode('"\\u00e9"'))
      assert.are.equal("\xE2\x82\xAC", decode('"\\u20AC"'))
      assert.are.equal("\xEF\xBF\xBF", decode('"\\uffff"'))
    end)

    it("decodes a surrogate pair into one code point", function()
      assert.are.equal("\xF0\x9F\x98\x80", decode('"\\ud83d\\ude00"'))
      assert.are.equal("\xF4\x8F\xBF\xBF", decode('"\\uDBFF\\uDFFF"'))
    end)

    it("decodes \\u0000 into an embedded NUL", function()
      local value = decode('"a\\u0000b"')
      assert.are.equal("a\0b", value)
      assert.are.equal(3, #value)
    end)

    it("mixes escapes with raw text", function()
      assert.are.equal("caf\xC3\xA9 \xE2\x82\xAC\n!",
                       decode('"caf\xC3\xA9 \\u20ac\\n!"'))
    end)

    it("rejects an unknown escape", function()
      assert_rejected('"\\x41"', "invalid escape sequence")
      assert_rejected('"\\a"', "invalid escape sequence")
    end)

    it("rejects a short \\u escape", function()
      assert_rejected('"\\u12"', "invalid \\u escape")
      assert_rejected('"\\u12G4"', "invalid \\u escape")
    end)

    it("rejects a lone high surrogate", function()
      assert_rejected('"\\ud800"', "lone surrogate \\uD800")
      assert_rejected('"\\ud800x"', "lone surrogate")
      assert_rejected('"\\ud800\\u0041"', "lone surrogate")
      assert_rejected('"\\ud800\\ud800"', "lone surrogate")
    end)

    it("rejects a lone low surrogate", function()
      assert_rejected('"\\udc00"', "lone surrogate \\uDC00")
    end)
  end)

  describe("UTF-8 checks", function()
    it("accepts raw multibyte UTF-8", function()
      local text = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"
      assert.are.equal(text, decode('"' .. text .. '"'))
    end)

    local invalid = {
      { "overlong two-byte form", "\xC0\xAF" },
      { "overlong three-byte form", "\xE0\x80\xAF" },
      { "overlong four-byte form", "\xF0\x80\x80\xAF" },
      { "lone continuation byte", "\x80" },
      { "encoded surrogate", "\xED\xA0\x80" },
      { "code point above U+10FFFF", "\xF4\x90\x80\x80" },
      { "byte 0xF5", "\xF5\x80\x80\x80" },
      { "byte 0xFF", "\xFF" },
      { "truncated sequence", "\xE2\x82" },
      { "lead byte before ASCII", "\xC3A" },
    }
    for _, case in ipairs(invalid) do
      it("rejects " .. case[1], function()
        assert_rejected('"' .. case[2] .. '"', "invalid UTF-8 in string")
      end)
    end

    it("rejects a sequence cut by the end of input", function()
      assert_rejected('"\xE2\x82', "invalid UTF-8 in string")
    end)

    it("reports the byte where invalid UTF-8 starts", function()
      assert.are.equal("invalid JSON at byte 4: invalid UTF-8 in string",
                       assert_rejected('"ab\xFF"'))
    end)
  end)

  describe("strictness", function()
    local cases = {
      { "NaN", "NaN", "unexpected character 'N'" },
      { "Infinity", "Infinity", "unexpected character 'I'" },
      { "negative Infinity", "-Infinity", "expected digit after '-'" },
      { "leading zero", "01", "leading zeros are not allowed" },
      { "negative leading zero", "-012", "leading zeros are not allowed" },
      { "leading plus", "+1", "unexpected character '+'" },
      { "bare fraction", ".5", "unexpected character '.'" },
      { "missing fraction digits", "1.e3", "expected digit after '.'" },
      { "missing exponent digits", "1e+", "unexpected end of input" },
      { "letter exponent", "1ex", "expected digit in exponent" },
      { "trailing comma in array", "[1,2,]", "trailing comma before ']'" },
      { "trailing comma in object", '{"a":1,}',
        "trailing comma before '}'" },
      { "block comment", "/* c */ 1", "unexpected character '/'" },
      { "line comment", "[1] // c", "unexpected character '/'" },
      { "single-quoted string", "'a'", "unexpected character \"'\"" },
      { "single-quoted key", "{'a':1}", "expected string key or '}'" },
      { "unquoted key", "{a:1}", "expected string key or '}'" },
      { "number key", '{"a":1,2:3}', "expected string key" },
      { "raw newline in string", '"a\nb"',
        "unescaped control character 0x0A in string" },
      { "raw tab in string", '"a\tb"',
        "unescaped control character 0x09 in string" },
      { "raw NUL in string", '"a\0b"',
        "unescaped control character 0x00 in string" },
      { "second value", "1 2", "unexpected character '2' after the value" },
      { "data after object", "{} x",
        "unexpected character 'x' after the value" },
      { "NUL after value", "1\0", "unexpected byte 0x00 after the value" },
      { "empty input", "", "unexpected end of input" },
      { "whitespace only", "  \n", "unexpected end of input" },
      { "byte order mark", "\xEF\xBB\xBF1", "unexpected byte 0xEF" },
      { "missing colon", '{"a" 1}', "expected ':' after object key" },
      { "missing comma in array", "[1 2]", "expected ',' or ']'" },
      { "missing comma in object", '{"a":1 "b":2}', "expected ',' or '}'" },
      { "misspelled literal", "tru", "invalid literal, expected 'true'" },
      { "capitalised literal", "True", "unexpected character 'T'" },
      { "literal with suffix", "nulls",
        "unexpected character 's' after the value" },
      { "unterminated string", '"abc', "unexpected end of input in string" },
      { "unclosed array", "[1", "unexpected end of input" },
      { "stray closing bracket", "]", "unexpected character ']'" },
      { "hex number", "0x10", "unexpected character 'x' after the value" },
    }
    for _, case in ipairs(cases) do
      it("rejects " .. case[1], function()
        assert_rejected(case[2], case[3])
      end)
    end

    it("names the 1-based byte of the error", function()
      local message = assert_rejected('{"a":1,"b" 2}')
      assert.are.equal(
        "invalid JSON at byte 12: expected ':' after object key", message)
    end)

    it("reports a missing comma in the documented form", function()
      local message = assert_rejected('{"relay":{"uid":"x" "name":"y"}}')
      assert.are.equal("invalid JSON at byte 21: expected ',' or '}'",
                       message)
    end)

    it("quotes at most a few bytes of the input", function()
      local garbage = string.rep("z", 1000)
      local message = assert_rejected("[" .. garbage .. "]")
      assert.is_true(#message < 80, message)
      message = assert_rejected('"' .. string.rep("\xFF", 1000) .. '"')
      assert.is_true(#message < 80, message)
    end)
  end)

  describe("arguments", function()
    it("raises for a non-string argument", function()
      assert.has_error(function() decode(42) end)
      assert.has_error(function() decode(nil) end)
      assert.has_error(function() decode({}) end)
    end)

    it("raises for a negative max_depth", function()
      assert.has_error(function() decode("1", -1) end)
    end)
  end)

  describe("depth limit", function()
    it("rejects 100000 nested arrays", function()
      local message = assert_rejected(string.rep("[", 100000))
      assert.are.equal(
        "invalid JSON at byte 513: nesting deeper than 512 levels", message)
    end)

    it("rejects 100000 nested objects", function()
      local message = assert_rejected(string.rep('{"a":', 100000))
      assert.matches("nesting deeper than 512 levels$", message)
    end)

    it("rejects 100000 closed nested arrays", function()
      local input = string.rep("[", 100000) .. string.rep("]", 100000)
      assert_rejected(input, "nesting deeper than 512 levels")
    end)

    it("accepts nesting at exactly 512 levels", function()
      local value = decode(string.rep("[", 512) .. string.rep("]", 512))
      local levels = 0
      while type(value) == "table" do
        levels = levels + 1
        value = value[1]
      end
      assert.are.equal(512, levels)
    end)

    it("rejects nesting at 513 levels", function()
      local input = string.rep("[", 513) .. string.rep("]", 513)
      assert_rejected(input, "nesting deeper than 512 levels")
    end)

    it("counts arrays and objects alike", function()
      local input = string.rep('[{"a":', 256) .. "1" ..
                    string.rep("}]", 256)
      assert.is_table(decode(input))
      assert_rejected("[" .. input .. "]", "nesting deeper than 512 levels")
    end)

    it("honours a custom max_depth", function()
      local value, message = decode("[[[1]]]", 2)
      assert.is_table(decode("[[1]]", 2))
      assert.is_nil(value)
      assert.are.equal(
        "invalid JSON at byte 3: nesting deeper than 2 levels", message)
    end)

    it("accepts scalars at max_depth 0", function()
      local value, message = decode("[]", 0)
      assert.are.equal(5, decode("5", 0))
      assert.is_nil(value)
      assert.are.equal(
        "invalid JSON at byte 1: nesting deeper than 0 levels", message)
    end)

    it("accepts 100000 levels when max_depth allows", function()
      local input = string.rep("[", 100000) .. string.rep("]", 100000)
      assert.is_table(decode(input, 100000))
    end)
  end)

  describe("hostile input", function()
    local sample = '{"result":{"uid":"a1b2","name":"caf\xC3\xA9 \\u20ac",' ..
                   '"config":{"max_timeout_ms":30000,"ratio":-1.5e-3,' ..
                   '"origins":[{"url":"https://o.example"},null,true]},' ..
                   '"tags":[],"meta":{}},"success":false,"errors":null}'

    it("decodes the sample document", function()
      local value = decode(sample)
      assert.are.equal(30000, value.result.config.max_timeout_ms)
      assert.are.equal(null, value.result.config.origins[2])
      assert.is_false(value.success)
    end)

    it("rejects every truncated prefix without raising", function()
      for length = 0, #sample - 1 do
        local prefix = sample:sub(1, length)
        local ok, value, message = pcall(decode, prefix)
        assert.is_true(ok, "raised at length " .. length)
        assert.is_nil(value, "accepted length " .. length)
        assert.matches(MESSAGE_START, message)
      end
    end)

    it("never raises on random bytes", function()
      local random = make_random(12345)
      local alphabet = '[]{}:,"\\-+.eE0123456789tfnrulasx \n\0\xC3\xA9\xFF'
      for _ = 1, 3000 do
        local bytes = {}
        for i = 1, random(40) do
          local k = random(#alphabet) + 1
          bytes[i] = alphabet:sub(k, k)
        end
        local input = table.concat(bytes)
        local ok, value, message = pcall(decode, input)
        assert.is_true(ok, "raised on " .. ("%q"):format(input))
        if value == nil then
          assert.matches(MESSAGE_START, message)
        end
      end
    end)

    it("never raises on mutated sample documents", function()
      local random = make_random(777)
      for _ = 1, 2000 do
        local at = random(#sample) + 1
        local byte = string.char(random(256))
        local input = sample:sub(1, at - 1) .. byte .. sample:sub(at + 1)
        local ok, value, message = pcall(decode, input)
        assert.is_true(ok, "raised on " .. ("%q"):format(input))
        if value == nil then
          assert.matches(MESSAGE_START, message)
        end
      end
    end)

    it("round-trips a 4 MiB document", function()
      local items = {}
      local i = 0
      local size = 0
      while size < 4 * 1024 * 1024 do
        i = i + 1
        items[i] = {
          uid = ("%032x"):format(i),
          name = "relay \xE2\x82\xAC " .. i .. " \"quoted\"\n",
          count = i * 7919,
          ratio = i / 7,
          enabled = i % 2 == 0,
        }
        size = size + #encode(items[i]) + 1
      end
      local json = assert(encode({ result = items }))
      assert.is_true(#json >= 4 * 1024 * 1024)
      local value = assert(decode(json))
      assert.are.equal(#items, #value.result)
      assert.are.same(items[1], value.result[1])
      assert.are.same(items[#items], value.result[#items])
      assert.are.equal(json, encode(value))
    end)

    it("decodes a 4 MiB string", function()
      local text = string.rep("abc\xC3\xA9", 1024 * 1024)
      assert.are.equal(text, decode('"' .. text .. '"'))
    end)
  end)
end)

describe("JSON numbers under a decimal-comma locale", function()
  local names = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" }
  local saved

  -- Switch LC_NUMERIC to a locale that writes 1.5 as "1,5", if one exists.
  local function use_comma_locale()
    saved = os.setlocale(nil, "numeric")
    for _, name in ipairs(names) do
      if os.setlocale(name, "numeric") and
         string.format("%.1f", 1.5) == "1,5" then
        return true
      end
    end
    os.setlocale(saved, "numeric")
    return false
  end

  after_each(function()
    if saved then
      os.setlocale(saved, "numeric")
    end
  end)

  it("decodes fractions with a dot", function()
    if not use_comma_locale() then
      pending("no decimal-comma locale is installed")
      return
    end
    assert.are.equal(1.5, decode("1.5"))
    assert.are.equal(22.5, decode("2.25e1"))
    assert.are.equal(1 / 3, decode("0." .. string.rep("3", 100)))
  end)

  it("encodes fractions with a dot", function()
    if not use_comma_locale() then
      pending("no decimal-comma locale is installed")
      return
    end
    assert.are.equal("[1.5,0.1,1e-07,2.5e+300]",
                     encode({ 1.5, 0.1, 1e-7, 2.5e300 }))
  end)
end)

describe("json_encode", function()
  describe("scalars", function()
    it("encodes nil and the sentinel as null", function()
      assert.are.equal("null", encode(nil))
      assert.are.equal("null", encode(null))
    end)

    it("encodes booleans", function()
      assert.are.equal("true", encode(true))
      assert.are.equal("false", encode(false))
    end)

    it("raises without an argument", function()
      assert.has_error(function() encode() end)
    end)
  end)

  describe("numbers", function()
    it("encodes an integer as digits", function()
      assert.are.equal("30000", encode(30000))
      assert.are.equal("-7", encode(-7))
    end)

    it("encodes an integral float without a decimal point", function()
      assert.are.equal("30000", encode(30000.0))
      assert.are.equal("0", encode(0.0))
      assert.are.equal("9007199254740991", encode(2.0 ^ 53 - 1))
    end)

    it("encodes the int64 edges", function()
      assert.are.equal("9223372036854775807", encode(math.maxinteger))
      assert.are.equal("-9223372036854775808", encode(math.mininteger))
    end)

    it("encodes negative zero as -0", function()
      assert.are.equal("-0", encode(-0.0))
    end)

    it("encodes fractions in the shortest round-trip form", function()
      assert.are.equal("0.1", encode(0.1))
      assert.are.equal("2.5", encode(2.5))
      assert.are.equal("-1.5e-07", encode(-1.5e-7))
      assert.are.equal("0.3333333333333333", encode(1 / 3))
    end)

    it("round-trips floats exactly", function()
      local values = { 1 / 3, 0.1 + 0.2, math.pi, 5e-324,
                       1.7976931348623157e308, 2.0 ^ 53, 2.0 ^ 63, -1e-300,
                       123456.789 }
      for _, x in ipairs(values) do
        local json = encode(x)
        assert.are.equal(x, decode(json), json)
      end
    end)

    it("encodes large integral floats as valid JSON", function()
      assert.are.equal("1e+20", encode(1e20))
      assert.are.equal(1e20, decode(encode(1e20)))
    end)

    it("rejects NaN", function()
      assert_encode_error(0 / 0,
        "cannot encode the top-level value: NaN is not valid JSON")
    end)

    it("rejects infinity", function()
      assert_encode_error(math.huge,
        "cannot encode the top-level value: infinity is not valid JSON")
      assert_encode_error({ x = -math.huge },
        "cannot encode x: -infinity is not valid JSON")
    end)

    it("names the path of a NaN", function()
      assert_encode_error({ x = 0 / 0 },
        "cannot encode x: NaN is not valid JSON")
    end)
  end)

  describe("strings", function()
    it("encodes plain text unchanged", function()
      assert.are.equal('"hello / world"', encode("hello / world"))
    end)

    it("escapes quotes and backslashes", function()
      assert.are.equal('"a\\"b\\\\c"', encode('a"b\\c'))
    end)

    it("escapes control characters", function()
      assert.are.equal('"\\b\\f\\n\\r\\t"', encode("\b\f\n\r\t"))
      assert.are.equal('"\\u0001\\u001F"', encode("\1\31"))
    end)

    it("leaves DEL and UTF-8 unescaped", function()
      assert.are.equal('"\127caf\xC3\xA9\xF0\x9F\x98\x80"',
                       encode("\127caf\xC3\xA9\xF0\x9F\x98\x80"))
    end)

    it("round-trips an embedded NUL", function()
      local json = encode("a\0b")
      assert.are.equal('"a\\u0000b"', json)
      assert.are.equal("a\0b", decode(json))
    end)

    it("round-trips every byte below 0x80", function()
      local bytes = {}
      for i = 0, 127 do
        bytes[#bytes + 1] = string.char(i)
      end
      local text = table.concat(bytes)
      assert.are.equal(text, decode(encode(text)))
    end)

    local invalid = {
      { "overlong form", "\xC0\xAF" },
      { "lone continuation byte", "ab\x80" },
      { "encoded surrogate", "\xED\xB0\x80" },
      { "code point above U+10FFFF", "\xF4\x90\x80\x80" },
      { "truncated sequence", "\xE2\x82" },
    }
    for _, case in ipairs(invalid) do
      it("rejects invalid UTF-8: " .. case[1], function()
        assert_encode_error(case[2],
          "cannot encode the top-level value: invalid UTF-8 in string")
      end)
    end

    it("names the path of invalid UTF-8", function()
      local value = { config = { origins = { { url = "ok" },
                                             { url = "\xFF" } } } }
      assert_encode_error(value,
        "cannot encode config.origins[2].url: invalid UTF-8 in string")
    end)

    it("rejects invalid UTF-8 in a key", function()
      assert_encode_error({ a = { ["k\xFF"] = 1 } },
        'cannot encode a: invalid UTF-8 in object key "k\\xFF"')
    end)
  end)

  describe("arrays", function()
    it("encodes a sequence as an array", function()
      assert.are.equal('[1,"two",true,null]',
                       encode({ 1, "two", true, null }))
    end)

    it("encodes nested arrays", function()
      assert.are.equal("[[1,2],[],[[3]]]",
                       encode({ { 1, 2 }, setmetatable({}, core.array_mt),
                                { { 3 } } }))
    end)

    it("encodes an empty array_mt table as []", function()
      assert.are.equal("[]", encode(setmetatable({}, core.array_mt)))
    end)

    it("encodes an array_mt table with elements", function()
      assert.are.equal("[1,2]", encode(setmetatable({ 1, 2 }, core.array_mt)))
    end)

    it("defines array_mt with its name", function()
      assert.are.equal("array", core.array_mt.__jsontype)
      assert.are.equal("cloudflare.array", core.array_mt.__name)
    end)

    it("rejects a string key in an array_mt table", function()
      local value = setmetatable({ 1, name = "x" }, core.array_mt)
      assert_encode_error({ list = value },
        'cannot encode list: array has key "name", but array keys must be ' ..
        "positive integers")
    end)

    it("rejects a sparse table with its path", function()
      assert_encode_error({ a = { list = { 1, nil, 3 } } },
        "cannot encode a.list: sparse array has no value at index 2 " ..
        "(use the null sentinel for gaps)")
    end)

    it("rejects a sparse array_mt table", function()
      local value = setmetatable({ [1] = 1, [3] = 3 }, core.array_mt)
      assert_encode_error(value,
        "cannot encode the top-level value: sparse array has no value at " ..
        "index 2 (use the null sentinel for gaps)")
    end)

    it("rejects index 0", function()
      assert_encode_error({ [0] = "a", "b" },
        "cannot encode the top-level value: table key 0 is neither a " ..
        "string nor a positive integer")
    end)

    it("rejects a float key", function()
      assert_encode_error({ [1.5] = "a" },
        "cannot encode the top-level value: table key 1.5 is neither a " ..
        "string nor a positive integer")
    end)

    it("ignores __len and __index", function()
      local value = setmetatable({ 1, 2 }, {
        __len = function() return 5 end,
        __index = function() return "x" end,
      })
      assert.are.equal("[1,2]", encode(value))
    end)
  end)

  describe("objects", function()
    it("encodes string keys as an object", function()
      assert.are.equal('{"a":1}', encode({ a = 1 }))
    end)

    it("encodes an empty plain table as {}", function()
      assert.are.equal("{}", encode({}))
    end)

    it("encodes an empty object-typed table as {}", function()
      assert.are.equal("{}", encode(setmetatable({}, {
        __jsontype = "object" })))
    end)

    it("sorts keys by bytes", function()
      local value = { b = 1, a = 2, ["a b"] = 3, A = 4, [""] = 5,
                      ["\xC3\xA9"] = 6, z = 7 }
      assert.are.equal('{"":5,"A":4,"a":2,"a b":3,"b":1,"z":7,"\xC3\xA9":6}',
                       encode(value))
    end)

    it("writes the same text for equal tables", function()
      local first, second = {}, {}
      for i = 1, 200 do
        first["k" .. i] = i
      end
      for i = 200, 1, -1 do
        second["k" .. i] = i
      end
      assert.are.equal(encode(first), encode(second))
    end)

    it("encodes a sentinel member as null", function()
      assert.are.equal('{"a":null}', encode({ a = null }))
    end)

    it("escapes keys", function()
      assert.are.equal('{"a\\"b\\u0000":1}', encode({ ['a"b\0'] = 1 }))
    end)

    it("rejects a number key in an object-typed table", function()
      local value = setmetatable({ 1 }, { __jsontype = "object" })
      assert_encode_error(value,
        "cannot encode the top-level value: object has key 1, but object " ..
        "keys must be strings")
    end)

    it("rejects an unknown __jsontype", function()
      local value = setmetatable({}, { __jsontype = "list" })
      assert_encode_error({ v = value },
        'cannot encode v: __jsontype must be "array" or "object"')
    end)

    it("rejects mixed keys with their path", function()
      assert_encode_error({ a = { b = { 1, x = 2 } } },
        "cannot encode a.b: table mixes array and object keys")
    end)

    it("rejects a boolean key", function()
      assert_encode_error({ [true] = 1 },
        "cannot encode the top-level value: table key true is neither a " ..
        "string nor a positive integer")
    end)

    it("quotes a key that is not an identifier in the path", function()
      assert_encode_error({ ["my key"] = { 0 / 0 } },
        'cannot encode ["my key"][1]: NaN is not valid JSON')
    end)
  end)

  describe("unsupported values", function()
    it("rejects a function with its path", function()
      assert_encode_error({ f = print },
        "cannot encode f: function values have no JSON form")
    end)

    it("rejects a coroutine", function()
      assert_encode_error({ coroutine.create(print) },
        "cannot encode [1]: thread values have no JSON form")
    end)

    it("rejects a full userdata", function()
      assert_encode_error(io.stdout,
        "cannot encode the top-level value: userdata values have no JSON form")
    end)
  end)

  describe("depth limit", function()
    local function nest(levels)
      local value = {}
      local root = value
      for _ = 2, levels do
        value[1] = {}
        value = value[1]
      end
      return root
    end

    it("accepts 100 nested tables", function()
      local json = assert(encode(nest(100)))
      assert.are.equal(string.rep("[", 99) .. "{}" .. string.rep("]", 99),
                       json)
    end)

    it("rejects 101 nested tables", function()
      local ok, json, message = pcall(encode, nest(101))
      assert.is_true(ok)
      assert.is_nil(json)
      assert.matches("nesting deeper than 100 levels %(a cycle%?%)$",
                     message)
    end)

    it("rejects a cycle with the depth error", function()
      local t = {}
      t.t = t
      local ok, json, message = pcall(encode, t)
      assert.is_true(ok)
      assert.is_nil(json)
      assert.matches("^cannot encode t%.t%.t", message)
      assert.matches("nesting deeper than 100 levels %(a cycle%?%)$",
                     message)
    end)

    it("shortens a long path in the message", function()
      local t = {}
      t.t = t
      local _, message = encode(t)
      assert.matches("%.%.%.%(%d+ more%)", message)
      assert.is_true(#message < 200, message)
    end)
  end)

  describe("round trips", function()
    it("round-trips a nested document", function()
      local value = {
        result = {
          uid = "abc",
          config = { max_timeout_ms = 30000, ratio = 0.25,
                     origins = { { url = "https://a" }, null } },
          enabled = false,
        },
      }
      local json = assert(encode(value))
      assert.are.same(value, decode(json))
      assert.are.equal(json, encode(decode(json)))
    end)

    it("keeps integers integers through a round trip", function()
      local value = decode(encode({ n = 30000, m = 30000.0 }))
      assert.are.equal("integer", math.type(value.n))
      assert.are.equal("integer", math.type(value.m))
    end)
  end)
end)
