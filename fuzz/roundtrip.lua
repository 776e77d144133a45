--- Checks shared by the fuzz targets: structural equality of decoded
-- JSON values and the encode/decode round trip of cloudflare.core.
--
-- Every check raises a Lua error when it fails. The fuzz harness turns
-- any raised error into a crash report, so a failed check here and an
-- error raised by the code under test are reported the same way.

local core = require "cloudflare.core"

local M = {}

-- json_encode refuses tables nested deeper than this (ENCODE_MAX_DEPTH
-- in csrc/json.c), while json_decode accepts 512 levels by default.
M.ENCODE_MAX_NESTING = 100

--- Return the number of nested tables in `value`: 0 for a scalar, 1 for
-- a table of scalars.
function M.nesting(value)
  if type(value) ~= "table" then
    return 0
  end
  local deepest = 0
  for _, item in pairs(value) do
    local n = M.nesting(item)
    if n > deepest then
      deepest = n
    end
  end
  return deepest + 1
end

local function describe(value)
  if type(value) == "string" then
    return string.format("%q", value)
  end
  return tostring(value)
end

--- Compare two values as JSON data: tables by their keys and values
-- (metatables ignored), numbers by value (1 equals 1.0), everything
-- else with `==`. Returns true, or false and the path of the first
-- difference.
function M.equal(a, b, path)
  path = path or "value"
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then
      return true
    end
    return false, string.format("%s: %s ~= %s", path, describe(a),
                                describe(b))
  end
  for key, item in pairs(a) do
    local same, where = M.equal(item, b[key],
                                path .. "[" .. describe(key) .. "]")
    if not same then
      return false, where
    end
  end
  for key in pairs(b) do
    if a[key] == nil then
      return false, string.format("%s[%s]: missing on the left", path,
                                  describe(key))
    end
  end
  return true
end

--- Encode `value`, decode the text again and require the same data.
-- An encoder error is accepted only for nesting past the encoder's
-- limit. `what` names the value in failure messages. Returns the JSON
-- text, or nil when the value is too deep to encode.
function M.check(value, what)
  local text, encode_err = core.json_encode(value)
  if text == nil then
    if M.nesting(value) > M.ENCODE_MAX_NESTING
        and tostring(encode_err):find("nesting deeper than", 1, true) then
      return nil
    end
    error(string.format("json_encode(%s) failed: %s", what,
                        tostring(encode_err)))
  end
  if type(text) ~= "string" then
    error(string.format("json_encode(%s) returned a %s", what, type(text)))
  end

  local decoded, decode_err = core.json_decode(text)
  if decoded == nil then
    error(string.format("json_decode of the encoded %s failed: %s: %s",
                        what, tostring(decode_err), text:sub(1, 200)))
  end
  local same, where = M.equal(value, decoded, what)
  if not same then
    error(string.format("round trip of %s changed the data: %s; " ..
                        "encoded as %s", what, where, text:sub(1, 200)))
  end
  return text
end

return M
