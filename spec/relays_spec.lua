-- The six relay operations against the emulator, and the models they
-- return.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local OTHER_ACCOUNT = "f037e56e89293a057740de681ac9abbe"

describe("relays", function()
  local emu, cf, relays

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    if cf then cf:close() end
    emu:stop()
  end)

  before_each(function()
    emu:reset()
    cf = cloudflare.new {
      api_token = "local-dev-token", account_id = ACCOUNT, base_url = emu.url,
    }
    relays = cf.moq.relays
  end)

  after_each(function()
    cf:close()
  end)

  describe("create", function()
    it("returns the relay with both tokens", function()
      local relay, err = relays:create { name = "Production Live Stream" }
      assert.is_nil(err)
      assert.equal("Production Live Stream", relay.name)
      assert.matches("^%x+$", relay.uid)
      assert.equal(32, #relay.uid)
      assert.is_string(relay.token_publish_subscribe)
      assert.is_string(relay.token_subscribe)
      assert.not_equal(relay.token_publish_subscribe, relay.token_subscribe)
      local stored = emu:relay(relay.uid)
      assert.equal(stored.token_publish_subscribe,
                   relay.token_publish_subscribe)
      assert.equal(stored.token_subscribe, relay.token_subscribe)
    end)

    it("returns the default config with integer timeout", function()
      local relay = assert(relays:create { name = "defaults" })
      local ls = relay.config.lingering_subscribe
      assert.is_true(ls.enabled)
      assert.equal(30000, ls.max_timeout_ms)
      assert.equal("integer", math.type(ls.max_timeout_ms))
      assert.is_false(relay.config.origin_fallback.enabled)
    end)

    it("keeps the server's exact created and modified strings", function()
      local relay = assert(relays:create { name = "stamps" })
      local stored = emu:relay(relay.uid)
      assert.equal(stored.created, relay.created)
      assert.equal(stored.modified, relay.modified)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$",
                     relay.created)
    end)

    it("sends exactly the name in a JSON body", function()
      emu:clear_journal()
      assert(relays:create { name = "body check" })
      local entry = emu:journal()[1]
      assert.equal("POST", entry.method)
      assert.equal("/client/v4/accounts/" .. ACCOUNT .. "/moq/relays",
                   entry.uri)
      assert.equal('{"name":"body check"}', entry.body)
      assert.equal("application/json", entry.headers["content-type"])
    end)

    it("sets a metatable naming the type", function()
      local relay = assert(relays:create { name = "typed" })
      assert.equal(cloudflare.models.CreatedRelay, getmetatable(relay))
      assert.equal("cloudflare.CreatedRelay", getmetatable(relay).__name)
      assert.equal("cloudflare.RelayConfig",
                   getmetatable(relay.config).__name)
    end)

    it("hides both tokens from tostring", function()
      local relay = assert(relays:create { name = "secret keeper" })
      local text = tostring(relay)
      assert.matches("cloudflare.CreatedRelay", text, 1, true)
      assert.matches(relay.uid, text, 1, true)
      assert.is_nil(text:find(relay.token_publish_subscribe, 1, true))
      assert.is_nil(text:find(relay.token_subscribe, 1, true))
      assert.matches("token_subscribe=<hidden", text, 1, true)
    end)
  end)

  describe("get", function()
    it("returns config without tokens", function()
      local created = assert(relays:create { name = "fetch me" })
      local relay, err = relays:get(created.uid)
      assert.is_nil(err)
      assert.equal(created.uid, relay.uid)
      assert.equal("fetch me", relay.name)
      assert.equal(30000, relay.config.lingering_subscribe.max_timeout_ms)
      assert.is_nil(relay.token_publish_subscribe)
      assert.is_nil(relay.token_subscribe)
      assert.equal("cloudflare.Relay", getmetatable(relay).__name)
    end)

    it("describes the relay and its config in tostring", function()
      local created = assert(relays:create { name = "shown" })
      local relay = assert(relays:get(created.uid))
      local text = tostring(relay)
      assert.matches("^cloudflare.Relay uid=" .. created.uid, text)
      assert.matches('name="shown"', text, 1, true)
      assert.matches("lingering_subscribe=on/30000ms", text, 1, true)
      assert.matches("origin_fallback=off (origins: 0)", text, 1, true)
      local config = relay.config
      assert.equal("cloudflare.LingeringSubscribe enabled=true " ..
                   "max_timeout_ms=30000",
                   tostring(config.lingering_subscribe))
      assert.equal("cloudflare.OriginFallback enabled=false origins=0",
                   tostring(config.origin_fallback))
      assert.equal("cloudflare.Origins []",
                   tostring(config.origin_fallback.origins))
    end)

    it("leaves status absent until the relay connects", function()
      local created = assert(relays:create { name = "status" })
      local relay = assert(relays:get(created.uid))
      assert.is_nil(relay.status)
      assert.is_nil(rawget(relay, "status"))
      emu:set_status(created.uid, "connected")
      relay = assert(relays:get(created.uid))
      assert.equal("connected", relay.status)
    end)

    it("returns NotFoundError for an unknown uid", function()
      local relay, err = relays:get(string.rep("0", 32))
      assert.is_nil(relay)
      assert.equal("NotFoundError", err.name)
      assert.equal(404, err.status)
      assert.is_number(err.code)
      assert.is_table(err.errors)
      assert.equal(err.code, err.errors[1].code)
    end)

    it("isolates accounts", function()
      local created = assert(relays:create { name = "mine" })
      local relay, err = relays:get(created.uid, { account_id = OTHER_ACCOUNT })
      assert.is_nil(relay)
      assert.equal("NotFoundError", err.name)
    end)
  end)

  describe("update", function()
    it("enables origin fallback with two origins", function()
      local created = assert(relays:create { name = "fallback" })
      local relay, err = relays:update(created.uid, {
        config = {
          lingering_subscribe = { enabled = false },
          origin_fallback = {
            enabled = true,
            origins = { { url = "https://a.example/moq" },
                        { url = "https://b.example/moq" } },
          },
        },
      })
      assert.is_nil(err)
      assert.is_true(relay.config.origin_fallback.enabled)
      assert.equal("https://a.example/moq",
                   relay.config.origin_fallback.origins[1].url)
      assert.equal("https://b.example/moq",
                   relay.config.origin_fallback.origins[2].url)
      assert.is_false(relay.config.lingering_subscribe.enabled)
    end)

    it("keeps fields left out", function()
      local created = assert(relays:create { name = "partial" })
      local relay = assert(relays:update(created.uid, { name = "renamed" }))
      assert.equal("renamed", relay.name)
      assert.is_true(relay.config.lingering_subscribe.enabled)
      assert.equal(30000, relay.config.lingering_subscribe.max_timeout_ms)
    end)

    it("sends an empty origins list as an array", function()
      local created = assert(relays:create { name = "empty origins" })
      emu:clear_journal()
      local relay = assert(relays:update(created.uid, {
        config = { origin_fallback = { enabled = false, origins = {} } },
      }))
      local body = emu:journal()[1].body
      assert.matches('"origins":[]', body, 1, true)
      assert.equal(0, #relay.config.origin_fallback.origins)
    end)

    it("sends integers without a decimal point", function()
      local created = assert(relays:create { name = "integers" })
      emu:clear_journal()
      assert(relays:update(created.uid, {
        config = { lingering_subscribe = { enabled = true,
                                           max_timeout_ms = 45000.0 } },
      }))
      local body = emu:journal()[1].body
      assert.matches('"max_timeout_ms":45000}', body, 1, true)
    end)

    it("returns the new max_timeout_ms as an integer", function()
      local created = assert(relays:create { name = "ceiling" })
      local relay = assert(relays:update(created.uid, {
        config = { lingering_subscribe = { enabled = true,
                                           max_timeout_ms = 300000 } },
      }))
      assert.equal(300000, relay.config.lingering_subscribe.max_timeout_ms)
      assert.equal("integer",
                   math.type(relay.config.lingering_subscribe.max_timeout_ms))
    end)

    it("uses PUT on the relay's path", function()
      local created = assert(relays:create { name = "method" })
      emu:clear_journal()
      assert(relays:update(created.uid, { name = "method 2" }))
      local entry = emu:journal()[1]
      assert.equal("PUT", entry.method)
      assert.equal("/client/v4/accounts/" .. ACCOUNT .. "/moq/relays/" ..
                   created.uid, entry.uri)
    end)
  end)

  describe("delete", function()
    it("returns true and hides the relay", function()
      local created = assert(relays:create { name = "doomed" })
      local ok, err = relays:delete(created.uid)
      assert.is_nil(err)
      assert.is_true(ok)
      local relay, get_err = relays:get(created.uid)
      assert.is_nil(relay)
      assert.equal("NotFoundError", get_err.name)
      assert.is_true(emu:relay(created.uid).deleted)
    end)

    it("returns NotFoundError the second time", function()
      local created = assert(relays:create { name = "twice" })
      assert(relays:delete(created.uid))
      local ok, err = relays:delete(created.uid)
      assert.is_nil(ok)
      assert.equal("NotFoundError", err.name)
    end)

    it("removes the relay from list", function()
      local keep = assert(relays:create { name = "keep" })
      local drop = assert(relays:create { name = "drop" })
      assert(relays:delete(drop.uid))
      local page = assert(relays:list())
      assert.equal(1, #page)
      assert.equal(keep.uid, page[1].uid)
    end)
  end)

  describe("tokens:rotate", function()
    it("returns a new subscribe token", function()
      local created = assert(relays:create { name = "rotate" })
      local token, err = relays.tokens:rotate(created.uid,
                                              { type = "subscribe" })
      assert.is_nil(err)
      assert.equal("subscribe", token.type)
      assert.is_string(token.token)
      assert.not_equal(created.token_subscribe, token.token)
      assert.equal("cloudflare.RelayToken", getmetatable(token).__name)
    end)

    it("invalidates the old token of that type only", function()
      local created = assert(relays:create { name = "rotate two" })
      local token = assert(relays.tokens:rotate(created.uid,
                                                { type = "publish_subscribe" }))
      local stored = emu:relay(created.uid)
      assert.equal(token.token, stored.token_publish_subscribe)
      assert.equal(created.token_subscribe, stored.token_subscribe)
    end)

    it("hides the token from tostring", function()
      local created = assert(relays:create { name = "rotate three" })
      local token = assert(relays.tokens:rotate(created.uid,
                                                { type = "subscribe" }))
      local text = tostring(token)
      assert.is_nil(text:find(token.token, 1, true))
      assert.matches("type=subscribe", text, 1, true)
    end)

    it("posts the type to the rotate path", function()
      local created = assert(relays:create { name = "rotate four" })
      emu:clear_journal()
      assert(relays.tokens:rotate(created.uid, { type = "subscribe" }))
      local entry = emu:journal()[1]
      assert.equal("POST", entry.method)
      assert.equal("/client/v4/accounts/" .. ACCOUNT .. "/moq/relays/" ..
                   created.uid .. "/tokens/rotate", entry.uri)
      assert.equal('{"type":"subscribe"}', entry.body)
    end)
  end)

  describe("list", function()
    local function create_named(names)
      local out = {}
      for i, name in ipairs(names) do
        out[i] = assert(relays:create { name = name })
      end
      return out
    end

    it("returns summaries newest first with result_info", function()
      local made = create_named { "one", "two", "three" }
      local page, err = relays:list()
      assert.is_nil(err)
      assert.equal(3, #page)
      assert.equal(made[3].uid, page[1].uid)
      assert.equal(made[1].uid, page[3].uid)
      assert.equal(3, page.result_info.count)
      assert.equal(3, page.result_info.total)
      assert.equal("integer", math.type(page.result_info.total))
      assert.equal("cloudflare.RelaySummary", getmetatable(page[1]).__name)
      assert.equal("cloudflare.RelayPage", getmetatable(page).__name)
    end)

    it("returns summaries without config or tokens", function()
      create_named { "summary" }
      local page = assert(relays:list())
      assert.is_nil(page[1].config)
      assert.is_nil(page[1].token_subscribe)
      assert.is_string(page[1].created)
      assert.is_string(page[1].modified)
    end)

    it("iterates with ipairs", function()
      create_named { "a", "b" }
      local page = assert(relays:list())
      local seen = 0
      for i, summary in ipairs(page) do
        seen = i
        assert.is_string(summary.uid)
      end
      assert.equal(2, seen)
    end)

    it("orders oldest first with asc", function()
      local made = create_named { "first", "second" }
      local page = assert(relays:list { asc = true })
      assert.equal(made[1].uid, page[1].uid)
      assert.equal(made[2].uid, page[2].uid)
    end)

    it("pages with per_page and created_after", function()
      local made = create_named { "p1", "p2", "p3", "p4", "p5" }
      local first = assert(relays:list { asc = true, per_page = 2 })
      assert.equal(2, #first)
      assert.equal(2, first.result_info.count)
      assert.equal(5, first.result_info.total)
      local second = assert(relays:list {
        asc = true, per_page = 2, created_after = first[2].created,
      })
      assert.equal(made[3].uid, second[1].uid)
      assert.equal(made[4].uid, second[2].uid)
      assert.equal(3, second.result_info.total)
    end)

    it("pages backwards with created_before", function()
      local made = create_named { "q1", "q2", "q3" }
      local page = assert(relays:list { created_before = made[3].created })
      assert.equal(2, #page)
      assert.equal(made[2].uid, page[1].uid)
    end)

    it("sends the query in wire form", function()
      emu:clear_journal()
      assert(relays:list { asc = false, per_page = 10.0,
                           created_after = "2026-01-02T03:04:05+01:00" })
      local query = emu:journal()[1].query
      assert.matches("asc=false", query, 1, true)
      assert.matches("per_page=10", query, 1, true)
      assert.is_nil(query:find("10.0", 1, true))
      assert.matches("created_after=2026-01-02T03%3A04%3A05%2B01%3A00",
                     query, 1, true)
    end)

    it("returns an empty page for an empty account", function()
      local page = assert(relays:list())
      assert.equal(0, #page)
      assert.equal(0, page.result_info.total)
    end)

    it("describes the page in tostring", function()
      create_named { "shown" }
      local page = assert(relays:list())
      assert.matches("cloudflare.RelayPage (relays: 1", tostring(page), 1,
                     true)
    end)
  end)

  describe("account_id", function()
    it("in params overrides the client's", function()
      emu:clear_journal()
      local relay = assert(relays:create { name = "elsewhere",
                                           account_id = OTHER_ACCOUNT })
      assert.equal(OTHER_ACCOUNT, emu:relay(relay.uid).account_id)
      assert.matches("/accounts/" .. OTHER_ACCOUNT .. "/", emu:journal()[1].uri,
                     1, true)
      local page = assert(relays:list { account_id = OTHER_ACCOUNT })
      assert.equal(1, #page)
      page = assert(relays:list())
      assert.equal(0, #page)
    end)
  end)
end)
