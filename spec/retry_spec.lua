-- Retries, backoff, Retry-After, deadlines and rate limits.
--
-- The client's clock is replaced by one that records each sleep instead
-- of sleeping, so the waits are asserted exactly and the suite stays fast.

local cloudflare = require "cloudflare"
local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local UID = string.rep("c", 32)

local function envelope_failure(status, code)
  return {
    status = status,
    headers = { ["Content-Type"] = "application/json" },
    body = string.format('{"success":false,"errors":[{"code":%d,' ..
                         '"message":"injected"}],"messages":[],' ..
                         '"result":null}', code or 1000 + status),
  }
end

-- Count the journal's requests with this method.
local function count(entries, method)
  local n = 0
  for _, entry in ipairs(entries) do
    if entry.method == method then
      n = n + 1
    end
  end
  return n
end

describe("retries", function()
  local emu, cf, slept, logged

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  local function client(opts)
    opts = opts or {}
    opts.api_token = "local-dev-token"
    opts.account_id = ACCOUNT
    opts.base_url = opts.base_url or emu.url
    opts.clock = {
      now = core.now, time = core.time,
      sleep = function(seconds) slept[#slept + 1] = seconds end,
    }
    opts.logger = function(level, message)
      logged[#logged + 1] = level .. ": " .. message
    end
    return cloudflare.new(opts)
  end

  before_each(function()
    emu:reset()
    slept = {}
    logged = {}
    cf = client()
  end)

  after_each(function()
    cf:close()
  end)

  describe("idempotent calls", function()
    it("retry a 503 and succeed", function()
      emu:faults("list", { envelope_failure(503) })
      local page, err = cf.moq.relays:list()
      assert.is_nil(err)
      assert.equal(0, #page)
      assert.equal(2, #emu:journal())
      assert.equal(1, #slept)
    end)

    it("back off exponentially with jitter", function()
      emu:faults("get", { envelope_failure(500), envelope_failure(502),
                          envelope_failure(504) })
      local _, err = cf.moq.relays:get(UID, nil, { max_retries = 2 })
      assert.equal("InternalServerError", err.name)
      assert.equal(504, err.status)
      assert.equal(3, err.attempts)
      assert.equal(2, #slept)
      assert.is_true(slept[1] >= 0.25 and slept[1] <= 0.5)
      assert.is_true(slept[2] >= 0.5 and slept[2] <= 1.0)
    end)

    it("retry 408, 409 and 429", function()
      emu:faults("list", { envelope_failure(408), envelope_failure(409),
                           envelope_failure(429) })
      assert(cf.moq.relays:list(nil, { max_retries = 3 }))
      assert.equal(4, #emu:journal())
    end)

    it("do not retry other 4xx", function()
      for _, status in ipairs { 400, 401, 403, 404, 422 } do
        emu:clear_journal()
        emu:faults("get", { envelope_failure(status) })
        local _, err = cf.moq.relays:get(UID)
        assert.equal(status, err.status)
        assert.equal(1, #emu:journal())
      end
      assert.equal(0, #slept)
    end)

    it("follow x-should-retry false", function()
      local response = envelope_failure(503)
      response.headers["x-should-retry"] = "false"
      emu:faults("list", { response })
      local _, err = cf.moq.relays:list()
      assert.equal(503, err.status)
      assert.equal(1, #emu:journal())
    end)

    it("follow x-should-retry true on a 400", function()
      local response = envelope_failure(400)
      response.headers["x-should-retry"] = "true"
      emu:faults("list", { response })
      assert(cf.moq.relays:list())
      assert.equal(2, #emu:journal())
    end)

    it("stop after max_retries", function()
      emu:faults("list", { envelope_failure(500), envelope_failure(500),
                           envelope_failure(500), envelope_failure(500) })
      local _, err = cf.moq.relays:list()
      assert.equal("InternalServerError", err.name)
      assert.equal(3, #emu:journal())
      assert.equal(3, err.attempts)
    end)

    it("honour max_retries zero per call", function()
      emu:faults("list", { envelope_failure(500) })
      local _, err = cf.moq.relays:list(nil, { max_retries = 0 })
      assert.equal(500, err.status)
      assert.equal(1, #emu:journal())
      assert.equal(0, #slept)
    end)

    it("retry a dropped connection", function()
      local created = assert(cf.moq.relays:create { name = "drop" })
      emu:clear_journal()
      emu:faults("get", { { drop = "before_headers" } })
      local relay, err = cf.moq.relays:get(created.uid)
      assert.is_nil(err)
      assert.equal(created.uid, relay.uid)
      assert.equal(2, #emu:journal())
    end)

    it("retry a timeout", function()
      emu:faults("list", { { delay_ms = 1500, passthrough = true } })
      local page, err = cf.moq.relays:list(nil, { timeout = 0.3 })
      assert.is_nil(err)
      assert.equal(0, #page)
      assert.equal(1, #slept)
    end)
  end)

  describe("Retry-After", function()
    local function with_header(name, value)
      local response = envelope_failure(429, 971)
      response.headers[name] = value
      return response
    end

    it("waits the seconds it names", function()
      emu:faults("list", { with_header("Retry-After", "3") })
      assert(cf.moq.relays:list())
      assert.same({ 3 }, slept)
    end)

    it("waits for an HTTP date", function()
      local at = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 30)
      emu:faults("list", { with_header("Retry-After", at) })
      assert(cf.moq.relays:list())
      assert.equal(1, #slept)
      assert.is_true(slept[1] > 25 and slept[1] <= 31)
    end)

    it("reads retry-after-ms", function()
      emu:faults("list", { with_header("retry-after-ms", "250") })
      assert(cf.moq.relays:list())
      assert.same({ 0.25 }, slept)
    end)

    it("is capped by max_retry_wait", function()
      cf:close()
      cf = client { max_retry_wait = 5 }
      emu:faults("list", { with_header("Retry-After", "3600") })
      assert(cf.moq.relays:list())
      assert.same({ 5 }, slept)
    end)

    it("falls back to backoff when unparseable", function()
      emu:faults("list", { with_header("Retry-After", "soon") })
      assert(cf.moq.relays:list())
      assert.equal(1, #slept)
      assert.is_true(slept[1] >= 0.25 and slept[1] <= 0.5)
    end)

    it("falls back to backoff for a past date", function()
      emu:faults("list", { with_header("Retry-After",
                                       "Wed, 21 Oct 2015 07:28:00 GMT") })
      assert(cf.moq.relays:list())
      assert.is_true(slept[1] >= 0.25 and slept[1] <= 0.5)
    end)
  end)

  describe("non-idempotent calls", function()
    it("never re-send a create after a 5xx", function()
      emu:faults("create", { envelope_failure(502) })
      local relay, err = cf.moq.relays:create { name = "once" }
      assert.is_nil(relay)
      assert.equal("InternalServerError", err.name)
      assert.is_true(err.outcome_unknown)
      assert.matches("outcome is unknown", err.message, 1, true)
      assert.equal(1, count(emu:journal(), "POST"))
      assert.matches("^warn: POST .* outcome unknown", logged[1])
    end)

    it("report an unknown outcome when the server acted", function()
      emu:faults("create", { { after = true, status = 500,
                               headers = { ["Content-Type"] = "text/plain" },
                               body = "upstream reset" } })
      local _, err = cf.moq.relays:create { name = "acted" }
      assert.is_true(err.outcome_unknown)
      local page = assert(cf.moq.relays:list())
      assert.equal(1, #page)
      assert.equal("acted", page[1].name)
    end)

    it("ignore x-should-retry true on a create", function()
      local response = envelope_failure(500)
      response.after = true
      response.headers["x-should-retry"] = "true"
      emu:faults("create", { response })
      local relay, err = cf.moq.relays:create { name = "asked twice" }
      assert.is_nil(relay)
      assert.is_true(err.outcome_unknown)
      assert.equal(1, count(emu:journal(), "POST"))
      assert.equal(1, #assert(cf.moq.relays:list()))
    end)

    it("ignore x-should-retry true on a rotate", function()
      local created = assert(cf.moq.relays:create { name = "rotate once" })
      emu:clear_journal()
      local response = envelope_failure(409)
      response.after = true
      response.headers["x-should-retry"] = "true"
      emu:faults("rotate", { response })
      local _, err = cf.moq.relays.tokens:rotate(created.uid,
                                                 { type = "subscribe" })
      assert.equal("ConflictError", err.name)
      assert.equal(1, count(emu:journal(), "POST"))
    end)

    it("report an unknown outcome for an unreadable 2xx", function()
      emu:faults("create", { { after = true, status = 200,
                               headers = { ["Content-Type"] =
                                 "application/json" },
                               body = '{"success":tr' } })
      local relay, err = cf.moq.relays:create { name = "unreadable" }
      assert.is_nil(relay)
      assert.equal("ResponseDecodeError", err.name)
      assert.is_true(err.outcome_unknown)
      assert.equal(1, count(emu:journal(), "POST"))
    end)

    it("never re-send a create after a 409", function()
      emu:faults("create", { envelope_failure(409) })
      local _, err = cf.moq.relays:create { name = "conflict" }
      assert.equal("ConflictError", err.name)
      assert.is_nil(err.outcome_unknown)
      assert.equal(1, count(emu:journal(), "POST"))
    end)

    it("retry a create after a 429", function()
      emu:faults("create", { envelope_failure(429, 971) })
      local relay = assert(cf.moq.relays:create { name = "limited" })
      assert.equal("limited", relay.name)
      assert.equal(2, count(emu:journal(), "POST"))
      assert.equal(1, #assert(cf.moq.relays:list()))
    end)

    it("never re-send a rotate after a dropped connection", function()
      local created = assert(cf.moq.relays:create { name = "rotate" })
      emu:clear_journal()
      emu:faults("rotate", { { drop = "before_headers", after = true } })
      local token, err = cf.moq.relays.tokens:rotate(created.uid,
                                                     { type = "subscribe" })
      assert.is_nil(token)
      assert.equal("APIConnectionError", err.name)
      assert.is_true(err.outcome_unknown)
      assert.equal(1, #emu:journal())
    end)

    it("never re-send a create after a timeout", function()
      emu:faults("create", { { delay_ms = 1500, passthrough = true } })
      local _, err = cf.moq.relays:create({ name = "slow" },
                                          { timeout = 0.3 })
      assert.equal("APITimeoutError", err.name)
      assert.is_true(err.outcome_unknown)
      assert.equal(1, count(emu:journal(), "POST"))
    end)

    it("retry a create whose connection was refused", function()
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port = server:getsockname()
      server:close()
      cf:close()
      cf = client { base_url = "http://127.0.0.1:" .. port .. "/client/v4" }
      local _, err = cf.moq.relays:create { name = "refused" }
      assert.equal("APIConnectionError", err.name)
      assert.is_nil(err.outcome_unknown)
      assert.equal(3, err.attempts)
      assert.equal(2, #slept)
    end)
  end)

  describe("deadline", function()
    it("bounds a call with its retries", function()
      cf:close()
      cf = cloudflare.new { api_token = "local-dev-token",
                            account_id = ACCOUNT, base_url = emu.url,
                            max_retries = 10 }
      local delays = {}
      for i = 1, 10 do
        delays[i] = { delay_ms = 400, status = 503,
                      headers = { ["retry-after-ms"] = "10" }, body = "" }
      end
      emu:faults("list", delays)
      local started = core.now()
      local _, err = cf.moq.relays:list(nil, { deadline = 1 })
      local elapsed = core.now() - started
      assert.is_truthy(err)
      assert.is_true(elapsed < 1.5)
      assert.is_true(#emu:journal() < 5)
    end)

    it("rejects a negative deadline", function()
      local _, err = cf.moq.relays:list(nil, { deadline = -1 })
      assert.equal("ValidationError", err.name)
      assert.equal("options.deadline", err.field)
    end)
  end)

  describe("call options", function()
    it("send extra headers", function()
      assert(cf.moq.relays:list(nil, { headers = { ["X-Trace"] = "abc" } }))
      assert.equal("abc", emu:journal()[1].headers["x-trace"])
    end)

    it("reject a header value with a line break", function()
      local _, err = cf.moq.relays:list(nil, {
        headers = { ["X-Trace"] = "abc\r\nX-Evil: 1" } })
      assert.equal("ValidationError", err.name)
      assert.equal(0, #emu:journal())
    end)

    it("reject an unknown option", function()
      local _, err = cf.moq.relays:get(UID, nil, { retries = 1 })
      assert.equal("ValidationError", err.name)
      assert.equal("options.retries", err.field)
    end)
  end)

  describe("rate limits", function()
    it("exposes the server's Ratelimit headers", function()
      assert(cf.moq.relays:list())
      local status = cf:rate_limit_status()
      assert.equal(1199, status.remaining)
      assert.equal(1200, status.quota)
      assert.equal(300, status.window)
      assert.is_true(status.reset_in > 0 and status.reset_in <= 300)
    end)

    it("waits for the reset when nothing remains", function()
      emu:faults("list", { {
        status = 200,
        headers = { ["Content-Type"] = "application/json",
                    Ratelimit = '"default";r=0;t=7' },
        body = '{"success":true,"errors":[],"messages":[],"result":[],' ..
               '"result_info":{"count":0,"total":0}}',
      } })
      assert(cf.moq.relays:list())
      assert.equal(0, cf:rate_limit_status().remaining)
      assert(cf.moq.relays:list())
      assert.equal(1, #slept)
      assert.is_true(slept[1] > 6 and slept[1] <= 7)
    end)

    it("spaces calls with a client-side limit", function()
      cf:close()
      cf = client { rate_limit = { requests = 2, per = 10 } }
      assert(cf.moq.relays:list())
      assert(cf.moq.relays:list())
      assert.equal(0, #slept)
      assert(cf.moq.relays:list())
      assert.equal(1, #slept)
      assert.is_true(slept[1] > 9 and slept[1] <= 10)
      local status = cf:rate_limit_status()
      assert.equal(2, status.client.requests)
      assert.equal(10, status.client.per)
    end)
  end)
end)

describe("idle keep-alive connection closed by the server", function()
  local emu

  setup(function()
    emu = emulator.start { keepalive_timeout = 1 }
  end)

  teardown(function()
    emu:stop()
  end)

  it("does not fail the next call or duplicate a create", function()
    local cf = cloudflare.new {
      api_token = "local-dev-token", account_id = ACCOUNT, base_url = emu.url,
      max_retries = 0,
    }
    assert(cf.moq.relays:list())
    assert(cf.moq.relays:create { name = "before idle" })
    -- Past the emulator's keepalive_timeout, nginx has closed both.
    core.sleep(1.5)
    local relay, err = cf.moq.relays:create { name = "after idle" }
    assert.is_nil(err)
    assert.equal("after idle", relay.name)
    local page = assert(cf.moq.relays:list())
    assert.equal(2, #page)
    local posts = count(emu:journal(), "POST")
    assert.equal(2, posts)
    cf:close()
  end)

  it("reconnects for a get after the idle close", function()
    local cf = cloudflare.new {
      api_token = "local-dev-token", account_id = ACCOUNT, base_url = emu.url,
      max_retries = 0,
    }
    assert(cf.moq.relays:list())
    core.sleep(1.5)
    local page, err = cf.moq.relays:list()
    assert.is_nil(err)
    assert.is_table(page)
    local entries = emu:journal()
    assert.not_equal(entries[#entries - 1].connection,
                     entries[#entries].connection)
    cf:close()
  end)
end)

describe("rate-limited emulator", function()
  local emu

  setup(function()
    emu = emulator.start { rate_limit = "2/60" }
  end)

  teardown(function()
    emu:stop()
  end)

  it("returns RateLimitError after retries", function()
    local slept = {}
    local cf = cloudflare.new {
      api_token = "local-dev-token", account_id = ACCOUNT, base_url = emu.url,
      max_retry_wait = 30,
      clock = { now = core.now, time = core.time,
                sleep = function(s) slept[#slept + 1] = s end },
    }
    assert(cf.moq.relays:list())
    assert(cf.moq.relays:list())
    local _, err = cf.moq.relays:list()
    assert.equal("RateLimitError", err.name)
    assert.equal(429, err.status)
    assert.equal(971, err.code)
    -- Two calls passed, then three attempts of the third were refused.
    assert.equal(5, #emu:journal())
    -- Each wait came from Retry-After or the Ratelimit reset, capped at 30 s.
    assert.is_true(#slept >= 2)
    for _, seconds in ipairs(slept) do
      assert.is_true(seconds > 0 and seconds <= 30)
    end
    cf:close()
  end)
end)
