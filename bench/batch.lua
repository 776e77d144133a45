-- Time relay gets one after another against client:batch, on the local
-- emulator with a delay fault on every request.
--
--     make build && lua5.4 bench/batch.lua [COUNT] [CONCURRENCY] [DELAY_MS]
--
-- Run from the repository root. Defaults: 200 gets, concurrency 8, and a
-- 20 ms delay on each request. Prints the machine, both times and their
-- ratio. Not part of the test suite; bench/RESULTS.md keeps the records.

package.path = "lua/?.lua;lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local cloudflare = require "cloudflare"
local core = require "cloudflare.core"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"

local count = tonumber(arg[1]) or 200
local concurrency = tonumber(arg[2]) or 8
local delay_ms = tonumber(arg[3]) or 20

local function read_command(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  pipe:close()
  return (output:gsub("%s+$", ""))
end

local function cpu_model()
  local file = io.open("/proc/cpuinfo", "r")
  if not file then
    return "unknown"
  end
  local text = file:read("a")
  file:close()
  return text:match("model name%s*:%s*([^\n]+)") or "unknown"
end

-- Queue one passthrough delay fault per get.
local function queue_delays(emu)
  local responses = {}
  for i = 1, count do
    responses[i] = { delay_ms = delay_ms, passthrough = true }
  end
  local status = emu:faults("get", responses)
  assert(status == 200, "queueing the delay faults failed")
end

local function check_all(relays, results)
  for i, relay in ipairs(relays) do
    local got = results[i]
    assert(got and got.uid == relay.uid, "get " .. i .. " failed")
  end
end

local emu = emulator.start()
local ok, err = pcall(function()
  local relays = emu:seed { account_id = ACCOUNT, name = "bench",
                            count = count }
  local cf = cloudflare.new { api_token = "local-dev-token",
                              account_id = ACCOUNT, base_url = emu.url }

  queue_delays(emu)
  local sequential = {}
  local started = core.now()
  for i, relay in ipairs(relays) do
    sequential[i] = assert(cf.moq.relays:get(relay.uid))
  end
  local sequential_time = core.now() - started
  check_all(relays, sequential)

  queue_delays(emu)
  local calls = {}
  for i, relay in ipairs(relays) do
    calls[i] = function(c)
      return c.moq.relays:get(relay.uid)
    end
  end
  started = core.now()
  local results = cf:batch(calls, { concurrency = concurrency })
  local batch_time = core.now() - started
  local firsts = {}
  for i = 1, count do
    firsts[i] = results[i][1]
  end
  check_all(relays, firsts)
  cf:close()

  print(string.format("machine: nproc %s, %s", read_command("nproc"),
                      cpu_model()))
  print(string.format("versions: %s, libcurl %s", _VERSION,
                      core.curl_version()))
  print(string.format("%d gets, %d ms delay fault each", count, delay_ms))
  print(string.format("sequential:          %.3f s", sequential_time))
  print(string.format("batch, concurrency %d: %.3f s (max_in_flight %d)",
                      concurrency, batch_time, results.stats.max_in_flight))
  print(string.format("ratio sequential/batch: %.2f",
                      sequential_time / batch_time))
end)
emu:stop()
if not ok then
  error(err, 0)
end
