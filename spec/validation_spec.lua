-- Checks that run before anything is sent: each returns a
-- ValidationError naming the field, and the emulator receives no request.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local UID = string.rep("a", 32)

describe("validation", function()
  local emu, cf, relays

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:clear_journal()
    cf = cloudflare.new {
      api_token = "local-dev-token", account_id = ACCOUNT, base_url = emu.url,
    }
    relays = cf.moq.relays
  end)

  after_each(function()
    cf:close()
  end)

  -- Assert a ValidationError on `field` whose message contains `rule`,
  -- and that nothing reached the server.
  local function rejects(field, rule, value, err)
    assert.is_nil(value)
    assert.is_table(err)
    assert.equal("ValidationError", err.name)
    assert.equal(field, err.field)
    assert.matches(rule, err.message, 1, true)
    assert.matches(field, tostring(err), 1, true)
    assert.equal(0, #emu:journal())
  end

  describe("create", function()
    it("requires name", function()
      rejects("name", "non-empty string", relays:create {})
    end)

    it("rejects an empty name", function()
      rejects("name", "non-empty string", relays:create { name = "" })
    end)

    it("rejects a numeric name", function()
      rejects("name", "got 42", relays:create { name = 42 })
    end)

    it("rejects a misspelled key", function()
      rejects("nmae", "unknown parameter", relays:create { nmae = "x" })
    end)

    it("rejects config, which only update takes", function()
      rejects("config", "unknown parameter",
              relays:create { name = "x", config = {} })
    end)
  end)

  describe("update config", function()
    local function update(config)
      return relays:update(UID, { config = config })
    end

    it("rejects max_timeout_ms above 300000", function()
      rejects("config.lingering_subscribe.max_timeout_ms",
              "integer from 0 to 300000",
              update { lingering_subscribe = { max_timeout_ms = 300001 } })
    end)

    it("rejects a negative max_timeout_ms", function()
      rejects("config.lingering_subscribe.max_timeout_ms", "got -1",
              update { lingering_subscribe = { max_timeout_ms = -1 } })
    end)

    it("rejects a fractional max_timeout_ms", function()
      rejects("config.lingering_subscribe.max_timeout_ms", "got 1000.5",
              update { lingering_subscribe = { max_timeout_ms = 1000.5 } })
    end)

    it("rejects a string max_timeout_ms", function()
      rejects("config.lingering_subscribe.max_timeout_ms", "integer",
              update { lingering_subscribe = { max_timeout_ms = "30000" } })
    end)

    it("accepts both bounds of max_timeout_ms", function()
      local relay = assert(relays:create { name = "bounds" })
      for _, ms in ipairs { 0, 300000 } do
        local updated, err = relays:update(relay.uid, { config = {
          lingering_subscribe = { enabled = true, max_timeout_ms = ms } } })
        assert.is_nil(err)
        assert.equal(ms, updated.config.lingering_subscribe.max_timeout_ms)
      end
    end)

    it("rejects both features enabled at once", function()
      rejects("config", "cannot both be true", update {
        lingering_subscribe = { enabled = true },
        origin_fallback = { enabled = true, origins = {} },
      })
    end)

    it("rejects a non-boolean enabled", function()
      rejects("config.origin_fallback.enabled", "boolean",
              update { origin_fallback = { enabled = "yes" } })
    end)

    it("rejects origins given as strings", function()
      rejects("config.origin_fallback.origins[1]", "url",
              update { origin_fallback = { origins = { "https://a" } } })
    end)

    it("rejects an origin without url", function()
      rejects("config.origin_fallback.origins[2].url", "non-empty string",
              update { origin_fallback = { origins = {
                { url = "https://a" }, {} } } })
    end)

    it("rejects origins with a hole", function()
      rejects("config.origin_fallback.origins", "array",
              update { origin_fallback = { origins = {
                [1] = { url = "https://a" }, [3] = { url = "https://c" } } } })
    end)

    it("rejects an unknown config key", function()
      rejects("config.upstreams", "unknown parameter",
              update { upstreams = {} })
    end)

    it("rejects an unknown lingering_subscribe key", function()
      rejects("config.lingering_subscribe.timeout", "unknown parameter",
              update { lingering_subscribe = { timeout = 5 } })
    end)

    it("rejects a config that is not a table", function()
      rejects("config", "table", update("on"))
    end)

    it("rejects an empty name", function()
      rejects("name", "non-empty string", relays:update(UID, { name = "" }))
    end)
  end)

  describe("rotate", function()
    it("requires type", function()
      rejects("type", "publish_subscribe", relays.tokens:rotate(UID, {}))
    end)

    it("rejects an unknown type", function()
      rejects("type", '"publish"',
              relays.tokens:rotate(UID, { type = "publish" }))
    end)
  end)

  describe("list", function()
    it("rejects a string asc", function()
      rejects("asc", "boolean", relays:list { asc = "true" })
    end)

    it("rejects per_page 0", function()
      rejects("per_page", "integer", relays:list { per_page = 0 })
    end)

    it("rejects a malformed created_after", function()
      rejects("created_after", "RFC 3339",
              relays:list { created_after = "yesterday" })
    end)

    it("rejects a created_before without offset", function()
      rejects("created_before", "RFC 3339",
              relays:list { created_before = "2026-01-02T03:04:05" })
    end)

    it("rejects an unknown key", function()
      rejects("page", "unknown parameter", relays:list { page = 2 })
    end)
  end)

  describe("ids", function()
    it("rejects an empty relay_id", function()
      rejects("relay_id", "non-empty string", relays:get(""))
    end)

    it("rejects a numeric relay_id", function()
      rejects("relay_id", "non-empty string", relays:get(12))
    end)

    it("rejects a nil relay_id", function()
      rejects("relay_id", "got nothing", relays:delete(nil))
    end)

    it("rejects dot segments", function()
      rejects("relay_id", "'..'", relays:get(".."))
      rejects("relay_id", "'..'", relays:get("."))
    end)

    it("rejects a relay_id with CRLF", function()
      rejects("relay_id", "CR, LF", relays:get("abc\r\nX-Injected: 1"))
    end)

    it("rejects an empty account_id", function()
      rejects("account_id", "non-empty string",
              relays:list { account_id = "" })
    end)

    it("rejects a dot-dot account_id", function()
      rejects("account_id", "'..'", relays:create {
        name = "x", account_id = ".." })
    end)

    it("percent-encodes a relay_id with reserved characters", function()
      local relay, err = relays:get("a/b?c#d%2e")
      assert.is_nil(relay)
      assert.equal("NotFoundError", err.name)
      local entry = emu:journal()[1]
      assert.equal("/client/v4/accounts/" .. ACCOUNT ..
                   "/moq/relays/a%2Fb%3Fc%23d%252e", entry.uri)
    end)

    it("keeps an encoded dot-dot inside its segment", function()
      local relay = assert(relays:create { name = "target" })
      local result, err = relays:get("%2e%2e")
      assert.is_nil(result)
      assert.equal("NotFoundError", err.name)
      -- The list endpoint one level up was not reached.
      assert.is_nil(err.result_info)
      assert.truthy(relay)
    end)
  end)

  describe("misuse", function()
    it("raises for a method called with a dot", function()
      assert.has_error(function() relays.list {} end,
        "relays.list: call it with ':' (relays:list(...)), not '.'")
      assert.has_error(function() relays.get(UID) end)
      assert.has_error(function() relays.tokens.rotate(UID, {}) end,
        "relays.tokens.rotate: call it with ':' " ..
        "(relays.tokens:rotate(...)), not '.'")
      assert.has_error(function() cf.close() end)
    end)

    it("raises for params that are not a table", function()
      assert.has_error(function() relays:create "name" end,
        "create: params (argument 1) must be a table, got string")
      assert.has_error(function() relays:update(UID, "x") end)
      assert.has_error(function() relays:list(5) end)
      assert.has_error(function() relays:create() end)
    end)
  end)
end)
