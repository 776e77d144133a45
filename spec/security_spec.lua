-- Secrets never reach logs, errors or tostring; debug logging shows the
-- exchange without them.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local API_TOKEN = "Sup3rSecretApiToken_0123456789"
local API_KEY = "GlobalKeyValue9876543210abcdef"
local EMAIL = "owner@example.com"

-- Collect every string reachable from a value: the text a program could
-- print of it.
local function collect_text(value, out, seen)
  out, seen = out or {}, seen or {}
  local kind = type(value)
  if kind == "string" then
    out[#out + 1] = value
  elseif kind == "table" and not seen[value] then
    seen[value] = true
    out[#out + 1] = tostring(value)
    for k, v in pairs(value) do
      collect_text(k, out, seen)
      collect_text(v, out, seen)
    end
  elseif value ~= nil then
    out[#out + 1] = tostring(value)
  end
  return out
end

describe("secrets", function()
  local emu

  setup(function()
    emu = emulator.start {
      tokens = { API_TOKEN },
      api_keys = { EMAIL .. ":" .. API_KEY },
    }
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  it("stay out of debug logs for every operation", function()
    local lines = {}
    local cf = cloudflare.new {
      api_token = API_TOKEN, account_id = ACCOUNT, base_url = emu.url,
      log_level = "debug", max_retries = 1,
      logger = function(level, message)
        lines[#lines + 1] = level .. ": " .. message
      end,
    }
    local relays = cf.moq.relays
    local texts = {}
    local function keep(...)
      for i = 1, select("#", ...) do
        collect_text(select(i, ...), texts)
      end
      return ...
    end

    local created = keep(relays:create { name = "secret relay" })
    keep(relays:get(created.uid))
    keep(relays:update(created.uid, { name = "renamed" }))
    keep(relays:list { per_page = 5 })
    local rotated = keep(relays.tokens:rotate(created.uid,
                                              { type = "subscribe" }))
    local rotated_ps = keep(relays.tokens:rotate(created.uid, {
      type = "publish_subscribe" }))
    -- An error response that echoes the token back must be redacted too.
    emu:faults("get", { { status = 400,
      headers = { ["Content-Type"] = "application/json" },
      body = '{"success":false,"errors":[{"code":1,"message":"bad token ' ..
             API_TOKEN .. ' and ' .. rotated.token .. '"}],' ..
             '"messages":[],"result":null}' } })
    keep(relays:get(created.uid))
    emu:faults("list", { { status = 503, body = "down " .. API_TOKEN,
                           headers = { ["Content-Type"] = "text/plain" } } })
    keep(relays:list())
    keep(relays:delete(created.uid))
    keep(relays:get(created.uid))
    cf:close()

    local secrets = {
      API_TOKEN, created.token_publish_subscribe, created.token_subscribe,
      rotated.token, rotated_ps.token,
    }
    -- Texts include the raw tokens of the created relay itself, which a
    -- program must be able to read; check the printable forms only.
    local printable = {}
    for _, line in ipairs(lines) do printable[#printable + 1] = line end
    printable[#printable + 1] = tostring(created)
    printable[#printable + 1] = tostring(rotated)
    printable[#printable + 1] = tostring(cf)
    for _, text in ipairs(texts) do
      if not (text == created.token_publish_subscribe
              or text == created.token_subscribe
              or text == rotated.token or text == rotated_ps.token) then
        printable[#printable + 1] = text
      end
    end

    assert.is_true(#lines >= 20)
    for _, text in ipairs(printable) do
      for _, secret in ipairs(secrets) do
        assert.is_nil(text:find(secret, 1, true),
                      "a secret appeared in: " .. text:sub(1, 200))
      end
    end
  end)

  it("debug log shows method, URL, status and attempt", function()
    local lines = {}
    local cf = cloudflare.new {
      api_token = API_TOKEN, account_id = ACCOUNT, base_url = emu.url,
      log_level = "debug",
      logger = function(level, message)
        lines[#lines + 1] = level .. ": " .. message
      end,
    }
    assert(cf.moq.relays:list())
    cf:close()
    local all = table.concat(lines, "\n")
    assert.matches("debug: GET " .. emu.url .. "/accounts/" .. ACCOUNT ..
                   "/moq/relays attempt 1/3", all, 1, true)
    assert.matches("Authorization: Bearer [REDACTED]", all, 1, true)
    assert.matches("-> HTTP 200 in ", all, 1, true)
    assert.matches(" ms (attempt 1)", all, 1, true)
  end)

  it("redacts escaped token fields in logged bodies", function()
    local log = require "cloudflare.log"
    local text = log.redact_body('{"result":{"\\u0074oken":"abc",' ..
      '"token_subscribe":"de\\"TAIL","name":"n"}}')
    assert.is_nil(text:find("abc", 1, true))
    assert.is_nil(text:find("TAIL", 1, true))
    assert.matches('"name":"n"', text, 1, true)
    assert.equal('not json "token":"[REDACTED]"',
                 log.redact_body('not json "token":"x"'))
  end)

  it("masks the global key in logs", function()
    local lines = {}
    local cf = cloudflare.new {
      api_key = API_KEY, email = EMAIL, account_id = ACCOUNT,
      base_url = emu.url, log_level = "debug",
      logger = function(_, message) lines[#lines + 1] = message end,
    }
    assert(cf.moq.relays:list())
    cf:close()
    local all = table.concat(lines, "\n")
    assert.matches("X-Auth-Key: [REDACTED]", all, 1, true)
    assert.is_nil(all:find(API_KEY, 1, true))
  end)

  it("reads CLOUDFLARE_LOG for the level", function()
    local script = os.tmpname()
    local file = assert(io.open(script, "w"))
    file:write(string.format([[
      local cloudflare = require "cloudflare"
      local cf = cloudflare.new { account_id = %q, base_url = %q }
      assert(cf.moq.relays:list())
    ]], ACCOUNT, emu.url))
    file:close()
    local pipe = assert(io.popen(string.format(
      "CLOUDFLARE_LOG=debug CLOUDFLARE_API_TOKEN=%s LUA_PATH=%q " ..
      "LUA_CPATH=%q lua5.4 %s 2>&1", API_TOKEN, package.path,
      package.cpath, script)))
    local output = pipe:read("a")
    pipe:close()
    os.remove(script)
    assert.matches("[cloudflare] debug: GET", output, 1, true)
    assert.is_nil(output:find(API_TOKEN, 1, true))
  end)

  it("warns when TLS verification is off", function()
    local lines = {}
    local cf = cloudflare.new {
      api_token = API_TOKEN, base_url = emu.url, verify_tls = false,
      logger = function(level, message)
        lines[#lines + 1] = level .. ": " .. message
      end,
    }
    cf:close()
    assert.matches("^warn: TLS certificate verification is off", lines[1])
  end)

  it("rejects a key pair with a line break before sending", function()
    emu:clear_journal()
    local cf = cloudflare.new { api_key = API_KEY .. "\r\n", email = EMAIL,
                                account_id = ACCOUNT, base_url = emu.url }
    local _, err = cf.moq.relays:list()
    assert.equal("ValidationError", err.name)
    assert.is_nil(tostring(err):find(API_KEY, 1, true))
    assert.equal(0, #emu:journal())
    cf:close()
  end)

  it("redacts a secret used as an id from the error", function()
    local cf = cloudflare.new { api_token = API_TOKEN, account_id = ACCOUNT,
                                base_url = emu.url }
    local created = assert(cf.moq.relays:create { name = "id leak" })
    for _, id in ipairs { API_TOKEN, created.token_subscribe } do
      local _, err = cf.moq.relays:get(id)
      assert.equal("NotFoundError", err.name)
      assert.is_nil(tostring(err):find(id, 1, true))
      assert.is_nil(err.path:find(id, 1, true))
      assert.matches("[REDACTED]", err.path, 1, true)
    end
    cf:close()
  end)

  it("redacts a secret echoed in cf-ray, code or excerpt", function()
    local cf = cloudflare.new { api_token = API_TOKEN, account_id = ACCOUNT,
                                base_url = emu.url, max_retries = 0 }
    emu:faults("list", {
      { status = 400, headers = { ["Content-Type"] = "application/json",
                                  ["cf-ray"] = API_TOKEN },
        body = '{"success":false,"errors":[{"code":"' .. API_TOKEN ..
               '","message":"m"}],"messages":[]}' },
      -- The token starts just before the 120-character cut, split by a
      -- tag, so a cut or a tag must not leave a readable prefix.
      { status = 502, headers = { ["Content-Type"] = "text/html" },
        body = string.rep("x", 110) .. " " .. API_TOKEN:sub(1, 10) ..
               "<b></b>" .. API_TOKEN:sub(11) },
    })
    for _ = 1, 2 do
      local _, err = cf.moq.relays:list()
      local text = tostring(err)
      assert.is_nil(text:find(API_TOKEN:sub(1, 8), 1, true), text)
      assert.is_nil(tostring(err.ray_id):find(API_TOKEN, 1, true))
      assert.is_nil(tostring(err.code):find(API_TOKEN, 1, true))
    end
    cf:close()
  end)

  it("keeps traversal ids on the relay endpoint", function()
    local cf = cloudflare.new { api_token = API_TOKEN, account_id = ACCOUNT,
                                base_url = emu.url }
    emu:clear_journal()
    local prefix = "/client/v4/accounts/" .. ACCOUNT .. "/moq/relays/"
    for _, id in ipairs { "../../accounts", "a/../../b", "x?y=1", "x#y",
                          "%2e%2e", "..%2f..", "a b" } do
      local _, err = cf.moq.relays:get(id)
      assert.is_table(err)
      local entry = emu:journal()[#emu:journal()]
      assert.equal(prefix, entry.uri:sub(1, #prefix))
      assert.is_nil(entry.uri:sub(#prefix + 1):find("/", 1, true))
      assert.is_nil(entry.uri:find("?", 1, true))
    end
    cf:close()
  end)
end)
