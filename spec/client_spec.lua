-- Client configuration, environment variables, lifecycle and transport.

local cloudflare = require "cloudflare"
local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"

-- Run a Lua snippet in a child lua5.4 with the given environment, and
-- return its output. The child resolves modules like this process.
local function run_with_env(env, code)
  local parts = { "env", "-u", "CLOUDFLARE_API_TOKEN", "-u",
                  "CLOUDFLARE_API_KEY", "-u", "CLOUDFLARE_EMAIL", "-u",
                  "CLOUDFLARE_ACCOUNT_ID", "-u", "CLOUDFLARE_BASE_URL" }
  for name, value in pairs(env) do
    parts[#parts + 1] = string.format("%s=%q", name, value)
  end
  local script = os.tmpname()
  local file = assert(io.open(script, "w"))
  file:write(code)
  file:close()
  parts[#parts + 1] = string.format(
    "LUA_PATH=%q LUA_CPATH=%q lua5.4 %s 2>&1",
    package.path, package.cpath, script)
  local pipe = assert(io.popen(table.concat(parts, " ")))
  local output = pipe:read("a")
  pipe:close()
  os.remove(script)
  return output
end

describe("client", function()
  local emu

  setup(function()
    emu = emulator.start {
      tokens = { "env-token" },
      api_keys = { "env@example.com:env-key-123" },
    }
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  describe("environment", function()
    local probe = [[
      local cloudflare = require "cloudflare"
      local cf = cloudflare.new(%s)
      local page, err = cf.moq.relays:list()
      io.write(page and ("ok " .. #page) or tostring(err))
    ]]

    it("reads token, account and base URL", function()
      local output = run_with_env({
        CLOUDFLARE_API_TOKEN = "env-token",
        CLOUDFLARE_ACCOUNT_ID = ACCOUNT,
        CLOUDFLARE_BASE_URL = emu.url,
      }, probe:format("nil"))
      assert.equal("ok 0", output)
      local entry = emu:journal()[1]
      assert.equal("Bearer env-token", entry.headers.authorization)
      assert.matches("/accounts/" .. ACCOUNT .. "/", entry.uri, 1, true)
    end)

    it("reads the key pair", function()
      local output = run_with_env({
        CLOUDFLARE_API_KEY = "env-key-123",
        CLOUDFLARE_EMAIL = "env@example.com",
        CLOUDFLARE_ACCOUNT_ID = ACCOUNT,
        CLOUDFLARE_BASE_URL = emu.url,
      }, probe:format("nil"))
      assert.equal("ok 0", output)
      assert.equal("env-key-123", emu:journal()[1].headers["x-auth-key"])
    end)

    it("lets explicit options win", function()
      local output = run_with_env({
        CLOUDFLARE_API_TOKEN = "unknown-env-token",
        CLOUDFLARE_ACCOUNT_ID = "ffffffffffffffffffffffffffffffff",
        CLOUDFLARE_BASE_URL = "http://127.0.0.1:9/client/v4",
      }, probe:format(string.format(
        "{ api_token = 'env-token', account_id = %q, base_url = %q }",
        ACCOUNT, emu.url)))
      assert.equal("ok 0", output)
      assert.matches("/accounts/" .. ACCOUNT .. "/", emu:journal()[1].uri, 1,
                     true)
    end)

    it("reports missing credentials before sending", function()
      local output = run_with_env({
        CLOUDFLARE_ACCOUNT_ID = ACCOUNT, CLOUDFLARE_BASE_URL = emu.url,
      }, probe:format("nil"))
      assert.matches("^ValidationError: missing credentials", output)
      assert.equal(0, #emu:journal())
    end)

    it("reports a key without email before sending", function()
      local output = run_with_env({
        CLOUDFLARE_API_KEY = "env-key-123",
        CLOUDFLARE_ACCOUNT_ID = ACCOUNT, CLOUDFLARE_BASE_URL = emu.url,
      }, probe:format("nil"))
      assert.matches("^ValidationError: missing email", output)
      assert.equal(0, #emu:journal())
    end)

    it("reports a missing account id before sending", function()
      local output = run_with_env({
        CLOUDFLARE_API_TOKEN = "env-token", CLOUDFLARE_BASE_URL = emu.url,
      }, probe:format("nil"))
      assert.matches("^ValidationError: missing account_id", output)
      assert.equal(0, #emu:journal())
    end)
  end)

  describe("options", function()
    it("raises for an unknown option", function()
      local ok, message = pcall(cloudflare.new, { api_tokn = "x" })
      assert.is_false(ok)
      assert.matches('cloudflare.new: unknown option "api_tokn" (known: ',
                     message, 1, true)
      assert.matches("api_token", message, 1, true)
    end)

    it("raises for an option of the wrong type", function()
      assert.has_error(function() cloudflare.new { timeout = "60" } end,
        "cloudflare.new: option timeout must be a number, got string")
    end)

    it("raises for options that are not a table", function()
      assert.has_error(function() cloudflare.new "token" end)
    end)

    it("refuses plain http to a remote host", function()
      assert.has_error(function()
        cloudflare.new { base_url = "http://api.example.com/client/v4" }
      end)
      local cf = cloudflare.new {
        base_url = "http://api.example.com/client/v4",
        allow_insecure_http = true,
      }
      assert.equal("http://api.example.com/client/v4", cf.config.base_url)
      cf:close()
    end)

    it("rejects a token with a line break before sending", function()
      local cf = cloudflare.new { api_token = "good\n", account_id = ACCOUNT,
                                  base_url = emu.url }
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("ValidationError", err.name)
      assert.equal("api_token", err.field)
      assert.equal(0, #emu:journal())
      cf:close()
    end)

    it("never shows the token in tostring", function()
      local cf = cloudflare.new { api_token = "very-secret-token-value",
                                  account_id = ACCOUNT, base_url = emu.url }
      local text = tostring(cf)
      assert.matches("cloudflare.Client", text, 1, true)
      assert.is_nil(text:find("very-secret-token-value", 1, true))
      for _, value in pairs(cf) do
        assert.not_equal("very-secret-token-value", value)
      end
      cf:close()
    end)
  end)

  describe("lifecycle", function()
    local function new_client()
      return cloudflare.new { api_token = "env-token", account_id = ACCOUNT,
                              base_url = emu.url }
    end

    it("names its version", function()
      assert.matches("^%d+%.%d+%.%d+$", cloudflare._VERSION)
      assert.equal(core._VERSION, cloudflare._VERSION)
    end)

    it("returns an error after close", function()
      local cf = new_client()
      assert(cf.moq.relays:list())
      assert.is_true(cf:close())
      assert.is_true(cf:close())
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("APIConnectionError", err.name)
      assert.matches("closed", err.message, 1, true)
      assert.matches("closed", tostring(cf), 1, true)
    end)

    it("closes a to-be-closed variable", function()
      local chunk = assert(load([[
        local new_client = ...
        local saved
        do
          local cf <close> = new_client()
          saved = cf
        end
        return saved
      ]]))
      local cf = chunk(new_client)
      assert.is_true(cf._closed)
      local _, err = cf.moq.relays:list()
      assert.equal("APIConnectionError", err.name)
    end)

    it("survives garbage collection of an open client", function()
      for _ = 1, 20 do
        local cf = new_client()
        assert(cf.moq.relays:list())
      end
      collectgarbage()
      collectgarbage()
      local cf = new_client()
      assert(cf.moq.relays:list())
      cf:close()
    end)

    it("describes the resources in tostring", function()
      local cf = new_client()
      assert.matches("list", tostring(cf.moq.relays), 1, true)
      assert.matches("rotate", tostring(cf.moq.relays.tokens), 1, true)
      cf:close()
    end)
  end)

  describe("transport", function()
    local cf

    before_each(function()
      cf = cloudflare.new { api_token = "env-token", account_id = ACCOUNT,
                            base_url = emu.url }
    end)

    after_each(function()
      cf:close()
    end)

    it("reuses one connection across calls", function()
      assert(cf.moq.relays:list())
      assert(cf.moq.relays:list())
      assert(cf.moq.relays:get(string.rep("0", 32)) == nil)
      local entries = emu:journal()
      assert.equal(3, #entries)
      -- nginx numbers connections; the three requests share one.
      assert.is_number(entries[1].connection)
      assert.equal(entries[1].connection, entries[2].connection)
      assert.equal(entries[1].connection, entries[3].connection)
    end)

    it("opens a new connection for a create", function()
      -- libcurl re-sends a request once when a reused connection turns
      -- out dead; a create must never run twice, so it never reuses one.
      assert(cf.moq.relays:list())
      assert(cf.moq.relays:create { name = "fresh" })
      assert(cf.moq.relays:list())
      local entries = emu:journal()
      assert.not_equal(entries[1].connection, entries[2].connection)
      assert.is_number(entries[3].connection)
    end)

    it("sends a User-Agent with the library version", function()
      assert(cf.moq.relays:list())
      local agent = emu:journal()[1].headers["user-agent"]
      assert.matches("^lua%-cloudflare/" .. cloudflare._VERSION:gsub("%.",
                     "%%."), agent)
    end)

    it("does not follow a redirect", function()
      emu:faults("list", { { status = 302, body = "",
        headers = { Location = "http://127.0.0.2:1/elsewhere" } } })
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("APIStatusError", err.name)
      assert.equal(302, err.status)
      assert.matches("not followed", err.message, 1, true)
      assert.equal(1, #emu:journal())
    end)

    it("sends through the proxy option", function()
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      server:close()
      local proxied = cloudflare.new {
        api_token = "env-token", account_id = ACCOUNT, base_url = emu.url,
        proxy = "http://127.0.0.1:" .. port, max_retries = 0 }
      local page, err = proxied.moq.relays:list()
      assert.is_nil(page)
      assert.equal("APIConnectionError", err.name)
      assert.equal(0, #emu:journal())
      proxied:close()
    end)

    it("keeps a proxy password out of the client's fields", function()
      local proxied = cloudflare.new {
        api_token = "env-token", account_id = ACCOUNT, base_url = emu.url,
        proxy = "http://user:proxy-pass-123@127.0.0.1:1", max_retries = 0 }
      for _, value in pairs(proxied.config) do
        assert.is_nil(tostring(value):find("proxy-pass-123", 1, true))
      end
      local _, err = proxied.moq.relays:list()
      assert.is_nil(tostring(err):find("proxy-pass-123", 1, true))
      proxied:close()
    end)

    it("honours the proxy environment variables", function()
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      server:close()
      local probe = [[
        local cloudflare = require "cloudflare"
        local cf = cloudflare.new { max_retries = 0 }
        local page, err = cf.moq.relays:list()
        io.write(page and "ok" or err.name)
      ]]
      local env = {
        CLOUDFLARE_API_TOKEN = "env-token", CLOUDFLARE_ACCOUNT_ID = ACCOUNT,
        CLOUDFLARE_BASE_URL = emu.url,
        http_proxy = "http://127.0.0.1:" .. port,
      }
      assert.equal("APIConnectionError", run_with_env(env, probe))
      env.no_proxy = "127.0.0.1"
      assert.equal("ok", run_with_env(env, probe))
    end)

    it("caps the response size", function()
      local small = cloudflare.new { api_token = "env-token",
                                     account_id = ACCOUNT, base_url = emu.url,
                                     max_response_bytes = 1024 }
      emu:faults("list", { { status = 200,
        headers = { ["Content-Type"] = "application/json" },
        body = '{"success":true,"errors":[],"messages":[],"result":[],' ..
               '"pad":"' .. string.rep("x", 4096) .. '"}' } })
      local page, err = small.moq.relays:list()
      assert.is_nil(page)
      assert.equal("ResponseDecodeError", err.name)
      assert.matches("1024 bytes", err.message, 1, true)
      small:close()
    end)
  end)
end)
