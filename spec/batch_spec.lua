-- Concurrent calls: client:batch over core.multi, against the emulator.
--
-- Slow calls are made with passthrough delay faults, so a test controls
-- how long each request stays in flight without changing the emulator's
-- response.

local cloudflare = require "cloudflare"
local batch = require "cloudflare.batch"
local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local TOKEN = "local-dev-token"
local UNKNOWN_UID = string.rep("0", 32)

local function envelope_failure(status)
  return {
    status = status,
    headers = { ["Content-Type"] = "application/json" },
    body = string.format('{"success":false,"errors":[{"code":%d,' ..
                         '"message":"injected"}],"messages":[],' ..
                         '"result":null}', 1000 + status),
  }
end

-- Queue `count` faults that delay a request by `ms` and then serve it.
local function delays(count, ms)
  local responses = {}
  for i = 1, count do
    responses[i] = { delay_ms = ms, passthrough = true }
  end
  return responses
end

-- Count the journal's requests with this method and, when given, a path
-- that ends with `suffix`.
local function count_requests(entries, method, suffix)
  local n = 0
  for _, entry in ipairs(entries) do
    if entry.method == method
        and (suffix == nil or entry.path:sub(-#suffix) == suffix) then
      n = n + 1
    end
  end
  return n
end

-- One call per relay: get it.
local function get_calls(relays)
  local calls = {}
  for i, relay in ipairs(relays) do
    calls[i] = function(c)
      return c.moq.relays:get(relay.uid)
    end
  end
  return calls
end

describe("batch", function()
  local emu, cf, logged

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  local function client(opts)
    opts = opts or {}
    opts.api_token = TOKEN
    opts.account_id = ACCOUNT
    opts.base_url = emu.url
    opts.logger = opts.logger or function(level, message)
      logged[#logged + 1] = level .. ": " .. message
    end
    return cloudflare.new(opts)
  end

  local function seed(count)
    return emu:seed { account_id = ACCOUNT, name = "batch", count = count }
  end

  before_each(function()
    emu:reset()
    logged = {}
    cf = client()
  end)

  after_each(function()
    cf:close()
  end)

  describe("bulk calls", function()
    it("gets 100 relays in order", function()
      local relays = seed(100)
      local results = cf:batch(get_calls(relays))

      assert.equal(100, #results)
      for i, relay in ipairs(relays) do
        assert.is_nil(results[i][2])
        assert.equal(relay.uid, results[i][1].uid)
        assert.equal(relay.name, results[i][1].name)
      end
      assert.equal(100, results.stats.requests)
      assert.equal(100, count_requests(emu:journal(), "GET"))
    end)

    it("rotates 100 subscribe tokens", function()
      local relays = seed(100)
      local calls = {}
      for i, relay in ipairs(relays) do
        calls[i] = function(c)
          return c.moq.relays.tokens:rotate(relay.uid, { type = "subscribe" })
        end
      end

      local results = cf:batch(calls, { concurrency = 16 })

      assert.equal(100, #results)
      for i, relay in ipairs(relays) do
        local token, err = results[i][1], results[i][2]
        assert.is_nil(err)
        assert.equal("subscribe", token.type)
        assert.equal(emu:relay(relay.uid).token_subscribe, token.token)
      end
      assert.equal(100, count_requests(emu:journal(), "POST", "/rotate"))
    end)

    it("keeps results in call order", function()
      local relays = seed(6)
      -- Requests arrive in call order; earlier ones wait longer, so the
      -- calls end in reverse order.
      local responses = {}
      for i = 1, 6 do
        responses[i] = { delay_ms = (7 - i) * 60, passthrough = true }
      end
      emu:faults("get", responses)
      local finished = {}

      local results = cf:batch(get_calls(relays), {
        concurrency = 6,
        on_progress = function(_, _, index)
          finished[#finished + 1] = index
        end,
      })

      assert.same({ 6, 5, 4, 3, 2, 1 }, finished)
      for i, relay in ipairs(relays) do
        assert.equal(relay.uid, results[i][1].uid)
      end
    end)

    it("packs every value a call returns", function()
      local results = cf:batch {
        function() return 1, nil, 3 end,
        function() end,
        function(c) return c end,
      }

      assert.same({ n = 3, 1, nil, 3 }, results[1])
      assert.same({ n = 0 }, results[2])
      assert.equal(1, results[3].n)
      assert.equal("cloudflare.Client", getmetatable(results[3][1]).__name)
    end)

    it("returns an empty array for no calls", function()
      local results = cf:batch {}
      assert.equal(0, #results)
      assert.equal(0, results.stats.requests)
      assert.equal(0, results.stats.max_in_flight)
    end)
  end)

  describe("concurrency", function()
    it("reaches the concurrency with slow calls", function()
      local relays = seed(12)
      emu:faults("get", delays(12, 150))

      local results = cf:batch(get_calls(relays), { concurrency = 4 })

      assert.equal(4, results.stats.max_in_flight)
      assert.equal(4, results.stats.concurrency)
      -- Three rounds of four 150 ms requests, not one or twelve.
      assert.is_true(results.stats.elapsed >= 0.45)
      assert.is_true(results.stats.elapsed < 12 * 0.15)
    end)

    it("never runs more calls than the concurrency", function()
      local relays = seed(10)
      for _, concurrency in ipairs { 1, 3 } do
        emu:faults("get", delays(10, 30))
        local active, max_active = 0, 0
        local calls = {}
        for i, relay in ipairs(relays) do
          calls[i] = function(c)
            active = active + 1
            max_active = math.max(max_active, active)
            local relay_result, err = c.moq.relays:get(relay.uid)
            active = active - 1
            return relay_result, err
          end
        end

        local results = cf:batch(calls, { concurrency = concurrency })

        assert.equal(concurrency, max_active)
        assert.equal(concurrency, results.stats.max_in_flight)
        assert.equal(10, #results)
      end
    end)

    it("sends the library's User-Agent", function()
      cf:batch(get_calls(seed(1)))
      local agent = emu:journal()[1].headers["user-agent"]
      assert.matches("^lua%-cloudflare/%S+ %(Lua 5%.%d; libcurl ", agent)
    end)
  end)

  describe("errors", function()
    it("returns a NotFoundError among successes", function()
      local relays = seed(4)
      local calls = get_calls(relays)
      table.insert(calls, 3, function(c)
        return c.moq.relays:get(UNKNOWN_UID)
      end)

      local results = cf:batch(calls)

      assert.equal(5, #results)
      assert.is_nil(results[3][1])
      assert.equal("NotFoundError", results[3][2].name)
      assert.equal(404, results[3][2].status)
      for _, i in ipairs { 1, 2, 4, 5 } do
        assert.is_nil(results[i][2])
        assert.equal("cloudflare.Relay", getmetatable(results[i][1]).__name)
      end
    end)

    it("retries 503 responses inside a batch", function()
      local relays = seed(10)
      emu:faults("get", { envelope_failure(503), envelope_failure(503),
                          envelope_failure(503) })

      local results = cf:batch(get_calls(relays))

      for i, relay in ipairs(relays) do
        assert.is_nil(results[i][2])
        assert.equal(relay.uid, results[i][1].uid)
      end
      assert.equal(13, count_requests(emu:journal(), "GET"))
      assert.equal(13, results.stats.requests)
    end)

    it("retries a timed-out request", function()
      local relays = seed(2)
      emu:faults("get", { { delay_ms = 1500, passthrough = true } })
      local calls = {}
      for i, relay in ipairs(relays) do
        calls[i] = function(c)
          return c.moq.relays:get(relay.uid, nil, { timeout = 0.3 })
        end
      end

      local results = cf:batch(calls)

      for i, relay in ipairs(relays) do
        assert.is_nil(results[i][2])
        assert.equal(relay.uid, results[i][1].uid)
      end
      assert.equal(3, results.stats.requests)
      assert.is_true(results.stats.elapsed < 1.5)
    end)

    it("does not re-send a rotate after a 5xx", function()
      local relays = seed(6)
      -- The first two rotations take effect, but respond with 503.
      emu:faults("rotate", {
        { status = 503, after = true }, { status = 503, after = true },
      })
      local calls = {}
      for i, relay in ipairs(relays) do
        calls[i] = function(c)
          return c.moq.relays.tokens:rotate(relay.uid, { type = "subscribe" })
        end
      end

      local results = cf:batch(calls, { concurrency = 6 })

      local failed = 0
      for i = 1, 6 do
        local err = results[i][2]
        if err then
          failed = failed + 1
          assert.equal(503, err.status)
          assert.is_true(err.outcome_unknown)
        end
      end
      assert.equal(2, failed)
      assert.equal(6, count_requests(emu:journal(), "POST", "/rotate"))
      assert.equal(2, #logged)
      assert.matches("^warn: POST .* outcome unknown after attempt 1",
                     logged[1])
    end)

    it("sends through a transport given to the client", function()
      local session = core.session {}
      local seen = 0
      cf:close()
      cf = client {
        transport = {
          request = function(_, request)
            seen = seen + 1
            return session:request(request)
          end,
          close = function() session:close() end,
        },
      }
      local relays = seed(5)

      local results = cf:batch(get_calls(relays), { concurrency = 4 })

      assert.equal(5, seen)
      assert.equal(1, results.stats.max_in_flight)
      for i, relay in ipairs(relays) do
        assert.equal(relay.uid, results[i][1].uid)
      end
    end)

    it("returns an error per call of a closed client", function()
      local relays = seed(3)
      cf:close()

      local results = cf:batch(get_calls(relays))

      assert.equal(3, #results)
      for i = 1, 3 do
        assert.is_nil(results[i][1])
        assert.equal("APIConnectionError", results[i][2].name)
        assert.matches("closed", results[i][2].message)
      end
      assert.equal(0, #emu:journal())
    end)

    it("re-raises a raising call after aborting the others", function()
      local relays = seed(3)
      emu:faults("get", delays(3, 3000))
      local calls = get_calls(relays)
      calls[4] = function(c)
        assert(c.moq.relays:list())
        error("call four failed")
      end
      local started = core.now()

      local ok, err = pcall(cf.batch, cf, calls)

      assert.is_false(ok)
      assert.equal(batch.BatchError, getmetatable(err))
      assert.equal(4, err.index)
      assert.matches("call four failed", tostring(err.cause))
      assert.matches("call 4 raised an error", tostring(err))
      -- The three slow gets were aborted, not awaited.
      assert.is_true(core.now() - started < 2)
      -- The client still works afterwards.
      emu:clear_faults()
      assert(cf.moq.relays:get(relays[1].uid))
    end)

    it("re-raises a malformed request as the call's error", function()
      local ok, err = pcall(cf.batch, cf, {
        function() return 1 end,
        function(c)
          return c.transport:request { method = "TRACE", url = emu.url }
        end,
      })
      assert.is_false(ok)
      assert.equal(2, err.index)
      assert.matches("unsupported method 'TRACE'", err.cause)
    end)

    it("raises when a call yields a value of its own", function()
      local ok, err = pcall(cf.batch, cf, {
        function() coroutine.yield("mine") end,
      })
      assert.is_false(ok)
      assert.equal(1, err.index)
      assert.matches("yielded a value of its own", err.cause)
    end)

    it("re-raises an error of on_progress", function()
      local ok, err = pcall(cf.batch, cf, { function() return 1 end }, {
        on_progress = function() error("progress failed", 0) end,
      })
      assert.is_false(ok)
      assert.equal("progress failed", err)
    end)
  end)

  describe("misuse", function()
    local function batch_error(calls, opts)
      local ok, err = pcall(cf.batch, cf, calls, opts)
      assert.is_false(ok)
      return err
    end

    it("raises for calls that are not a table", function()
      assert.matches("calls must be an array of functions, got string",
                     batch_error("get"))
    end)

    it("raises for a call that is not a function", function()
      assert.matches("calls%[2%] must be a function, got number",
                     batch_error { function() end, 42 })
    end)

    it("raises for keys outside the array", function()
      assert.matches("has the key name",
                     batch_error { function() end, name = function() end })
      assert.matches("has the key 3",
                     batch_error { function() end, [3] = function() end })
    end)

    it("raises for a bad concurrency", function()
      for _, concurrency in ipairs { 0, 65, 1.5, -1, 0 / 0 } do
        assert.matches("concurrency must be an integer from 1 to 64",
                       batch_error({}, { concurrency = concurrency }))
      end
      assert.matches("option concurrency must be a number",
                     batch_error({}, { concurrency = "8" }))
    end)

    it("raises for an unknown option", function()
      assert.matches('unknown option "parallel"',
                     batch_error({}, { parallel = 4 }))
    end)

    it("raises for options that are not a table", function()
      assert.matches("options must be a table",
                     batch_error({}, 8))
    end)
  end)

  describe("on_progress", function()
    it("is called once per call with its results", function()
      local relays = seed(5)
      local seen = {}

      local results = cf:batch(get_calls(relays), {
        concurrency = 2,
        on_progress = function(done, total, index, relay, err)
          seen[#seen + 1] = { done = done, total = total, index = index,
                              relay = relay, err = err }
        end,
      })

      assert.equal(5, #seen)
      local indexes = {}
      for i, call in ipairs(seen) do
        assert.equal(i, call.done)
        assert.equal(5, call.total)
        assert.is_nil(call.err)
        assert.equal(results[call.index][1], call.relay)
        indexes[call.index] = (indexes[call.index] or 0) + 1
      end
      for i = 1, 5 do
        assert.equal(1, indexes[i])
      end
    end)
  end)

  describe("rate limit", function()
    it("respects the client-side rate limit", function()
      cf:close()
      local sent = {}
      cf = client {
        rate_limit = { requests = 4, per = 0.4 },
        log_level = "debug",
        logger = function(_, message)
          if message:find(" attempt %d+/%d+ headers") then
            sent[#sent + 1] = core.now()
          end
        end,
      }
      local relays = seed(10)

      local results = cf:batch(get_calls(relays), { concurrency = 8 })

      assert.equal(10, #results)
      assert.equal(10, #sent)
      -- No window of `per` seconds contains more than `requests`
      -- requests.
      for i = 5, #sent do
        assert.is_true(sent[i] - sent[i - 4] >= 0.4 - 0.01,
                       "request " .. i .. " came too soon")
      end
      assert.is_true(results.stats.elapsed >= 0.8 - 0.01)
    end)
  end)
end)

describe("core.multi", function()
  local emu

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  local function list_request()
    return {
      method = "GET",
      url = emu.url .. "/accounts/" .. ACCOUNT .. "/moq/relays",
      headers = { "Authorization: Bearer " .. TOKEN },
    }
  end

  -- Poll until nothing is pending and return the completions by id.
  local function drain(multi)
    local by_id = {}
    local deadline = core.now() + 10
    while multi:pending() > 0 and core.now() < deadline do
      for _, done in ipairs(multi:poll(1)) do
        by_id[done.id] = done
      end
    end
    return by_id
  end

  it("returns responses with the session's shape", function()
    local multi = core.multi { max_connections = 2 }
    local first = multi:add(list_request())
    local second = multi:add(list_request())
    assert.equal(2, multi:pending())

    local done = drain(multi)

    for _, id in ipairs { first, second } do
      local response = done[id].response
      assert.equal(200, response.status)
      assert.matches("application/json", response.headers["content-type"])
      assert.matches('"success":true', response.body)
      assert.is_number(response.total_time)
      assert.is_true(response.request_sent)
    end
    assert.equal(0, multi:pending())
    multi:close()
  end)

  it("sends a request body", function()
    local multi = core.multi {}
    local request = list_request()
    request.method = "POST"
    request.body = '{"name":"multi"}'
    request.headers[2] = "Content-Type: application/json"
    local id = multi:add(request)
    request.body = nil
    collectgarbage()

    local response = drain(multi)[id].response

    assert.equal(200, response.status)
    assert.matches('"name":"multi"', response.body)
    assert.equal('{"name":"multi"}', emu:journal()[1].body)
    multi:close()
  end)

  it("reports a connection error per transfer", function()
    local multi = core.multi {}
    local id = multi:add { method = "GET", url = "http://127.0.0.1:1/" }

    local err = drain(multi)[id].error

    assert.equal("connect", err.kind)
    assert.is_string(err.message)
    assert.equal(7, err.curl_code)
    multi:close()
  end)

  it("caps open connections at max_connections", function()
    local multi = core.multi { max_connections = 2 }
    emu:faults("list", delays(6, 50))
    for _ = 1, 6 do
      multi:add(list_request())
    end

    local connections = 0
    for _, done in pairs(drain(multi)) do
      connections = connections + done.response.new_connections
    end

    assert.equal(2, connections)
    multi:close()
  end)

  it("aborts transfers in flight on close", function()
    local multi = core.multi {}
    emu:faults("list", delays(1, 3000))
    multi:add(list_request())
    multi:poll(0.05)
    local started = core.now()

    multi:close()
    multi:close()

    assert.is_true(core.now() - started < 1)
    assert.is_true(multi:closed())
    assert.equal(0, multi:pending())
    assert.same({}, multi:poll(0))
    local id, err = multi:add(list_request())
    assert.is_nil(id)
    assert.equal("closed", err.kind)
  end)

  it("returns at once when nothing is pending", function()
    local multi = core.multi {}
    local started = core.now()
    assert.same({}, multi:poll(2))
    assert.is_true(core.now() - started < 0.5)
    multi:close()
  end)

  it("raises for a malformed request", function()
    local multi = core.multi {}
    assert.has_error(function()
      multi:add { method = "TRACE", url = emu.url }
    end, "unsupported method 'TRACE'")
    assert.has_error(function()
      multi:add { method = "GET", url = emu.url .. "\r\nX: y" }
    end, "request url contains CR, LF or NUL")
    assert.has_error(function()
      multi:add { method = "GET", url = emu.url, timeout = -1 }
    end, "request field 'timeout' must be a positive number")
    -- A rejected request leaves the multi usable.
    local id = multi:add(list_request())
    assert.equal(200, drain(multi)[id].response.status)
    multi:close()
  end)

  it("raises for bad options", function()
    assert.has_error(function()
      core.multi { max_connections = 0 }
    end, "multi option 'max_connections' must be a positive integer")
    assert.has_error(function()
      core.multi { max_connections = 2.5 }
    end, "multi option 'max_connections' must be a positive integer")
    assert.has_error(function()
      core.multi { proxy = 1 }
    end, "multi option 'proxy' must be a string")
    local multi = core.multi {}
    assert.has_error(function()
      multi:poll(-1)
    end, "max_wait must be from 0 to 86400 seconds")
    multi:close()
  end)

  it("describes itself", function()
    local multi = core.multi { max_connections = 3 }
    assert.equal("cloudflare.Multi (open, 0 pending, 0 transfers, " ..
                 "max_connections 3)", tostring(multi))
    multi:close()
    assert.equal("cloudflare.Multi (closed, 0 pending, 0 transfers, " ..
                 "max_connections 3)", tostring(multi))
  end)
end)
