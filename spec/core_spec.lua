-- The C transport under hostile use: finalizers that close a session or
-- a multi while it builds its results, and timeouts below a millisecond.
-- The sanitizer run of the suite turns a use-after-free here into a
-- failure.

local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

describe("C transport", function()
  local emu, url

  setup(function()
    emu = emulator.start()
    url = emu.url .. "/accounts/a/moq/relays"
  end)

  teardown(function()
    emu:stop()
  end)

  local function request()
    return { method = "GET", url = url,
             headers = { "Authorization: Bearer local-dev-token" } }
  end

  -- Keep one object whose finalizer runs `action` while `armed` is true
  -- and then plants its successor, so that finalizers run at every
  -- collection step, also inside the C functions under test.
  local armed = false
  local function plant_chain(action)
    setmetatable({}, { __gc = function()
      if armed then
        action()
      end
      plant_chain(action)
    end })
  end

  before_each(function()
    collectgarbage("generational")
  end)

  after_each(function()
    armed = false
    collectgarbage("incremental")
    collectgarbage()
  end)

  it("survives a session closed by a finalizer mid-request", function()
    local session
    plant_chain(function()
      if math.random(4) == 1 then session:close() end
    end)
    for _ = 1, 1000 do
      session = core.session {}
      armed = true
      local response, err = session:request(request())
      armed = false
      -- Either the request ended first, or the close came first and the
      -- request reports it.
      if response == nil then
        assert.equal("closed", err.kind)
      else
        assert.equal(200, response.status)
      end
      session:close()
    end
  end)

  it("rejects a request from a finalizer of the same session", function()
    local session = core.session {}
    local errors = {}
    plant_chain(function()
      local ok, err = pcall(session.request, session, request())
      if not ok then
        errors[#errors + 1] = err
      end
    end)
    for _ = 1, 200 do
      armed = true
      local response = session:request(request())
      armed = false
      assert.equal(200, response.status)
    end
    session:close()
    for _, err in ipairs(errors) do
      assert.matches("while a request of the same session runs", err, 1,
                     true)
    end
  end)

  it("survives a multi closed by a finalizer mid-poll", function()
    local multi
    plant_chain(function()
      if math.random(4) == 1 then multi:close() end
    end)
    for _ = 1, 300 do
      multi = core.multi {}
      armed = true
      for _ = 1, 4 do
        multi:add(request())
      end
      local done = multi:poll(5)
      armed = false
      assert.is_table(done)
      multi:close()
      assert.is_true(multi:closed())
    end
  end)

  it("keeps a timeout under a millisecond", function()
    emu:faults("list", { { delay_ms = 2000, passthrough = true } })
    local session = core.session {}
    local req = request()
    req.timeout = 0.0004
    local started = core.now()
    local response, err = session:request(req)
    assert.is_nil(response)
    assert.equal("timeout", err.kind)
    assert.is_true(core.now() - started < 1)
    session:close()
    emu:clear_faults()
  end)
end)
