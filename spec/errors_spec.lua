-- Error objects: one kind per failure, with the fields a program tests.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local OTHER_ACCOUNT = "f037e56e89293a057740de681ac9abbe"
local UID = string.rep("b", 32)

describe("errors", function()
  local emu

  setup(function()
    emu = emulator.start {
      tokens = { "good-token", "bound-token=" .. ACCOUNT },
      api_keys = { "ops@example.com:0123456789abcdef" },
    }
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  local function client(opts)
    opts = opts or {}
    opts.base_url = emu.url
    opts.account_id = opts.account_id or ACCOUNT
    if not opts.api_key and not opts.api_token then
      opts.api_token = "good-token"
    end
    return cloudflare.new(opts)
  end

  describe("authentication", function()
    it("maps a malformed Authorization header to 6003", function()
      local cf = client { api_token = "has spaces in it" }
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("BadRequestError", err.name)
      assert.equal(400, err.status)
      assert.equal(6003, err.code)
      assert.equal(6111, err.errors[1].error_chain[1].code)
      assert.matches("(6111)", err.message, 1, true)
      cf:close()
    end)

    it("maps an unknown token to AuthenticationError", function()
      local cf = client { api_token = "unknown-token" }
      local _, err = cf.moq.relays:list()
      assert.equal("AuthenticationError", err.name)
      assert.equal(401, err.status)
      assert.equal(10000, err.code)
      assert.matches("check the API token", err.message, 1, true)
      cf:close()
    end)

    it("maps another account to PermissionDeniedError", function()
      local cf = client { api_token = "bound-token" }
      assert(cf.moq.relays:list())
      local _, err = cf.moq.relays:list { account_id = OTHER_ACCOUNT }
      assert.equal("PermissionDeniedError", err.name)
      assert.equal(403, err.status)
      assert.matches("may access account " .. OTHER_ACCOUNT, err.message, 1,
                     true)
      cf:close()
    end)

    it("accepts the legacy key pair", function()
      local cf = client { api_key = "0123456789abcdef",
                          email = "ops@example.com" }
      local page, err = cf.moq.relays:list()
      assert.is_nil(err)
      assert.equal(0, #page)
      local headers = emu:journal()[1].headers
      assert.equal("ops@example.com", headers["x-auth-email"])
      assert.is_nil(headers.authorization)
      cf:close()
    end)

    it("maps a wrong legacy key to 6003 with 6103", function()
      local cf = client { api_key = "wrong-key", email = "ops@example.com" }
      local _, err = cf.moq.relays:list()
      assert.equal("BadRequestError", err.name)
      assert.equal(6003, err.code)
      assert.equal(6103, err.errors[1].error_chain[1].code)
      cf:close()
    end)

    it("prefers the token over the key pair", function()
      local cf = client { api_token = "good-token", api_key = "wrong-key",
                          email = "ops@example.com" }
      assert(cf.moq.relays:list())
      local headers = emu:journal()[1].headers
      assert.equal("Bearer good-token", headers.authorization)
      assert.is_nil(headers["x-auth-key"])
      cf:close()
    end)
  end)

  describe("from the envelope", function()
    local cf

    -- No retries, so that each queued response is the only one seen.
    before_each(function()
      cf = client { max_retries = 0 }
    end)

    after_each(function()
      cf:close()
    end)

    local function envelope(status, body, headers)
      headers = headers or {}
      headers["Content-Type"] = headers["Content-Type"] or "application/json"
      return { status = status, headers = headers, body = body }
    end

    local statuses = {
      { 400, "BadRequestError" }, { 401, "AuthenticationError" },
      { 403, "PermissionDeniedError" }, { 404, "NotFoundError" },
      { 409, "ConflictError" }, { 422, "UnprocessableEntityError" },
      { 429, "RateLimitError" }, { 500, "InternalServerError" },
      { 503, "InternalServerError" }, { 418, "APIStatusError" },
    }
    for _, case in ipairs(statuses) do
      local status, name = case[1], case[2]
      it("maps HTTP " .. status .. " to " .. name, function()
        emu:faults("get", { envelope(status,
          '{"success":false,"errors":[{"code":1234,"message":"nope"}],' ..
          '"messages":[{"code":1,"message":"note"}],"result":null}',
          { ["cf-ray"] = "8c1a2b3c4d5e6f70-SJC" }) })
        local relay, err = cf.moq.relays:get(UID)
        assert.is_nil(relay)
        assert.equal(name, err.name)
        assert.equal(status, err.status)
        assert.equal(1234, err.code)
        assert.equal("nope", err.errors[1].message)
        assert.equal("note", err.messages[1].message)
        assert.equal("8c1a2b3c4d5e6f70-SJC", err.ray_id)
        assert.is_true(cloudflare.errors.is(err, name))
      end)
    end

    it("treats success false with 200 as an error", function()
      emu:faults("get", { envelope(200,
        '{"success":false,"errors":[{"code":7,"message":"odd"}],' ..
        '"messages":[],"result":null}') })
      local relay, err = cf.moq.relays:get(UID)
      assert.is_nil(relay)
      assert.equal(200, err.status)
      assert.equal(7, err.code)
      assert.matches("success: false", err.message, 1, true)
    end)

    it("reads errors null on success as no errors", function()
      local created = assert(cf.moq.relays:create { name = "nulls" })
      emu:faults("get", { envelope(200, string.format(
        '{"success":true,"errors":null,"messages":null,"result":' ..
        '{"uid":"%s","name":"nulls","created":"2026-01-01T00:00:00Z",' ..
        '"modified":"2026-01-01T00:00:00Z","config":{},"status":null}}',
        created.uid)) })
      local relay, err = cf.moq.relays:get(created.uid)
      assert.is_nil(err)
      assert.equal("nulls", relay.name)
      assert.is_nil(rawget(relay, "status"))
    end)

    it("keeps unknown result fields", function()
      emu:faults("get", { envelope(200,
        '{"success":true,"errors":[],"messages":[],"result":' ..
        '{"uid":"u1","name":"n","created":"c","modified":"m",' ..
        '"config":{"upstreams":[{"url":"x"}]},"region":"weur"}}') })
      local relay = assert(cf.moq.relays:get(UID))
      assert.equal("weur", relay.region)
      assert.equal("x", relay.config.upstreams[1].url)
    end)

    it("gives a short message for an HTML 502", function()
      local page = "<html><head><title>502 Bad Gateway</title></head>" ..
        "<body>" .. string.rep("<p>cloudflare edge</p>", 2000) ..
        "</body></html>"
      emu:faults("get", { { status = 502, body = page,
                            headers = { ["Content-Type"] = "text/html" } } })
      local relay, err = cf.moq.relays:get(UID)
      assert.is_nil(relay)
      assert.equal("InternalServerError", err.name)
      assert.equal(502, err.status)
      assert.matches("502 Bad Gateway", err.message, 1, true)
      assert.is_true(#err.message < 300)
      assert.is_nil(tostring(err):find("\n"))
    end)

    it("maps a non-JSON 200 to ResponseDecodeError", function()
      emu:faults("get", { { status = 200, body = "<html>ok</html>",
                            headers = { ["Content-Type"] = "text/html" } } })
      local _, err = cf.moq.relays:get(UID)
      assert.equal("ResponseDecodeError", err.name)
      assert.equal(200, err.status)
    end)

    it("maps a wrong result type to ResponseDecodeError", function()
      emu:faults("get", { envelope(200,
        '{"success":true,"errors":[],"messages":[],"result":' ..
        '{"uid":5,"name":"n","created":"c","modified":"m"}}') })
      local _, err = cf.moq.relays:get(UID)
      assert.equal("ResponseDecodeError", err.name)
      assert.matches("result.uid: expected a string, got an integer",
                     err.message, 1, true)
    end)

    it("accepts a 204 on delete", function()
      emu:faults("delete", { { status = 204, body = "" } })
      assert.is_true(cf.moq.relays:delete(UID))
    end)
  end)

  describe("tostring", function()
    it("gives one line with name, status and path", function()
      local cf = client()
      local _, err = cf.moq.relays:get(UID)
      local text = tostring(err)
      assert.matches("^NotFoundError: HTTP 404: ", text)
      -- The code shows once, in brackets after its message.
      assert.matches("(" .. err.code .. ")", text, 1, true)
      assert.is_nil(text:find("code " .. err.code, 1, true))
      assert.matches("(GET /accounts/" .. ACCOUNT .. "/moq/relays/" .. UID,
                     text, 1, true)
      assert.is_nil(text:find("\n"))
      cf:close()
    end)
  end)

  describe("connection", function()
    it("maps a refused connection to APIConnectionError", function()
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      server:close()
      local cf = cloudflare.new {
        api_token = "t", account_id = ACCOUNT,
        base_url = "http://127.0.0.1:" .. port .. "/client/v4",
      }
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("APIConnectionError", err.name)
      assert.is_nil(err.status)
      assert.equal("connect", err.transport_error)
      cf:close()
    end)

    it("maps a slow response to APITimeoutError", function()
      local cf = client { timeout = 0.5, max_retries = 0 }
      emu:faults("list", { { delay_ms = 3000, status = 200, body = "{}" } })
      local page, err = cf.moq.relays:list()
      assert.is_nil(page)
      assert.equal("APITimeoutError", err.name)
      cf:close()
    end)
  end)
end)
