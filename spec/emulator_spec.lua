-- Specs of bin/moq-emulator, the local MoQ relays API emulator, driven
-- over HTTP on 127.0.0.1.

local cjson = require "cjson"
local socket = require "socket"
local emulator = require "spec.support.emulator"

local ACCOUNT = "0123456789abcdef0123456789abcdef"
local OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210"
local TOKEN = "local-dev-token"

local UID_PATTERN = "^" .. ("[0-9a-f]"):rep(32) .. "$"
local TIME_PATTERN =
  "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"

local function relays_path(suffix, account)
  return "/client/v4/accounts/" .. (account or ACCOUNT) .. "/moq/relays"
    .. (suffix or "")
end

local function bearer(token)
  return { authorization = "Bearer " .. token }
end

-- Sends an API request, by default with the default token. `body` is a
-- table (encoded with cjson) or a raw string. Returns the status, the
-- decoded body (the raw text when it is not JSON), the response headers
-- and the raw text.
local function call(emu, method, path, body, headers)
  headers = headers or bearer(TOKEN)
  if type(body) == "table" then
    body = cjson.encode(body)
  end
  if body ~= nil then
    headers["content-type"] = "application/json"
  end
  local status, response_headers, text =
    emu:raw_request(method, path, headers, body)
  local ok, decoded = pcall(cjson.decode, text)
  return status, ok and decoded or text, response_headers, text
end

local function create(emu, name, account)
  local status, body = call(emu, "POST", relays_path(nil, account),
    { name = name or "relay" })
  assert(status == 200, "create failed with status " .. status)
  return body.result
end

local function error_code(body)
  return type(body) == "table" and body.errors and body.errors[1]
    and body.errors[1].code
end

local function error_message(body)
  return type(body) == "table" and body.errors and body.errors[1]
    and body.errors[1].message or ""
end

local function names_of(list)
  local names = {}
  for i, item in ipairs(list) do
    names[i] = item.name
  end
  return names
end

-- Sends raw bytes on a new connection and returns everything received
-- until the server closes it (at most 5 s).
local function raw_exchange(emu, request_text)
  local connection = assert(socket.connect("127.0.0.1", emu.port))
  connection:settimeout(5)
  assert(connection:send(request_text))
  local data, err, partial = connection:receive("*a")
  connection:close()
  return data or partial, err
end

local function raw_get(emu, path)
  return raw_exchange(emu, "GET " .. path .. " HTTP/1.1\r\n"
    .. "Host: 127.0.0.1\r\nAuthorization: Bearer " .. TOKEN .. "\r\n"
    .. "Connection: close\r\n\r\n")
end

local function split_response(raw)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  return head, body
end

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function run(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  local _, _, code = pipe:close()
  return output, code
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  return text
end

local function temporary_directory()
  return (run("mktemp -d"):gsub("%s+$", ""))
end

describe("moq-emulator", function()
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

  describe("start-up", function()
    it("prints the base URL", function()
      assert.matches("^http://127%.0%.0%.1:%d+/client/v4$", emu.url)
      assert.equals("http://127.0.0.1:" .. emu.port .. "/client/v4",
        emu.url)
    end)

    it("answers the health route", function()
      local status, body = emu:request("GET", "/__emulator/health")
      assert.equals(200, status)
      assert.same({ ok = true }, body)
    end)
  end)

  describe("create", function()
    it("returns both tokens and the default config", function()
      local status, body, _, text = call(emu, "POST", relays_path(),
        { name = "studio" })
      assert.equals(200, status)
      assert.is_true(body.success)
      local relay = body.result
      assert.matches(UID_PATTERN, relay.uid)
      assert.equals("studio", relay.name)
      assert.matches(TIME_PATTERN, relay.created)
      assert.equals(relay.created, relay.modified)
      assert.is_string(relay.token_publish_subscribe)
      assert.is_string(relay.token_subscribe)
      assert.are_not.equal(relay.token_publish_subscribe,
        relay.token_subscribe)
      assert.same({ enabled = true, max_timeout_ms = 30000 },
        relay.config.lingering_subscribe)
      assert.is_false(relay.config.origin_fallback.enabled)
      assert.truthy(text:find('"origins":[]', 1, true))
    end)

    it("gives each relay a new uid", function()
      local first = create(emu, "a")
      local second = create(emu, "b")
      assert.are_not.equal(first.uid, second.uid)
    end)
  end)

  describe("get", function()
    it("returns config but no tokens", function()
      local relay = create(emu)
      local status, body = call(emu, "GET", relays_path("/" .. relay.uid))
      assert.equals(200, status)
      assert.equals(relay.uid, body.result.uid)
      assert.same(relay.config.lingering_subscribe,
        body.result.config.lingering_subscribe)
      assert.is_nil(body.result.token_publish_subscribe)
      assert.is_nil(body.result.token_subscribe)
      assert.is_nil(body.result.status)
    end)

    it("includes status while connected", function()
      local relay = create(emu)
      emu:set_status(relay.uid, "connected")
      local _, body = call(emu, "GET", relays_path("/" .. relay.uid))
      assert.equals("connected", body.result.status)
      emu:set_status(relay.uid, nil)
      _, body = call(emu, "GET", relays_path("/" .. relay.uid))
      assert.is_nil(body.result.status)
    end)

    it("returns 404 with code 10020 for an unknown relay", function()
      local status, body = call(emu, "GET",
        relays_path("/00000000000000000000000000000000"))
      assert.equals(404, status)
      assert.is_false(body.success)
      assert.equals(10020, error_code(body))
    end)
  end)

  describe("list", function()
    it("returns summaries with result_info", function()
      create(emu, "one")
      create(emu, "two")
      local status, body = call(emu, "GET", relays_path())
      assert.equals(200, status)
      assert.equals(2, #body.result)
      for _, item in ipairs(body.result) do
        local keys = {}
        for key in pairs(item) do
          keys[#keys + 1] = key
        end
        table.sort(keys)
        assert.same({ "created", "modified", "name", "uid" }, keys)
      end
      assert.same({ count = 2, total = 2 }, body.result_info)
    end)

    it("encodes an empty list as []", function()
      local _, _, _, text = call(emu, "GET", relays_path())
      assert.truthy(text:find('"result":[]', 1, true))
      assert.truthy(text:find('"errors":[]', 1, true))
      assert.truthy(text:find('"messages":[]', 1, true))
    end)
  end)

  describe("update", function()
    it("renames and keeps the config", function()
      local relay = create(emu)
      local status, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        { name = "renamed" })
      assert.equals(200, status)
      assert.equals("renamed", body.result.name)
      assert.same(relay.config.lingering_subscribe,
        body.result.config.lingering_subscribe)
      assert.is_nil(body.result.token_subscribe)
    end)

    it("replaces a config sub-object whole", function()
      local relay = create(emu)
      local status, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"config":{"lingering_subscribe":{"enabled":false}}}')
      assert.equals(200, status)
      assert.same({ enabled = false },
        body.result.config.lingering_subscribe)
      assert.is_false(body.result.config.origin_fallback.enabled)
    end)

    it("advances modified", function()
      local relay = create(emu)
      local _, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        { name = "later" })
      assert.equals(relay.created, body.result.created)
      assert.is_true(body.result.modified > relay.modified)
    end)

    it("enables origin fallback with lingering off", function()
      local relay = create(emu)
      local status, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"config":{"lingering_subscribe":{"enabled":false},'
        .. '"origin_fallback":{"enabled":true,'
        .. '"origins":[{"url":"https://origin.example/moq"}]}}}')
      assert.equals(200, status)
      assert.is_true(body.result.config.origin_fallback.enabled)
      assert.equals("https://origin.example/moq",
        body.result.config.origin_fallback.origins[1].url)
    end)

    it("checks mutual exclusion after merging", function()
      local relay = create(emu)
      call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"config":{"lingering_subscribe":{"enabled":false},'
        .. '"origin_fallback":{"enabled":true,"origins":[]}}}')
      local status, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"config":{"lingering_subscribe":{"enabled":true}}}')
      assert.equals(400, status)
      assert.equals(10010, error_code(body))
    end)

    it("leaves the relay unchanged when rejected", function()
      local relay = create(emu)
      call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"name":"new","config":{"lingering_subscribe":'
        .. '{"max_timeout_ms":-5}}}')
      local stored = emu:relay(relay.uid)
      assert.equals(relay.name, stored.name)
      assert.equals(30000, stored.config.lingering_subscribe.max_timeout_ms)
    end)

    it("accepts 30000.0 as an integer", function()
      local relay = create(emu)
      local status, body = call(emu, "PUT", relays_path("/" .. relay.uid),
        '{"config":{"lingering_subscribe":'
        .. '{"enabled":true,"max_timeout_ms":30000.0}}}')
      assert.equals(200, status)
      assert.equals(30000,
        body.result.config.lingering_subscribe.max_timeout_ms)
    end)

    it("accepts max_timeout_ms 0 and 300000", function()
      local relay = create(emu)
      for _, value in ipairs({ 0, 300000 }) do
        local status = call(emu, "PUT", relays_path("/" .. relay.uid),
          { config = { lingering_subscribe = { max_timeout_ms = value } } })
        assert.equals(200, status)
      end
    end)
  end)

  describe("delete", function()
    it("returns a null result", function()
      local relay = create(emu)
      local status, body, _, text = call(emu, "DELETE",
        relays_path("/" .. relay.uid))
      assert.equals(200, status)
      assert.is_true(body.success)
      assert.equals(cjson.null, body.result)
      assert.truthy(text:find('"result":null', 1, true))
    end)

    it("hides the relay from get and list", function()
      local relay = create(emu)
      call(emu, "DELETE", relays_path("/" .. relay.uid))
      local status, body = call(emu, "GET", relays_path("/" .. relay.uid))
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
      status, body = call(emu, "GET", relays_path())
      assert.equals(200, status)
      assert.equals(0, body.result_info.total)
    end)

    it("keeps the relay in the store as deleted", function()
      local relay = create(emu)
      call(emu, "DELETE", relays_path("/" .. relay.uid))
      assert.is_true(emu:relay(relay.uid).deleted)
    end)

    it("returns 404 the second time", function()
      local relay = create(emu)
      call(emu, "DELETE", relays_path("/" .. relay.uid))
      local status, body = call(emu, "DELETE", relays_path("/" .. relay.uid))
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
    end)
  end)

  describe("rotate", function()
    it("replaces the publish_subscribe token", function()
      local relay = create(emu)
      local status, body = call(emu, "POST",
        relays_path("/" .. relay.uid .. "/tokens/rotate"),
        { type = "publish_subscribe" })
      assert.equals(200, status)
      assert.equals("publish_subscribe", body.result.type)
      assert.are_not.equal(relay.token_publish_subscribe, body.result.token)
      local stored = emu:relay(relay.uid)
      assert.equals(body.result.token, stored.token_publish_subscribe)
      assert.equals(relay.token_subscribe, stored.token_subscribe)
    end)

    it("replaces the subscribe token", function()
      local relay = create(emu)
      local _, body = call(emu, "POST",
        relays_path("/" .. relay.uid .. "/tokens/rotate"),
        { type = "subscribe" })
      assert.equals("subscribe", body.result.type)
      local stored = emu:relay(relay.uid)
      assert.equals(body.result.token, stored.token_subscribe)
      assert.are_not.equal(relay.token_subscribe, stored.token_subscribe)
      assert.equals(relay.token_publish_subscribe,
        stored.token_publish_subscribe)
    end)

    it("rejects an unknown token type", function()
      local relay = create(emu)
      for _, body in ipairs({ '{"type":"admin"}', '{}', '{"type":1}' }) do
        local status, decoded = call(emu, "POST",
          relays_path("/" .. relay.uid .. "/tokens/rotate"), body)
        assert.equals(400, status)
        assert.equals(10005, error_code(decoded))
      end
    end)
  end)

  describe("authentication", function()
    local malformed = {
      "Basic abc", "Bearer", "Bearer ", "bearer " .. TOKEN,
      "Bearer " .. TOKEN .. " extra", "Bearer tok!en",
      "Bearer  " .. TOKEN,
    }
    for _, value in ipairs(malformed) do
      it("rejects Authorization '" .. value .. "' with 6003", function()
        local status, body = call(emu, "GET", relays_path(), nil,
          { authorization = value })
        assert.equals(400, status)
        assert.equals(6003, error_code(body))
        assert.equals("Invalid request headers", error_message(body))
        local chain = body.errors[1].error_chain
        assert.equals(6111, chain[1].code)
        assert.equals("Invalid format for Authorization header",
          chain[1].message)
      end)
    end

    it("rejects an unknown token with 401", function()
      local status, body = call(emu, "GET", relays_path(), nil,
        bearer("unknown-token"))
      assert.equals(401, status)
      assert.equals(10000, error_code(body))
      assert.equals("Authentication error", error_message(body))
    end)

    it("rejects a request without credentials", function()
      local status, body = call(emu, "GET", relays_path(), nil, {})
      assert.equals(400, status)
      assert.equals(9106, error_code(body))
      assert.equals(
        "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
        error_message(body))
    end)

    it("accepts the default email and key", function()
      local status = call(emu, "GET", relays_path(), nil, {
        ["x-auth-email"] = "dev@example.com",
        ["x-auth-key"] = "local-dev-key",
      })
      assert.equals(200, status)
    end)

    it("rejects a wrong key with 6103", function()
      local status, body = call(emu, "GET", relays_path(), nil, {
        ["x-auth-email"] = "dev@example.com",
        ["x-auth-key"] = "wrong-key",
      })
      assert.equals(400, status)
      assert.equals(6003, error_code(body))
      assert.equals(6103, body.errors[1].error_chain[1].code)
      assert.equals("Invalid format for X-Auth-Key header",
        body.errors[1].error_chain[1].message)
    end)

    it("prefers Authorization over the key pair", function()
      local status, body = call(emu, "GET", relays_path(), nil, {
        authorization = "Token x",
        ["x-auth-email"] = "dev@example.com",
        ["x-auth-key"] = "local-dev-key",
      })
      assert.equals(400, status)
      assert.equals(6111, body.errors[1].error_chain[1].code)
    end)

    it("comes before body validation", function()
      local status, body = call(emu, "POST", relays_path(), "not json",
        bearer("unknown-token"))
      assert.equals(401, status)
      assert.equals(10000, error_code(body))
    end)
  end)

  describe("account isolation", function()
    it("hides a relay from another account", function()
      local relay = create(emu, "mine")
      local path = relays_path("/" .. relay.uid, OTHER_ACCOUNT)
      local status, body = call(emu, "GET", path)
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
      assert.equals(404, (call(emu, "PUT", path, { name = "x" })))
      assert.equals(404, (call(emu, "DELETE", path)))
      assert.equals(404, (call(emu, "POST", path .. "/tokens/rotate",
        { type = "subscribe" })))
    end)

    it("lists only the account's relays", function()
      create(emu, "mine")
      create(emu, "theirs", OTHER_ACCOUNT)
      local _, body = call(emu, "GET", relays_path())
      assert.same({ "mine" }, names_of(body.result))
      _, body = call(emu, "GET", relays_path(nil, OTHER_ACCOUNT))
      assert.same({ "theirs" }, names_of(body.result))
    end)

    it("accepts a one-character account id", function()
      assert.equals(200, (call(emu, "GET", relays_path(nil, "a"))))
    end)

    local invalid_accounts = {
      ("a"):rep(65), "abc-def", "abc%2Fdef", "%2e%2e", "",
    }
    for _, account in ipairs(invalid_accounts) do
      it("rejects account id '" .. account .. "' with 7003", function()
        local status, body = call(emu, "GET", relays_path(nil, account))
        assert.equals(404, status)
        assert.equals(7003, error_code(body))
      end)
    end
  end)

  describe("routing", function()
    it("rejects an unknown path with 7003", function()
      local path = relays_path():gsub("relays$", "relayz")
      local status, body, headers = call(emu, "GET", path)
      assert.equals(404, status)
      assert.equals(7003, error_code(body))
      assert.equals("Could not route to "
        .. path:gsub("^/client/v4", "")
        .. ", perhaps your object identifier is invalid?",
        error_message(body))
      assert.matches("^application/json", headers["content-type"])
    end)

    it("rejects a path outside /client/v4", function()
      local status, body = call(emu, "GET", "/accounts")
      assert.equals(404, status)
      assert.equals(7003, error_code(body))
    end)

    it("rejects a wrong method with 405", function()
      local status, body, headers = call(emu, "PATCH", relays_path())
      assert.equals(405, status)
      assert.equals(7001, error_code(body))
      assert.equals("GET, POST", headers["allow"])
    end)

    it("keeps an encoded slash inside the relay id", function()
      local path = relays_path("/abc%2Ftokens%2Frotate")
      local status, body = call(emu, "GET", path)
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
      status = call(emu, "POST", path, { type = "subscribe" })
      assert.equals(405, status)
    end)

    it("keeps an encoded dot-dot inside the relay id", function()
      create(emu)
      local status, body = call(emu, "GET", relays_path("/%2e%2e"))
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
      status, body = call(emu, "POST",
        relays_path("/%2E%2E/tokens/rotate"), { type = "subscribe" })
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
    end)

    it("keeps an encoded question mark inside the relay id", function()
      local status, body = call(emu, "GET", relays_path("/abc%3Fx%3D1"))
      assert.equals(404, status)
      assert.equals(10020, error_code(body))
      assert.truthy(error_message(body):find("abc?x=1", 1, true))
    end)

    it("rejects a trailing slash with 7003", function()
      local status, body = call(emu, "GET", relays_path("/"))
      assert.equals(404, status)
      assert.equals(7003, error_code(body))
    end)
  end)

  describe("create validation", function()
    local cases = {
      { "invalid JSON", "{", 10001 },
      { "an empty body", "", 10001 },
      { "a name that is not UTF-8", '{"name":"\255\254"}', 10001 },
      { "an overlong UTF-8 name", '{"name":"\192\175"}', 10001 },
      { "a surrogate in UTF-8", '{"name":"\237\160\128"}', 10001 },
      { "an array body", "[]", 10002 },
      { "a string body", '"x"', 10002 },
      { "a null body", "null", 10002 },
      { "an unknown field", '{"name":"a","extra":1}', 10003, "extra" },
      { "a config field", '{"name":"a","config":{}}', 10003, "config" },
      { "a missing name", "{}", 10004, "name" },
      { "an empty name", '{"name":""}', 10004, "name" },
      { "a number name", '{"name":5}', 10004, "name" },
      { "a null name", '{"name":null}', 10004, "name" },
      { "a 256-character name",
        cjson.encode({ name = ("n"):rep(256) }), 10004, "name" },
    }
    for _, case in ipairs(cases) do
      local label, body, code, field = case[1], case[2], case[3], case[4]
      it("rejects " .. label .. " with " .. code, function()
        local status, decoded = call(emu, "POST", relays_path(), body)
        assert.equals(400, status)
        assert.equals(code, error_code(decoded))
        if field then
          assert.truthy(error_message(decoded):find(field, 1, true))
        end
      end)
    end

    it("accepts a 255-character name", function()
      local status = call(emu, "POST", relays_path(),
        { name = ("n"):rep(255) })
      assert.equals(200, status)
    end)

    it("counts name length in characters", function()
      local status = call(emu, "POST", relays_path(),
        { name = ("\u{e9}"):rep(255) })
      assert.equals(200, status)
    end)
  end)

  describe("update validation", function()
    local cases = {
      { "a fractional max_timeout_ms",
        '{"lingering_subscribe":{"max_timeout_ms":30000.5}}', 10006,
        "max_timeout_ms" },
      { "a negative max_timeout_ms",
        '{"lingering_subscribe":{"max_timeout_ms":-1}}', 10006 },
      { "max_timeout_ms 300001",
        '{"lingering_subscribe":{"max_timeout_ms":300001}}', 10006 },
      { "a string max_timeout_ms",
        '{"lingering_subscribe":{"max_timeout_ms":"30000"}}', 10006 },
      { "a string enabled",
        '{"lingering_subscribe":{"enabled":"yes"}}', 10007, "enabled" },
      { "a number enabled",
        '{"origin_fallback":{"enabled":1}}', 10007, "enabled" },
      { "an object origins",
        '{"origin_fallback":{"origins":{}}}', 10008, "origins" },
      { "a number in origins",
        '{"origin_fallback":{"origins":[1]}}', 10008, "origins" },
      { "an origin without url",
        '{"origin_fallback":{"origins":[{}]}}', 10008, "url" },
      { "a number url",
        '{"origin_fallback":{"origins":[{"url":5}]}}', 10008, "url" },
      { "an unknown origin field",
        '{"origin_fallback":{"origins":[{"url":"u","weight":1}]}}', 10003,
        "weight" },
      { "a null lingering_subscribe",
        '{"lingering_subscribe":null}', 10009, "lingering_subscribe" },
      { "an unknown config field", '{"upstreams":[]}', 10003,
        "upstreams" },
      { "both features enabled",
        '{"origin_fallback":{"enabled":true,"origins":[]}}', 10010,
        "mutually exclusive" },
    }
    for _, case in ipairs(cases) do
      local label, config, code, field = case[1], case[2], case[3], case[4]
      it("rejects " .. label .. " with " .. code, function()
        local relay = create(emu)
        local status, decoded = call(emu, "PUT",
          relays_path("/" .. relay.uid), '{"config":' .. config .. "}")
        assert.equals(400, status)
        assert.equals(code, error_code(decoded))
        if field then
          assert.truthy(error_message(decoded):find(field, 1, true))
        end
      end)
    end

    local body_cases = {
      { "an array config", '{"config":[]}', 10009 },
      { "a string config", '{"config":"x"}', 10009 },
      { "an unknown field", '{"token_subscribe":"x"}', 10003 },
      { "an empty name", '{"name":""}', 10004 },
      { "an array body", "[1]", 10002 },
    }
    for _, case in ipairs(body_cases) do
      local label, body, code = case[1], case[2], case[3]
      it("rejects " .. label .. " with " .. code, function()
        local relay = create(emu)
        local status, decoded = call(emu, "PUT",
          relays_path("/" .. relay.uid), body)
        assert.equals(400, status)
        assert.equals(code, error_code(decoded))
      end)
    end
  end)

  describe("list query validation", function()
    local cases = {
      { "asc=yes", 10011 }, { "asc=TRUE", 10011 }, { "asc=", 10011 },
      { "per_page=0", 10012 }, { "per_page=1001", 10012 },
      { "per_page=abc", 10012 }, { "per_page=1.5", 10012 },
      { "per_page=-1", 10012 },
      { "created_after=yesterday", 10013 },
      { "created_before=2026-13-01T00:00:00Z", 10013 },
      { "created_after=2026-02-30T00:00:00Z", 10013 },
      { "created_after=2026-01-01T00:00:00", 10013 },
      { "page=2", 10014 }, { "cursor=x", 10014 },
      { "per_page=1&per_page=2", 10015 },
    }
    for _, case in ipairs(cases) do
      local query, code = case[1], case[2]
      it("rejects " .. query .. " with " .. code, function()
        local status, body = call(emu, "GET", relays_path("?" .. query))
        assert.equals(400, status)
        assert.equals(code, error_code(body))
      end)
    end

    it("accepts per_page=1000 and asc=false", function()
      local status = call(emu, "GET",
        relays_path("?per_page=1000&asc=false"))
      assert.equals(200, status)
    end)

    it("rejects a query on get with 10014", function()
      local relay = create(emu)
      local status, body = call(emu, "GET",
        relays_path("/" .. relay.uid .. "?per_page=1"))
      assert.equals(400, status)
      assert.equals(10014, error_code(body))
    end)
  end)

  describe("timestamps", function()
    it("are unique and strictly increasing", function()
      local previous
      for i = 1, 10 do
        local relay = create(emu, "r" .. i)
        assert.matches(TIME_PATTERN, relay.created)
        if previous then
          assert.is_true(relay.created > previous)
        end
        previous = relay.created
      end
    end)

    it("compare with an offset in a filter", function()
      emu:seed({ account_id = ACCOUNT, name = "at",
        created = "2026-01-01T00:00:00Z" })
      emu:seed({ account_id = ACCOUNT, name = "after",
        created = "2026-01-01T00:00:00.000001Z" })
      local _, body = call(emu, "GET", relays_path(
        "?created_after=2026-01-01T01:00:00%2B01:00"))
      assert.same({ "after" }, names_of(body.result))
      _, body = call(emu, "GET", relays_path(
        "?created_before=2025-12-31T19:00:00.0000005-05:00"))
      assert.same({ "at" }, names_of(body.result))
    end)
  end)

  describe("pagination", function()
    before_each(function()
      for i = 1, 5 do
        emu:seed({ account_id = ACCOUNT, name = "r" .. i,
          created = "2026-03-0" .. i .. "T10:00:00Z" })
      end
    end)

    it("lists newest first", function()
      local _, body = call(emu, "GET", relays_path())
      assert.same({ "r5", "r4", "r3", "r2", "r1" }, names_of(body.result))
    end)

    it("lists oldest first with asc=true", function()
      local _, body = call(emu, "GET", relays_path("?asc=true"))
      assert.same({ "r1", "r2", "r3", "r4", "r5" }, names_of(body.result))
    end)

    it("caps the page with per_page", function()
      local _, body = call(emu, "GET", relays_path("?per_page=2"))
      assert.same({ "r5", "r4" }, names_of(body.result))
      assert.same({ count = 2, total = 5 }, body.result_info)
    end)

    it("continues with created_before as the cursor", function()
      local _, page = call(emu, "GET", relays_path("?per_page=2"))
      local cursor = page.result[2].created
      local _, body = call(emu, "GET",
        relays_path("?per_page=2&created_before=" .. cursor))
      assert.same({ "r3", "r2" }, names_of(body.result))
      assert.same({ count = 2, total = 3 }, body.result_info)
    end)

    it("continues with created_after when ascending", function()
      local _, page = call(emu, "GET", relays_path("?per_page=2&asc=true"))
      local cursor = page.result[2].created
      local _, body = call(emu, "GET", relays_path(
        "?per_page=2&asc=true&created_after=" .. cursor))
      assert.same({ "r3", "r4" }, names_of(body.result))
      assert.same({ count = 2, total = 3 }, body.result_info)
    end)

    it("treats both bounds as strict", function()
      local _, body = call(emu, "GET", relays_path(
        "?created_after=2026-03-02T10:00:00Z"
        .. "&created_before=2026-03-04T10:00:00Z"))
      assert.same({ "r3" }, names_of(body.result))
    end)

    it("defaults per_page to 20", function()
      emu:seed({ account_id = ACCOUNT, name = "bulk", count = 25,
        created = "2025-01-01T00:00:00Z" })
      local _, body = call(emu, "GET", relays_path())
      assert.same({ count = 20, total = 30 }, body.result_info)
    end)
  end)

  describe("rate limit headers", function()
    it("are on every API response", function()
      local responses = {
        { call(emu, "GET", relays_path()) },
        { call(emu, "GET", relays_path(), nil, bearer("unknown")) },
        { call(emu, "GET", "/client/v4/nowhere") },
      }
      for _, response in ipairs(responses) do
        local headers = response[3]
        assert.matches('^"default";r=%d+;t=%d+$', headers["ratelimit"])
        assert.equals('"default";q=1200;w=300',
          headers["ratelimit-policy"])
      end
    end)

    it("count down per request", function()
      local _, _, first = call(emu, "GET", relays_path())
      local _, _, second = call(emu, "GET", relays_path())
      assert.matches('r=1199;', first["ratelimit"])
      assert.matches('r=1198;', second["ratelimit"])
    end)

    it("do not count test routes", function()
      for _ = 1, 5 do
        emu:request("GET", "/__emulator/health")
      end
      local _, _, headers = call(emu, "GET", relays_path())
      assert.matches('r=1199;', headers["ratelimit"])
    end)
  end)

  describe("test routes", function()
    it("return the stored relay with its tokens", function()
      local relay = create(emu)
      local stored = emu:relay(relay.uid)
      assert.equals(ACCOUNT, stored.account_id)
      assert.equals(relay.token_publish_subscribe,
        stored.token_publish_subscribe)
      assert.equals(relay.token_subscribe, stored.token_subscribe)
      assert.is_false(stored.deleted)
      assert.equals(cjson.null, stored.status)
    end)

    it("return 404 for an unknown uid", function()
      local stored, status = emu:relay("ffffffffffffffffffffffffffffffff")
      assert.is_nil(stored)
      assert.equals(404, status)
    end)

    it("reject an invalid status", function()
      local relay = create(emu)
      local status = emu:request("PUT",
        "/__emulator/relays/" .. relay.uid .. "/status",
        { status = "busy" })
      assert.equals(400, status)
    end)

    it("seed a relay with an exact created", function()
      local stored = emu:seed({ account_id = ACCOUNT, name = "seeded",
        created = "2026-01-02T03:04:05Z", status = "connected" })
      assert.equals("2026-01-02T03:04:05.000000Z", stored.created)
      assert.equals(stored.created, stored.modified)
      assert.equals("connected", stored.status)
      local _, body = call(emu, "GET", relays_path("/" .. stored.uid))
      assert.equals("seeded", body.result.name)
    end)

    it("seed several relays with suffixed names", function()
      local stored = emu:seed({ account_id = ACCOUNT, name = "bulk",
        count = 3, created = "2026-01-02T03:04:05Z" })
      assert.same({ "bulk-1", "bulk-2", "bulk-3" }, names_of(stored))
      assert.equals(stored[1].created, stored[3].created)
    end)

    it("reject an invalid seed", function()
      local bodies = {
        { name = "no account" },
        { account_id = ACCOUNT, name = "x", colour = "red" },
        { account_id = ACCOUNT, name = "x", count = 5001 },
        { account_id = ACCOUNT, name = "x", created = "today" },
      }
      for _, body in ipairs(bodies) do
        local status, decoded = emu:request("POST", "/__emulator/relays",
          body)
        assert.equals(400, status)
        assert.is_string(decoded.error)
      end
    end)

    it("reset clears relays, journal and faults", function()
      local relay = create(emu)
      emu:faults("list", { { status = 500 } })
      emu:reset()
      assert.is_nil(emu:relay(relay.uid))
      assert.same({}, emu:journal())
      local _, faults = emu:request("GET", "/__emulator/faults")
      assert.same({}, faults)
    end)

    it("list and clear queued faults", function()
      emu:faults("get", { { status = 503, body = "x" } })
      local status, faults = emu:request("GET", "/__emulator/faults")
      assert.equals(200, status)
      assert.equals(1, #faults)
      assert.equals("get", faults[1].endpoint)
      assert.equals(503, faults[1].response.status)
      emu:clear_faults()
      status, faults = emu:request("GET", "/__emulator/faults")
      assert.equals(200, status)
      assert.same({}, faults)
    end)

    it("reject an invalid fault", function()
      local cases = {
        { "nope", { { status = 500 } } },
        { "list", {} },
        { "list", { { status = 42 } } },
        { "list", { { drop = "sometimes" } } },
        { "list", { { passthrough = true, status = 500 } } },
        { "list", { { body = "a", body_base64 = "YQ==" } } },
        { "list", { { surprise = true } } },
      }
      for _, case in ipairs(cases) do
        local status, body = emu:faults(case[1], case[2])
        assert.equals(400, status)
        assert.is_string(body.error)
      end
    end)
  end)

  describe("faults", function()
    it("replace the response with status, headers and body", function()
      emu:faults("list", { {
        status = 502,
        headers = { ["Content-Type"] = "text/html" },
        body = "<html>bad gateway</html>",
      } })
      local status, _, headers, text = call(emu, "GET", relays_path())
      assert.equals(502, status)
      assert.equals("text/html", headers["content-type"])
      assert.equals("<html>bad gateway</html>", text)
      assert.equals(200, (call(emu, "GET", relays_path())))
    end)

    it("decode body_base64", function()
      emu:faults("list", { { status = 200, body_base64 = "AAEC/w==" } })
      local _, _, _, text = call(emu, "GET", relays_path())
      assert.equals("\0\1\2\255", text)
    end)

    it("wait for their own endpoint", function()
      emu:faults("create", { { status = 503 } })
      assert.equals(200, (call(emu, "GET", relays_path())))
      assert.equals(503, (call(emu, "POST", relays_path(), { name = "x" })))
    end)

    it("match any endpoint with *", function()
      emu:faults("*", { { status = 500 }, { status = 501 } })
      assert.equals(500, (call(emu, "GET", relays_path("/abc"))))
      assert.equals(501, (call(emu, "GET", "/client/v4/nowhere")))
    end)

    it("are served in order, one per request", function()
      emu:faults("list", { { status = 500 }, { status = 503 } })
      assert.equals(500, (call(emu, "GET", relays_path())))
      assert.equals(503, (call(emu, "GET", relays_path())))
      assert.equals(200, (call(emu, "GET", relays_path())))
    end)

    it("come before authentication", function()
      emu:faults("list", { { status = 429, body = "slow down" } })
      local status, _, _, text = call(emu, "GET", relays_path(), nil, {})
      assert.equals(429, status)
      assert.equals("slow down", text)
    end)

    it("delay the response with delay_ms", function()
      emu:faults("list", { { status = 504, delay_ms = 300 } })
      local started = socket.gettime()
      local status = call(emu, "GET", relays_path())
      assert.equals(504, status)
      assert.is_true(socket.gettime() - started >= 0.28)
    end)

    it("trickle the body in chunks", function()
      emu:faults("list", { { status = 200, body = "abcdefghi",
        trickle = { chunk = 3, interval_ms = 100 } } })
      local started = socket.gettime()
      local _, _, _, text = call(emu, "GET", relays_path())
      assert.equals("abcdefghi", text)
      assert.is_true(socket.gettime() - started >= 0.18)
    end)

    it("drop the connection before headers", function()
      emu:faults("list", { { drop = "before_headers" } })
      local raw = raw_get(emu, relays_path())
      assert.equals("", raw)
    end)

    it("drop the connection mid-body", function()
      emu:faults("list", { { status = 200, body = "0123456789",
        drop = "mid_body" } })
      local raw = raw_get(emu, relays_path())
      local head, body = split_response(raw)
      assert.matches("^HTTP/1%.1 200", head)
      assert.matches("\r\nContent%-Length: 10\r\n", head .. "\r\n")
      assert.equals("01234", body)
    end)

    it("override Content-Length and close", function()
      emu:faults("list", { { status = 200, body = "short",
        content_length = 100 } })
      local raw = raw_get(emu, relays_path())
      local head, body = split_response(raw)
      assert.matches("\r\nContent%-Length: 100\r\n", head .. "\r\n")
      assert.equals("short", body)
    end)

    it("delay the real response with passthrough", function()
      emu:faults("list", { { passthrough = true, delay_ms = 300 } })
      local started = socket.gettime()
      local status, body = call(emu, "GET", relays_path())
      assert.equals(200, status)
      assert.is_true(body.success)
      assert.is_true(socket.gettime() - started >= 0.28)
    end)

    it("answer after the real request with after", function()
      emu:faults("create", { { after = true, status = 504,
        body = "gateway timeout" } })
      local status, _, _, text = call(emu, "POST", relays_path(),
        { name = "acted" })
      assert.equals(504, status)
      assert.equals("gateway timeout", text)
      local _, body = call(emu, "GET", relays_path())
      assert.same({ "acted" }, names_of(body.result))
    end)

    it("are recorded in the journal", function()
      emu:faults("list", { { status = 500 } })
      call(emu, "GET", relays_path())
      local journal = emu:journal()
      assert.equals(1, #journal)
      assert.equals("GET", journal[1].method)
    end)
  end)

  describe("journal", function()
    it("records the raw request", function()
      local path = relays_path("/%2e%2e?x=1")
      call(emu, "GET", path, nil, {
        authorization = "Bearer " .. TOKEN, ["X-Trace-Id"] = "abc",
      })
      call(emu, "POST", relays_path(), '{"name":"j"}')
      local journal = emu:journal()
      assert.equals(2, #journal)
      local first = journal[1]
      assert.equals("GET", first.method)
      assert.equals(path, first.uri)
      assert.equals(relays_path("/%2e%2e"), first.path)
      assert.equals("x=1", first.query)
      assert.equals("abc", first.headers["x-trace-id"])
      assert.equals("Bearer " .. TOKEN, first.headers["authorization"])
      assert.equals("", first.body)
      assert.equals('{"name":"j"}', journal[2].body)
      assert.equals("", journal[2].query)
    end)

    it("is cleared by DELETE", function()
      call(emu, "GET", relays_path())
      emu:clear_journal()
      assert.same({}, emu:journal())
    end)

    it("keeps the last 10000 entries", function()
      local count, sent = 10005, 0
      -- nginx serves at most 1000 requests on one connection, so the
      -- requests go out pipelined in batches of 1000.
      while sent < count do
        local batch = math.min(1000, count - sent)
        local parts = {}
        for i = 1, batch do
          parts[i] = "GET /client/v4/entry-" .. (sent + i)
            .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            .. (i == batch and "Connection: close\r\n" or "") .. "\r\n"
        end
        raw_exchange(emu, table.concat(parts))
        sent = sent + batch
      end
      local journal = emu:journal()
      assert.equals(10000, #journal)
      assert.equals("/client/v4/entry-6", journal[1].uri)
      assert.equals("/client/v4/entry-10005", journal[10000].uri)
    end)

    it("skips test routes", function()
      emu:request("GET", "/__emulator/health")
      emu:seed({ account_id = ACCOUNT, name = "s" })
      assert.same({}, emu:journal())
    end)
  end)
end)

describe("moq-emulator with bound credentials", function()
  local emu

  setup(function()
    emu = emulator.start({
      tokens = { "account-token=" .. ACCOUNT, "any-account-token" },
      api_keys = { "ops@example.com:ops-key=" .. ACCOUNT },
    })
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  it("accepts a token for its account", function()
    assert.equals(200, (call(emu, "GET", relays_path(), nil,
      bearer("account-token"))))
  end)

  it("rejects a token for another account with 403", function()
    local status, body = call(emu, "GET", relays_path(nil, OTHER_ACCOUNT),
      nil, bearer("account-token"))
    assert.equals(403, status)
    assert.equals(10000, error_code(body))
  end)

  it("accepts an unbound token for any account", function()
    assert.equals(200, (call(emu, "GET", relays_path(nil, OTHER_ACCOUNT),
      nil, bearer("any-account-token"))))
  end)

  it("rejects a key pair for another account with 403", function()
    local headers = {
      ["x-auth-email"] = "ops@example.com", ["x-auth-key"] = "ops-key",
    }
    assert.equals(200, (call(emu, "GET", relays_path(), nil, headers)))
    local status, body = call(emu, "GET", relays_path(nil, OTHER_ACCOUNT),
      nil, {
        ["x-auth-email"] = "ops@example.com", ["x-auth-key"] = "ops-key",
      })
    assert.equals(403, status)
    assert.equals(10000, error_code(body))
  end)

  it("rejects the default token", function()
    assert.equals(401, (call(emu, "GET", relays_path(), nil,
      bearer(TOKEN))))
  end)

  it("restores command-line credentials on reset", function()
    local status = emu:request("PUT", "/__emulator/credentials",
      { tokens = { { token = "replacement-token" } } })
    assert.equals(200, status)
    assert.equals(200, (call(emu, "GET", relays_path(), nil,
      bearer("replacement-token"))))
    assert.equals(401, (call(emu, "GET", relays_path(), nil,
      bearer("account-token"))))
    emu:reset()
    assert.equals(401, (call(emu, "GET", relays_path(), nil,
      bearer("replacement-token"))))
    assert.equals(200, (call(emu, "GET", relays_path(), nil,
      bearer("account-token"))))
  end)
end)

describe("moq-emulator with --rate-limit 3/60", function()
  local emu

  setup(function()
    emu = emulator.start({ rate_limit = "3/60" })
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  it("answers the fourth request with 429", function()
    for _ = 1, 3 do
      assert.equals(200, (call(emu, "GET", relays_path())))
    end
    local status, body, headers = call(emu, "GET", relays_path())
    assert.equals(429, status)
    assert.equals(971, error_code(body))
    assert.equals("Please wait and consider throttling your request speed",
      error_message(body))
    local retry_after = tonumber(headers["retry-after"])
    assert.is_true(retry_after >= 1 and retry_after <= 60)
    assert.matches('^"default";r=0;t=%d+$', headers["ratelimit"])
    assert.equals('"default";q=3;w=60', headers["ratelimit-policy"])
  end)

  it("counts each credential separately", function()
    for _ = 1, 4 do
      call(emu, "GET", relays_path())
    end
    local status = call(emu, "GET", relays_path(), nil, {
      ["x-auth-email"] = "dev@example.com",
      ["x-auth-key"] = "local-dev-key",
    })
    assert.equals(200, status)
  end)

  it("starts a new window after reset", function()
    for _ = 1, 4 do
      call(emu, "GET", relays_path())
    end
    emu:reset()
    assert.equals(200, (call(emu, "GET", relays_path())))
  end)
end)

describe("moq-emulator with TLS", function()
  local directory, emu

  setup(function()
    directory = temporary_directory()
    local _, code = run("openssl req -x509 -newkey ec"
      .. " -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
      .. " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
      .. " -keyout " .. shell_quote(directory .. "/key.pem")
      .. " -out " .. shell_quote(directory .. "/cert.pem") .. " 2>&1")
    assert(code == 0, "openssl failed")
    emu = emulator.start({
      tls_cert = directory .. "/cert.pem",
      tls_key = directory .. "/key.pem",
    })
  end)

  teardown(function()
    if emu then
      emu:stop()
    end
    run("rm -rf " .. shell_quote(directory))
  end)

  it("serves HTTPS with the given certificate", function()
    assert.matches("^https://127%.0%.0%.1:%d+/client/v4$", emu.url)
    local https = require "ssl.https"
    local chunks = {}
    local ok, status = https.request({
      url = emu.url:gsub("/client/v4$", "/__emulator/health"),
      sink = require("ltn12").sink.table(chunks),
      cafile = directory .. "/cert.pem",
      verify = "peer",
    })
    assert.truthy(ok)
    assert.equals(200, status)
    assert.equals('{"ok":true}', table.concat(chunks))
  end)
end)

describe("moq-emulator process", function()
  local script = emulator.script_path()

  -- Starts the emulator under bash job control, so that SIGINT is not
  -- ignored, sends it a signal once it prints its URL, and returns the
  -- exit status. TMPDIR points to `directory`, to check the clean-up.
  local function exit_status_after(signal, directory)
    local port = emulator.free_port()
    local command = "TMPDIR=" .. shell_quote(directory) .. " bash -c "
      .. shell_quote("set -m; " .. shell_quote(script)
        .. " --quiet --port " .. port .. " >\"$TMPDIR/../out-" .. port
        .. "\" 2>/dev/null & pid=$!; i=0; "
        .. "while [ ! -s \"$TMPDIR/../out-" .. port .. "\" ] "
        .. "&& [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
        .. "kill -" .. signal .. " $pid; wait $pid; echo \"status=$?\"; "
        .. "rm -f \"$TMPDIR/../out-" .. port .. "\"") .. " 2>/dev/null"
    local output = run(command)
    return tonumber(output:match("status=(%d+)"))
  end

  -- Returns the pids of processes whose command line mentions `text`.
  local function processes_mentioning(text)
    local pids = {}
    for pid in run("ls /proc"):gmatch("%d+") do
      local file = io.open("/proc/" .. pid .. "/cmdline", "rb")
      if file then
        local cmdline = file:read("a") or ""
        file:close()
        if cmdline:find(text, 1, true) then
          pids[#pids + 1] = pid
        end
      end
    end
    return pids
  end

  local parent

  before_each(function()
    parent = temporary_directory()
  end)

  after_each(function()
    run("rm -rf " .. shell_quote(parent))
  end)

  for _, signal in ipairs({ "TERM", "INT" }) do
    it("exits 0 and cleans up on SIG" .. signal, function()
      local directory = parent .. "/tmp"
      assert(os.execute("mkdir " .. shell_quote(directory)))
      assert.equals(0, exit_status_after(signal, directory))
      assert.equals("", run("ls -A " .. shell_quote(directory)))
      assert.same({}, processes_mentioning(directory))
    end)
  end

  it("names the packages when nginx is missing", function()
    local output, code = run("MOQ_EMULATOR_NGINX=/nonexistent "
      .. shell_quote(script) .. " 2>&1 >/dev/null")
    assert.equals(3, code)
    assert.equals(1, select(2, output:gsub("\n", "")))
    assert.truthy(output:find(
      "apt-get install -y nginx-light libnginx-mod-http-lua", 1, true))
  end)

  it("names the packages when the Lua module is missing", function()
    local output, code = run("MOQ_EMULATOR_MODULES_DIR=/nonexistent "
      .. shell_quote(script) .. " 2>&1 >/dev/null")
    assert.equals(3, code)
    assert.truthy(output:find("libnginx-mod-http-lua", 1, true))
  end)

  it("fails clearly when the port is in use", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local output, code = run("TMPDIR=" .. shell_quote(parent) .. " "
      .. shell_quote(script) .. " --quiet --port " .. port
      .. " 2>&1 </dev/null")
    server:close()
    assert.are_not.equal(0, code)
    assert.truthy(output:find("already in use", 1, true))
    assert.equals("", run("ls -A " .. shell_quote(parent)))
  end)

  it("rejects an unknown option with status 2", function()
    local _, code = run(shell_quote(script) .. " --bogus 2>/dev/null")
    assert.equals(2, code)
  end)

  it("rejects a non-loopback host with status 2", function()
    local output, code = run(shell_quote(script)
      .. " --host 192.0.2.1 2>&1")
    assert.equals(2, code)
    assert.truthy(output:find("loopback", 1, true))
  end)

  it("stops once and keeps stderr quiet", function()
    local emu = emulator.start()
    local stderr = read_file(emu.directory .. "/stderr")
    emu:stop()
    emu:stop()
    assert.equals("", stderr)
    assert.is_false(emulator.process_alive(emu.pid))
  end)
end)
