-- Walking every relay across pages: each, pages, next_page and all,
-- with ties in `created`, user bounds, and a server that ignores the
-- cursor.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"

-- Seed `groups` timestamps one second apart, with `sizes[i % #sizes + 1]`
-- relays sharing each one. Returns the set of uids and their count.
local function seed_ties(emu, groups, sizes)
  local uids, total = {}, 0
  for i = 1, groups do
    local size = sizes[i % #sizes + 1]
    local created = cloudflare.time.format(1767225600 + i)
    local stored = emu:seed { account_id = ACCOUNT, name = "tie-" .. i,
                              created = created, count = size }
    if size == 1 and stored.uid then
      stored = { stored }
    end
    for _, relay in ipairs(stored) do
      uids[relay.uid] = relay.created
      total = total + 1
    end
  end
  return uids, total
end

describe("pagination", function()
  local emu, cf, relays

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
    relays = cf.moq.relays
  end)

  after_each(function()
    cf:close()
  end)

  -- Walk with `each` and check every seeded relay came exactly once, in
  -- order.
  local function walk_all(params, expected, total)
    local seen, count, previous = {}, 0, nil
    for relay, err in relays:each(params) do
      assert.is_nil(err)
      assert.is_truthy(relay)
      assert.is_nil(seen[relay.uid], "relay returned twice: " .. relay.uid)
      assert.is_truthy(expected[relay.uid], "unexpected relay " .. relay.uid)
      seen[relay.uid] = true
      count = count + 1
      if previous then
        local order = cloudflare.time.compare(previous, relay.created)
        if params.asc then
          assert.is_true(order <= 0)
        else
          assert.is_true(order >= 0)
        end
      end
      previous = relay.created
    end
    assert.equal(total, count)
  end

  describe("each over 1200 relays with ties", function()
    local expected, total

    before_each(function()
      -- Groups of 1, 3, 7 and 12 relays per timestamp: larger than a page
      -- of 5, so ties cross every boundary.
      expected, total = seed_ties(emu, 210, { 1, 3, 7, 12 })
      assert.is_true(total >= 1000)
    end)

    it("returns each relay once, oldest first", function()
      walk_all({ asc = true, per_page = 5 }, expected, total)
    end)

    it("returns each relay once, newest first", function()
      walk_all({ per_page = 5 }, expected, total)
    end)

    it("returns each relay once with large pages", function()
      walk_all({ asc = true, per_page = 100 }, expected, total)
    end)

    it("sends the last created as the cursor", function()
      local first = assert(relays:list { asc = true, per_page = 50 })
      emu:clear_journal()
      assert(first:next_page())
      -- One microsecond before the last created, so that relays sharing
      -- it come again and are dropped by uid; the page grows by as many.
      local cursor = cloudflare.time.shift(first[50].created, -1000)
      local query = emu:journal()[1].query
      assert.matches("created_after=" .. cursor:gsub(":", "%%3A"), query, 1,
                     true)
      local overlap = 0
      for i = 50, 1, -1 do
        if first[i].created ~= first[50].created then break end
        overlap = overlap + 1
      end
      assert.matches("per_page=" .. (50 + overlap), query, 1, true)
    end)
  end)

  it("grows the page past a run of ties", function()
    local expected, total = seed_ties(emu, 3, { 20 })
    walk_all({ asc = true, per_page = 5 }, expected, total)
  end)

  it("honours max_items", function()
    seed_ties(emu, 10, { 3 })
    local count = 0
    for relay in relays:each { per_page = 4, max_items = 7 } do
      assert.is_truthy(relay)
      count = count + 1
    end
    assert.equal(7, count)
  end)

  it("keeps the caller's created_before bound", function()
    local expected = seed_ties(emu, 10, { 2 })
    local bound = cloudflare.time.format(1767225600 + 6)
    local count = 0
    for relay in relays:each { asc = true, per_page = 3,
                               created_before = bound } do
      assert.is_truthy(expected[relay.uid])
      assert.equal(-1, cloudflare.time.compare(relay.created, bound))
      count = count + 1
    end
    assert.equal(10, count)
  end)

  it("keeps the caller's created_after bound", function()
    seed_ties(emu, 10, { 2 })
    local bound = cloudflare.time.format(1767225600 + 8)
    local all = assert(relays:all { per_page = 3, created_after = bound })
    assert.equal(4, #all)
  end)

  it("stops with an error when the server ignores the cursor", function()
    local page = '{"success":true,"errors":[],"messages":[],"result":[' ..
      '{"uid":"a1","name":"a","created":"2026-01-01T00:00:01Z",' ..
      '"modified":"2026-01-01T00:00:01Z"},' ..
      '{"uid":"b2","name":"b","created":"2026-01-01T00:00:02Z",' ..
      '"modified":"2026-01-01T00:00:02Z"}],' ..
      '"result_info":{"count":2,"total":9}}'
    local responses = {}
    for i = 1, 5 do
      responses[i] = { status = 200, body = page,
                       headers = { ["Content-Type"] = "application/json" } }
    end
    emu:faults("list", responses)
    local yielded, failure = {}, nil
    for relay, err in relays:each { asc = true, per_page = 2 } do
      if not relay then
        failure = err
      else
        yielded[#yielded + 1] = relay.uid
      end
    end
    assert.same({ "a1", "b2" }, yielded)
    assert.is_table(failure)
    assert.matches("ignores the cursor", failure.message, 1, true)
    assert.equal(2, #emu:journal())
  end)

  it("stops with an error when the server caps a run of ties", function()
    -- A stand-in transport for a server that returns at most 10 relays
    -- per page, whatever per_page requests, with 30 sharing one timestamp.
    local stored = {}
    for i = 1, 34 do
      local created = i <= 30 and "2026-01-01T00:00:00Z"
        or string.format("2026-01-01T00:00:%02dZ", i - 30)
      stored[i] = string.format('{"uid":"u%02d","name":"n","created":"%s",' ..
                                '"modified":"%s"}', i, created, created)
    end
    local transport = {
      close = function() end,
      request = function(_, request)
        local after = request.url:match("created_after=([^&]+)")
        after = after and after:gsub("%%(%x%x)", function(h)
          return string.char(tonumber(h, 16))
        end)
        local items = {}
        for i = 1, #stored do
          local created = stored[i]:match('"created":"([^"]+)"')
          if not after
              or cloudflare.time.compare(created, after) > 0 then
            items[#items + 1] = stored[i]
          end
        end
        local page = { table.unpack(items, 1, math.min(10, #items)) }
        return {
          status = 200, headers = { ["content-type"] = "application/json" },
          body = '{"success":true,"errors":[],"messages":[],"result":[' ..
            table.concat(page, ",") .. '],"result_info":{"count":' ..
            #page .. ',"total":' .. #items .. '}}',
        }
      end,
    }
    local capped = cloudflare.new { api_token = "t", account_id = ACCOUNT,
                                    base_url = "http://127.0.0.1:1/v4",
                                    transport = transport }
    local yielded, failure = 0, nil
    for relay, err in capped.moq.relays:each { asc = true } do
      if relay then
        yielded = yielded + 1
      else
        failure = err
      end
    end
    assert.equal(10, yielded)
    assert.is_table(failure)
    assert.matches("than the server returns in one page", failure.message,
                   1, true)
  end)

  it("reports a bad max_items as an error", function()
    for _, bad in ipairs { 0, "5", 2.5 } do
      local results = {}
      for relay, err in relays:each { max_items = bad } do
        results[#results + 1] = { relay, err }
      end
      assert.equal(1, #results)
      assert.is_false(results[1][1])
      assert.equal("max_items", results[1][2].field)
      local all, err = relays:all { max_items = bad }
      assert.is_nil(all)
      assert.equal("ValidationError", err.name)
    end
  end)

  it("surfaces an error in the loop", function()
    seed_ties(emu, 6, { 1 })
    local calls = 0
    local results = {}
    emu:faults("list", { { passthrough = true },
      { status = 500, body = "{}", headers = { ["Content-Type"] =
        "application/json" } } })
    for relay, err in relays:each { per_page = 3 } do
      calls = calls + 1
      results[calls] = relay and "relay" or err.name
    end
    assert.same({ "relay", "relay", "relay", "InternalServerError" },
                results)
  end)

  it("reports invalid params inside the loop", function()
    local results = {}
    for relay, err in relays:each { per_page = 0 } do
      results[#results + 1] = { relay, err }
    end
    assert.equal(1, #results)
    assert.is_false(results[1][1])
    assert.equal("ValidationError", results[1][2].name)
  end)

  describe("pages", function()
    it("yields pages with result_info", function()
      seed_ties(emu, 7, { 1 })
      local sizes = {}
      for page, err in relays:pages { per_page = 3 } do
        assert.is_nil(err)
        sizes[#sizes + 1] = #page
        assert.is_table(page.result_info)
      end
      assert.same({ 3, 3, 1 }, sizes)
    end)

    it("fetches the next page with next_page", function()
      seed_ties(emu, 5, { 1 })
      local first = assert(relays:list { asc = true, per_page = 2 })
      local second = assert(first:next_page())
      assert.equal(2, #second)
      assert.equal(-1, cloudflare.time.compare(first[2].created,
                                               second[1].created))
      local third = assert(second:next_page())
      assert.equal(1, #third)
      local fourth, err = third:next_page()
      assert.is_nil(fourth)
      assert.is_nil(err)
    end)
  end)

  it("all collects every relay", function()
    local _, total = seed_ties(emu, 9, { 1, 2 })
    local all = assert(relays:all { per_page = 4 })
    assert.equal(total, #all)
  end)

  describe("find_by_name", function()
    it("returns every relay with the name", function()
      assert(relays:create { name = "twin" })
      assert(relays:create { name = "other" })
      assert(relays:create { name = "twin" })
      local found = assert(relays:find_by_name "twin")
      assert.equal(2, #found)
      assert.equal("twin", found[1].name)
      assert.equal(0, #assert(relays:find_by_name "nobody"))
    end)
  end)

  describe("ensure", function()
    local config = { lingering_subscribe = { enabled = false },
                     origin_fallback = { enabled = true, origins = {
                       { url = "https://origin.example/moq" } } } }

    it("creates a missing relay with tokens", function()
      local relay, action = relays:ensure { name = "edge", config = config }
      assert.equal("created", action)
      assert.is_string(relay.token_subscribe)
      assert.is_true(relay.config.origin_fallback.enabled)
      assert.equal(1, #assert(relays:find_by_name "edge"))
    end)

    it("updates a differing config without tokens", function()
      assert(relays:create { name = "edge" })
      local relay, action = relays:ensure { name = "edge", config = config }
      assert.equal("updated", action)
      assert.is_nil(relay.token_subscribe)
      assert.equal("https://origin.example/moq",
                   relay.config.origin_fallback.origins[1].url)
    end)

    it("leaves a matching relay unchanged", function()
      assert(relays:ensure { name = "edge", config = config })
      emu:clear_journal()
      local relay, action = relays:ensure { name = "edge", config = config }
      assert.equal("unchanged", action)
      assert.is_nil(relay.token_subscribe)
      for _, entry in ipairs(emu:journal()) do
        assert.equal("GET", entry.method)
      end
    end)

    it("clears origins when asked for an empty list", function()
      assert(relays:ensure { name = "edge", config = config })
      local cleared = { lingering_subscribe = { enabled = false },
                        origin_fallback = { enabled = false, origins = {} } }
      local relay, action = relays:ensure { name = "edge", config = cleared }
      assert.equal("updated", action)
      assert.equal(0, #relay.config.origin_fallback.origins)
      local _, again = relays:ensure { name = "edge", config = cleared }
      assert.equal("unchanged", again)
    end)

    it("refuses to guess between two relays", function()
      assert(relays:create { name = "dup" })
      assert(relays:create { name = "dup" })
      local relay, err = relays:ensure { name = "dup" }
      assert.is_nil(relay)
      assert.equal("ConflictError", err.name)
      assert.equal(2, #err.uids)
    end)

    it("validates the config before sending", function()
      emu:clear_journal()
      local _, err = relays:ensure { name = "x", config = {
        lingering_subscribe = { max_timeout_ms = -5 } } }
      assert.equal("ValidationError", err.name)
      assert.equal(0, #emu:journal())
    end)
  end)

  describe("time helpers", function()
    it("parse RFC 3339 to epoch seconds", function()
      assert.equal(0, cloudflare.time.parse "1970-01-01T00:00:00Z")
      assert.equal(1767225600.5,
                   cloudflare.time.parse "2026-01-01T00:00:00.5Z")
      assert.equal(1767225600,
                   cloudflare.time.parse "2026-01-01T01:00:00+01:00")
      assert.is_nil((cloudflare.time.parse "yesterday"))
    end)

    it("format epoch seconds for the list cursor", function()
      assert.equal("2026-01-01T00:00:00Z",
                   cloudflare.time.format(1767225600))
      assert.equal("2026-01-01T00:00:00.25Z",
                   cloudflare.time.format(1767225600.25))
      local page = assert(relays:list {
        created_after = cloudflare.time.format(1767225600) })
      assert.equal(0, #page)
    end)
  end)
end)
