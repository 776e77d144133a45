-- Broken and hostile responses: each gives a precise error or, where the
-- API allows it, success; none crashes or hangs.

local cloudflare = require "cloudflare"
local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local UID = string.rep("d", 32)

local JSON = { ["Content-Type"] = "application/json" }

local function ok_envelope(result)
  return '{"success":true,"errors":[],"messages":[],"result":' .. result ..
    '}'
end

local RELAY = '{"uid":"%s","name":"n","created":"2026-01-01T00:00:00Z",' ..
  '"modified":"2026-01-01T00:00:00Z","config":%s}'

describe("hostile responses", function()
  local emu, cf

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
    cf = cloudflare.new { api_token = "local-dev-token", account_id = ACCOUNT,
                          base_url = emu.url, max_retries = 0 }
  end)

  after_each(function()
    cf:close()
  end)

  -- Serve `body` once for a get, and return what the client made of it.
  local function get_with(body, status, headers)
    emu:faults("get", { { status = status or 200, headers = headers or JSON,
                          body = body } })
    return cf.moq.relays:get(UID)
  end

  local function assert_decode_error(pattern, relay, err)
    assert.is_nil(relay)
    assert.equal("ResponseDecodeError", err.name)
    if pattern then
      assert.matches(pattern, err.message, 1, true)
    end
  end

  it("rejects truncated JSON", function()
    local body = ok_envelope(RELAY:format(UID, "{}"))
    for _, cut in ipairs { 1, 10, #body // 2, #body - 1 } do
      assert_decode_error("invalid JSON", get_with(body:sub(1, cut)))
    end
  end)

  it("rejects invalid UTF-8", function()
    local mime = require "mime"
    local body = ok_envelope(RELAY:format(UID, "{}")):gsub('"n"', '"\255n"')
    emu:faults("get", { { status = 200, headers = JSON,
                          body_base64 = (mime.b64(body)) } })
    assert_decode_error("invalid JSON", cf.moq.relays:get(UID))
  end)

  it("rejects a body nested 100000 levels deep", function()
    local body = string.rep("[", 100000) .. string.rep("]", 100000)
    assert_decode_error("nesting", get_with(body))
  end)

  it("rejects NaN and Infinity", function()
    for _, token in ipairs { "NaN", "Infinity", "-Infinity" } do
      local body = ok_envelope(RELAY:format(UID,
        '{"lingering_subscribe":{"max_timeout_ms":' .. token .. '}}'))
      assert_decode_error("invalid JSON", get_with(body))
    end
  end)

  it("rejects a missing result", function()
    assert_decode_error("result: expected an object",
      get_with('{"success":true,"errors":[],"messages":[]}'))
  end)

  it("rejects a string config", function()
    assert_decode_error("result.config: expected an object",
      get_with(ok_envelope(RELAY:format(UID, '"on"'))))
  end)

  it("rejects an object where origins should be an array", function()
    assert_decode_error("result.config.origin_fallback.origins: expected " ..
      "an array", get_with(ok_envelope(RELAY:format(UID,
        '{"origin_fallback":{"origins":{"url":"x"}}}'))))
  end)

  it("rejects a fractional max_timeout_ms", function()
    assert_decode_error("max_timeout_ms: expected an integer",
      get_with(ok_envelope(RELAY:format(UID,
        '{"lingering_subscribe":{"max_timeout_ms":1.5}}'))))
  end)

  it("accepts an integral float max_timeout_ms as an integer", function()
    local relay = assert(get_with(ok_envelope(RELAY:format(UID,
      '{"lingering_subscribe":{"max_timeout_ms":30000.0}}'))))
    local ms = relay.config.lingering_subscribe.max_timeout_ms
    assert.equal(30000, ms)
    assert.equal("integer", math.type(ms))
  end)

  it("rejects a result that is an array", function()
    assert_decode_error("result: expected an object",
      get_with(ok_envelope('[1,2]')))
  end)

  it("rejects an envelope without success", function()
    assert_decode_error("envelope", get_with('{"result":{}}'))
  end)

  it("keeps tostring on one line for a string code", function()
    local relay, err = get_with('{"success":false,"errors":[{"code":' ..
      '"two\\nlines","message":"m"}],"messages":[]}', 400)
    assert.is_nil(relay)
    assert.equal("two\nlines", err.code)
    assert.is_nil(tostring(err):find("\n", 1, true))
  end)

  it("keeps a nested error_chain", function()
    local relay, err = get_with('{"success":false,"errors":[{"code":1,' ..
      '"message":"outer","error_chain":[{"code":2,"message":"middle",' ..
      '"error_chain":[{"code":3,"message":"inner"}]}]}],"messages":[]}',
      400)
    assert.is_nil(relay)
    assert.equal(3, err.errors[1].error_chain[1].error_chain[1].code)
    assert.matches("outer (1) > middle (2) > inner (3)", err.message, 1,
                   true)
  end)

  it("accepts an empty 200 body on delete", function()
    emu:faults("delete", { { status = 200, headers = JSON, body = "" } })
    assert.is_true(cf.moq.relays:delete(UID))
  end)

  it("rejects an empty 200 body on get", function()
    assert_decode_error(nil, get_with(""))
  end)

  it("reports a connection closed mid-body", function()
    emu:faults("get", { { status = 200, headers = JSON,
                          body = ok_envelope(RELAY:format(UID, "{}")),
                          drop = "mid_body" } })
    local relay, err = cf.moq.relays:get(UID)
    assert.is_nil(relay)
    assert.equal("APIConnectionError", err.name)
    assert.equal("read", err.transport_error)
  end)

  it("times out a trickled body", function()
    emu:faults("get", { { status = 200, headers = JSON,
                          body = ok_envelope(RELAY:format(UID, "{}")),
                          trickle = { chunk = 1, interval_ms = 200 } } })
    local started = core.now()
    local relay, err = cf.moq.relays:get(UID, nil, { timeout = 1 })
    assert.is_nil(relay)
    assert.equal("APITimeoutError", err.name)
    assert.is_true(core.now() - started < 3)
  end)

  it("aborts a body slower than the low-speed limit", function()
    local slow = cloudflare.new { api_token = "local-dev-token",
                                  account_id = ACCOUNT, base_url = emu.url,
                                  max_retries = 0, timeout = 30,
                                  low_speed_limit = 100, low_speed_time = 1 }
    emu:faults("get", { { status = 200, headers = JSON,
                          body = ok_envelope(RELAY:format(UID, "{}")),
                          trickle = { chunk = 1, interval_ms = 100 } } })
    local started = core.now()
    local relay, err = slow.moq.relays:get(UID)
    assert.is_nil(relay)
    assert.equal("APITimeoutError", err.name)
    -- Aborted by the low-speed check, long before the 30 s timeout.
    assert.is_true(core.now() - started < 10)
    slow:close()
  end)

  it("bounds a response over the cap", function()
    local small = cloudflare.new { api_token = "local-dev-token",
                                   account_id = ACCOUNT, base_url = emu.url,
                                   max_retries = 0,
                                   max_response_bytes = 65536 }
    emu:faults("list", { { status = 200, headers = JSON,
      body = ok_envelope("[]"):sub(1, -2) .. ',"pad":"' ..
             string.rep("x", 70000) .. '"}' } })
    local page, err = small.moq.relays:list()
    assert.is_nil(page)
    assert.equal("ResponseDecodeError", err.name)
    assert.matches("65536 bytes", err.message, 1, true)
    small:close()
  end)

  it("never sends credentials to a redirect target", function()
    emu:faults("get", { { status = 307, body = "",
      headers = { Location = emu.url .. "/accounts/" .. ACCOUNT ..
                  "/moq/relays" } } })
    local _, err = cf.moq.relays:get(UID)
    assert.equal("APIStatusError", err.name)
    assert.equal(307, err.status)
    assert.equal(1, #emu:journal())
  end)
end)
