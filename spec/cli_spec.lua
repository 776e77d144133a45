-- cf-moq, the command-line tool: bin/cf-moq run as a child process
-- against the emulator, and cloudflare.cli.main called in-process.

local cjson = require "cjson"
local cli = require "cloudflare.cli"
local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local OTHER_ACCOUNT = "9a7806061c88ada191ed06f989cc3dac"
local TOKEN = "local-dev-token"
-- A token the emulator accepts for ACCOUNT only.
local SCOPED_TOKEN = "scoped-token-for-one-account"
local UNKNOWN_UID = "00000000000000000000000000000000"

-- Seconds one run of cf-moq may take before `timeout` ends it.
local RUN_TIMEOUT = 30

-- Variables of this process that must not reach cf-moq: only what a
-- test sets applies, and the launcher must find the library by itself.
local CLEARED_VARIABLES = {
  "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL",
  "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_BASE_URL", "CLOUDFLARE_LOG",
  "CF_MOQ_PROGRESS", "LUA_PATH", "LUA_CPATH", "LUA_PATH_5_4",
  "LUA_CPATH_5_4", "LUA_INIT", "LUA_INIT_5_4",
}

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  return text
end

local function script_path()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = source:gsub("spec/cli_spec%.lua$", "")
  if root == "" then
    root = "./"
  end
  return root .. "bin/cf-moq"
end

-- Run bin/cf-moq with `args` and the variables of `env`, and return
-- `{ status, stdout, stderr }`. `stdout_target` replaces the file that
-- receives standard output.
local function run_cli(args, env, stdout_target)
  local words = { "timeout", tostring(RUN_TIMEOUT), "env" }
  for _, name in ipairs(CLEARED_VARIABLES) do
    words[#words + 1] = "-u " .. name
  end
  for name, value in pairs(env) do
    words[#words + 1] = name .. "=" .. shell_quote(value)
  end
  words[#words + 1] = shell_quote(script_path())
  for _, arg in ipairs(args) do
    words[#words + 1] = shell_quote(arg)
  end
  local stdout_path, stderr_path = os.tmpname(), os.tmpname()
  local command = table.concat(words, " ") ..
    " >" .. shell_quote(stdout_target or stdout_path) ..
    " 2>" .. shell_quote(stderr_path) .. " </dev/null; echo $?"
  local pipe = assert(io.popen(command, "r"))
  local status = tonumber(pipe:read("a"):match("%d+"))
  pipe:close()
  local result = {
    status = status,
    stdout = read_file(stdout_path),
    stderr = read_file(stderr_path),
  }
  os.remove(stdout_path)
  os.remove(stderr_path)
  return result
end

local function lines(text)
  local out = {}
  for line in text:gmatch("([^\n]*)\n") do
    out[#out + 1] = line
  end
  return out
end

local function count(text, needle)
  local n, start = 0, 1
  while true do
    local i, j = text:find(needle, start, true)
    if not i then
      return n
    end
    n, start = n + 1, j + 1
  end
end

-- The value of a "field  value" line of the output for people.
local function field(text, name)
  for _, line in ipairs(lines(text)) do
    local key, value = line:match("^(%S+)%s+(.*)$")
    if key == name then
      return value
    end
  end
  return nil
end

-- True when the JSON text has a number with a fraction or exponent
-- outside its strings (timestamps have fractions of seconds).
local function has_float(text)
  local outside, i = {}, 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == '"' then
      i = i + 1
      while i <= #text and text:sub(i, i) ~= '"' do
        i = i + (text:sub(i, i) == "\\" and 2 or 1)
      end
      outside[#outside + 1] = " "
    else
      outside[#outside + 1] = c
    end
    i = i + 1
  end
  local numbers = table.concat(outside)
  return numbers:find("%d%.%d") ~= nil or numbers:find("%d[eE]") ~= nil
end

-- A writable stream that collects what is written, for cli.main.
local function buffer()
  local parts = {}
  return {
    write = function(self, ...)
      for i = 1, select("#", ...) do
        parts[#parts + 1] = tostring(select(i, ...))
      end
      return self
    end,
    flush = function(self) return self end,
    text = function() return table.concat(parts) end,
  }
end

describe("cf-moq", function()
  local emu

  -- The environment of a run that reaches the emulator; `extra` adds
  -- variables, and a value of false removes one.
  local function api_env(extra)
    local env = {
      CLOUDFLARE_API_TOKEN = TOKEN,
      CLOUDFLARE_ACCOUNT_ID = ACCOUNT,
      CLOUDFLARE_BASE_URL = emu.url,
      CF_MOQ_PROGRESS = "never",
    }
    for name, value in pairs(extra or {}) do
      env[name] = value or nil
    end
    return env
  end

  local function cf(args, extra)
    return run_cli(args, api_env(extra))
  end

  local function seed(fields)
    fields.account_id = fields.account_id or ACCOUNT
    return emu:seed(fields)
  end

  local function api_requests()
    return #emu:journal()
  end

  -- The decoded body of the last request the emulator received.
  local function last_body()
    local journal = emu:journal()
    return cjson.decode(journal[#journal].body)
  end

  local function assert_no_secret(text, secrets)
    for _, secret in ipairs(secrets) do
      assert.is_nil(text:find(secret, 1, true),
                    "secret found in: " .. text)
    end
  end

  local function assert_error_line(result, status, pattern)
    assert.equals(status, result.status)
    assert.equals("", result.stdout)
    assert.equals(1, count(result.stderr, "\n"))
    assert.matches("^cf%-moq: ", result.stderr)
    assert.matches(pattern, result.stderr)
  end

  setup(function()
    emu = emulator.start {
      tokens = { TOKEN, SCOPED_TOKEN .. "=" .. ACCOUNT },
    }
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  describe("help", function()
    it("top level lists commands and exits", function()
      local result = run_cli({ "--help" }, {})
      assert.equals(0, result.status)
      assert.equals("", result.stderr)
      assert.matches("^Usage: cf%-moq", result.stdout)
      for _, name in ipairs { "list", "get", "create", "update", "delete",
                              "rotate-token", "ensure" } do
        assert.matches("relays " .. name:gsub("%-", "%%-"), result.stdout)
      end
      assert.matches("Exit status:", result.stdout)
      assert.matches("4   relay not found", result.stdout, 1, true)
      assert.matches("CLOUDFLARE_API_TOKEN", result.stdout, 1, true)
      assert.matches("shell history", result.stdout, 1, true)
      assert.matches("--log-level LEVEL", result.stdout, 1, true)
    end)

    it("relays level lists commands", function()
      local result = run_cli({ "relays", "--help" }, {})
      assert.equals(0, result.status)
      assert.matches("rotate-token ID --type", result.stdout, 1, true)
      assert.matches("ensure NAME", result.stdout, 1, true)
    end)

    for _, name in ipairs { "list", "get", "create", "update", "delete",
                            "rotate-token", "ensure" } do
      it("relays " .. name .. " has its own help", function()
        local result = run_cli({ "relays", name, "--help" }, {})
        assert.equals(0, result.status)
        assert.equals("", result.stderr)
        assert.matches("Usage: cf-moq relays " .. name, result.stdout, 1,
                       true)
        assert.matches("cf-moq --help", result.stdout, 1, true)
      end)
    end

    it("update help gives flags and units", function()
      local result = run_cli({ "relays", "update", "--help" }, {})
      local text = result.stdout
      assert.matches("--origin URL", text, 1, true)
      assert.matches("--origin-fallback on|off", text, 1, true)
      assert.matches("--lingering on|off", text, 1, true)
      assert.matches("--lingering-max-ms N", text, 1, true)
      assert.matches("in milliseconds from 0 to 300000", text, 1, true)
      assert.matches('{"origin_fallback": {"enabled": true}}', text, 1,
                     true)
    end)

    it("list help explains --all and units", function()
      local text = run_cli({ "relays", "list", "-h" }, {}).stdout
      assert.matches("--per-page N", text, 1, true)
      assert.matches("RFC 3339", text, 1, true)
      assert.matches("--all", text, 1, true)
    end)

    it("wins over an unknown flag", function()
      local result = run_cli({ "relays", "list", "--bogus", "--help" }, {})
      assert.equals(0, result.status)
      assert.matches("Usage: cf-moq relays list", result.stdout, 1, true)
    end)

    it("prints the version", function()
      local result = run_cli({ "--version" }, {})
      assert.equals(0, result.status)
      assert.equals("cf-moq " .. cloudflare._VERSION .. "\n", result.stdout)
    end)
  end)

  describe("usage error", function()
    local uid = "0123456789abcdef0123456789abcdef"
    local cases = {
      { "no command", {}, "missing command" },
      { "unknown command", { "frobnicate" }, 'unknown command "frobnicate"' },
      { "missing subcommand", { "relays" }, "missing command for" },
      { "unknown subcommand", { "relays", "explode" },
        'unknown command "explode"' },
      { "unknown flag", { "relays", "list", "--bogus" },
        'unknown flag "%-%-bogus"' },
      { "flag of another command", { "relays", "get", uid, "--asc" },
        'unknown flag "%-%-asc"' },
      { "missing ID", { "relays", "get" }, "missing ID" },
      { "missing NAME", { "relays", "create" }, "missing NAME" },
      { "extra argument", { "relays", "get", uid, "extra" },
        'unexpected argument "extra"' },
      { "empty NAME", { "relays", "create", "" }, "NAME must not be empty" },
      { "non-numeric max ms",
        { "relays", "update", uid, "--lingering-max-ms", "abc" },
        'invalid %-%-lingering%-max%-ms "abc"' },
      { "max ms out of range",
        { "relays", "update", uid, "--lingering-max-ms", "300001" },
        "from 0 to 300000" },
      { "bad switch", { "relays", "update", uid, "--lingering", "yes" },
        "expected on or off" },
      { "bad token type",
        { "relays", "rotate-token", uid, "--type", "publish" },
        'invalid %-%-type "publish"' },
      { "missing token type", { "relays", "rotate-token", uid },
        "missing %-%-type" },
      { "zero per page", { "relays", "list", "--per-page", "0" },
        "invalid %-%-per%-page" },
      { "bad time", { "relays", "list", "--created-after", "yesterday" },
        "RFC 3339" },
      { "missing value", { "relays", "list", "--per-page" },
        "needs a value" },
      { "value for a switch", { "relays", "list", "--asc=yes" },
        "takes no value" },
      { "repeated flag",
        { "relays", "update", uid, "--name", "a", "--name", "b" },
        "more than once" },
      { "bad origin URL", { "relays", "update", uid, "--origin", "nope" },
        "absolute URL" },
      { "nothing to update", { "relays", "update", uid },
        "nothing to update" },
      { "bad log level", { "--log-level", "loud", "relays", "list" },
        'invalid %-%-log%-level "loud"' },
      { "bad base URL", { "--base-url", "ftp://x", "relays", "list" },
        "invalid base_url" },
      { "both config modes",
        { "relays", "update", uid, "--origin-fallback", "on",
          "--lingering", "on" },
        "ValidationError: invalid config" },
    }
    for _, case in ipairs(cases) do
      local name, args, pattern = case[1], case[2], case[3]
      it(name .. " exits 2 before any request", function()
        local result = cf(args)
        assert_error_line(result, 2, pattern)
        assert.equals(0, api_requests())
      end)
    end

    it("hides the value of an unknown flag", function()
      local secret = "pasted-secret-0123456789"
      local result = cf { "relays", "list", "--api-token=" .. secret }
      assert_error_line(result, 2, 'unknown flag "%-%-api%-token"')
      assert.matches("environment only", result.stderr, 1, true)
      assert_no_secret(result.stderr, { secret })
    end)

    it("escapes control characters in one line", function()
      local result = cf { "relays", "bad\ncommand\27[2J" }
      assert_error_line(result, 2, 'unknown command "bad\\x0acommand')
      assert.is_nil(result.stderr:find("\27", 1, true))
    end)

    it("shortens a long echoed value", function()
      local result = cf { "relays", "rotate-token", "x", "--type",
                          string.rep("a", 100) }
      assert_error_line(result, 2, 'invalid %-%-type "a+%.%.%."')
      assert.is_nil(result.stderr:find(string.rep("a", 41), 1, true))
    end)

    it("points to the top help for an unknown group", function()
      local result = cf { "frobnicate" }
      assert.matches("run 'cf-moq --help' for usage", result.stderr, 1,
                     true)
    end)

    it("points to the help of the command", function()
      local result = cf { "relays", "list", "--bogus" }
      assert.matches("run 'cf-moq relays list --help' for usage",
                     result.stderr, 1, true)
    end)
  end)

  describe("relays list", function()
    local function seed_three()
      seed { name = "alpha", created = "2026-01-01T00:00:01Z" }
      seed { name = "beta", created = "2026-01-01T00:00:02Z" }
      seed { name = "gamma-long-name", created = "2026-01-01T00:00:03Z" }
    end

    it("prints an aligned table newest first", function()
      seed_three()
      local result = cf { "relays", "list" }
      assert.equals(0, result.status)
      assert.equals("", result.stderr)
      local rows = lines(result.stdout)
      assert.equals(4, #rows)
      assert.matches("^UID%s+NAME%s+CREATED$", rows[1])
      local name_column = rows[1]:find("NAME", 1, true)
      local created_column = rows[1]:find("CREATED", 1, true)
      local names = {}
      for i = 2, 4 do
        names[#names + 1] = rows[i]:sub(name_column):match("^(%S+)")
        assert.equals("2026", rows[i]:sub(created_column, created_column + 3))
      end
      assert.same({ "gamma-long-name", "beta", "alpha" }, names)
    end)

    it("lists oldest first with --asc", function()
      seed_three()
      local rows = lines(cf({ "relays", "list", "--asc" }).stdout)
      assert.matches("alpha", rows[2])
      assert.matches("gamma", rows[4])
    end)

    it("reports more pages on stderr", function()
      seed_three()
      local result = cf { "relays", "list", "--per-page", "2" }
      assert.equals(0, result.status)
      assert.equals(3, #lines(result.stdout))
      assert.equals("cf-moq: showing 2 of 3 relays; pass --all to list " ..
                    "every page\n", result.stderr)
    end)

    it("filters on the creation time", function()
      seed_three()
      local result = cf { "relays", "list", "--created-after",
                          "2026-01-01T00:00:01Z", "--created-before",
                          "2026-01-01T00:00:03Z" }
      local rows = lines(result.stdout)
      assert.equals(2, #rows)
      assert.matches("beta", rows[2])
    end)

    it("prints result and result_info as JSON", function()
      seed_three()
      local result = cf { "relays", "list", "--json" }
      assert.equals(0, result.status)
      local decoded = cjson.decode(result.stdout)
      assert.equals(3, #decoded.result)
      assert.equals("gamma-long-name", decoded.result[1].name)
      assert.equals(3, decoded.result_info.count)
      assert.equals(3, decoded.result_info.total)
      assert.matches('"count":3', result.stdout, 1, true)
      assert.is_false(has_float(result.stdout))
    end)

    it("prints an empty result as []", function()
      local result = cf { "--json", "relays", "list" }
      assert.equals(0, result.status)
      assert.matches('"result":[]', result.stdout, 1, true)
      assert.matches('"count":0', result.stdout, 1, true)
    end)

    it("reports an empty account", function()
      local result = cf { "relays", "list" }
      assert.equals(0, result.status)
      assert.equals("", result.stdout)
      assert.equals("cf-moq: no relays found\n", result.stderr)
    end)

    it("walks every page with --all", function()
      seed { name = "n", count = 7 }
      emu:clear_journal()
      local result = cf { "relays", "list", "--all", "--per-page", "2" }
      assert.equals(0, result.status)
      assert.equals("", result.stderr)
      assert.equals(8, #lines(result.stdout))
      assert.is_true(api_requests() >= 4)
    end)

    it("prints one array with --all --json", function()
      seed { name = "n", count = 7 }
      local result = cf { "relays", "list", "--all", "--per-page", "3",
                          "--json" }
      assert.equals(0, result.status)
      local decoded = cjson.decode(result.stdout)
      assert.equals(7, #decoded)
      local seen = {}
      for _, relay in ipairs(decoded) do
        assert.is_nil(seen[relay.uid])
        seen[relay.uid] = true
      end
    end)

    it("prints [] for no relays with --all --json", function()
      local result = cf { "relays", "list", "--all", "--json" }
      assert.equals(0, result.status)
      assert.equals("[]\n", result.stdout)
    end)

    it("shows progress when forced on", function()
      seed { name = "n", count = 5 }
      local result = cf({ "relays", "list", "--all", "--per-page", "2" },
                        { CF_MOQ_PROGRESS = "always" })
      assert.equals(0, result.status)
      local err = result.stderr
      assert.matches("\rcf-moq: fetched 2 of 5 relays", err, 1, true)
      assert.matches("\rcf-moq: fetched 5 of 5 relays", err, 1, true)
      assert.is_true(count(err, "\r") >= 4)
      -- Cleared at the end: spaces over the line, then \r.
      assert.matches("\r +\r$", err)
      assert.is_nil(result.stdout:find("\r", 1, true))
      assert.equals(6, #lines(result.stdout))
    end)

    it("shows no progress when stderr is not a tty", function()
      seed { name = "n", count = 5 }
      local result = cf({ "relays", "list", "--all", "--per-page", "2" },
                        { CF_MOQ_PROGRESS = false })
      assert.equals(0, result.status)
      assert.equals("", result.stderr)
    end)

    it("rejects an invalid CF_MOQ_PROGRESS", function()
      local result = cf({ "relays", "list" },
                        { CF_MOQ_PROGRESS = "sometimes" })
      assert_error_line(result, 3, 'invalid CF_MOQ_PROGRESS "sometimes"')
    end)

    it("takes the account from --account-id", function()
      seed { name = "elsewhere", account_id = OTHER_ACCOUNT }
      local result = cf { "relays", "list", "--account-id", OTHER_ACCOUNT }
      assert.equals(0, result.status)
      assert.matches("elsewhere", result.stdout, 1, true)
    end)

    it("takes the base URL from --base-url", function()
      seed { name = "flagged" }
      local result = cf({ "relays", "list", "--base-url", emu.url },
                        { CLOUDFLARE_BASE_URL = false })
      assert.equals(0, result.status)
      assert.matches("flagged", result.stdout, 1, true)
    end)
  end)

  describe("relays get", function()
    local function seed_configured()
      return seed {
        name = "configured",
        status = "connected",
        config = {
          lingering_subscribe = { enabled = false, max_timeout_ms = 1500 },
          origin_fallback = {
            enabled = true,
            origins = { { url = "https://a.example/moq" },
                        { url = "https://b.example/moq" } },
          },
        },
      }
    end

    it("prints fields with config and status", function()
      local relay = seed_configured()
      local result = cf { "relays", "get", relay.uid }
      assert.equals(0, result.status)
      assert.equals("", result.stderr)
      local text = result.stdout
      assert.equals(relay.uid, field(text, "uid"))
      assert.equals("configured", field(text, "name"))
      assert.equals("connected", field(text, "status"))
      assert.equals("false", field(text, "config.lingering_subscribe.enabled"))
      assert.equals("1500",
                    field(text, "config.lingering_subscribe.max_timeout_ms"))
      assert.equals("true", field(text, "config.origin_fallback.enabled"))
      assert.equals("https://a.example/moq",
                    field(text, "config.origin_fallback.origins[1].url"))
      assert.equals("https://b.example/moq",
                    field(text, "config.origin_fallback.origins[2].url"))
      assert.is_nil(text:find("token", 1, true))
    end)

    it("aligns the values in one column", function()
      local relay = seed_configured()
      local rows = lines(cf({ "relays", "get", relay.uid }).stdout)
      local column = rows[1]:find(relay.uid, 1, true)
      for _, row in ipairs(rows) do
        assert.matches("^%S+%s+%S", row)
        assert.equals(" ", row:sub(column - 1, column - 1))
        assert.matches("^%S", row:sub(column))
      end
    end)

    it("shows an absent status as (none)", function()
      local relay = seed { name = "idle" }
      local result = cf { "relays", "get", relay.uid }
      assert.equals("(none)", field(result.stdout, "status"))
      assert.equals("(none)",
                    field(result.stdout, "config.origin_fallback.origins"))
    end)

    it("prints the relay as JSON", function()
      local relay = seed_configured()
      local result = cf { "relays", "get", relay.uid, "--json" }
      assert.equals(0, result.status)
      local decoded = cjson.decode(result.stdout)
      assert.equals(relay.uid, decoded.uid)
      assert.equals("connected", decoded.status)
      assert.equals("https://b.example/moq",
                    decoded.config.origin_fallback.origins[2].url)
      assert.matches('"max_timeout_ms":1500', result.stdout, 1, true)
      assert.is_false(has_float(result.stdout))
    end)

    it("escapes control characters from the API", function()
      local relay = seed { name = "evil\27[2Jname" }
      local result = cf { "relays", "get", relay.uid }
      assert.is_nil(result.stdout:find("\27", 1, true))
      assert.equals("evil\\x1b[2Jname", field(result.stdout, "name"))
    end)

    it("exits 4 for an unknown relay", function()
      local result = cf { "relays", "get", UNKNOWN_UID }
      assert_error_line(result, 4, "^cf%-moq: NotFoundError: HTTP 404")
    end)
  end)

  describe("relays create", function()
    it("prints both tokens in full", function()
      local result = cf { "relays", "create", "Live" }
      assert.equals(0, result.status)
      local uid = field(result.stdout, "uid")
      local stored = assert(emu:relay(uid))
      assert.equals("Live", stored.name)
      assert.equals(stored.token_publish_subscribe,
                    field(result.stdout, "token_publish_subscribe"))
      assert.equals(stored.token_subscribe,
                    field(result.stdout, "token_subscribe"))
      assert.matches("only in this response", result.stderr, 1, true)
      assert_no_secret(result.stderr, { stored.token_publish_subscribe,
                                        stored.token_subscribe, TOKEN })
    end)

    it("prints the created relay as JSON", function()
      local result = cf { "relays", "create", "Live", "--json" }
      assert.equals(0, result.status)
      local decoded = cjson.decode(result.stdout)
      local stored = assert(emu:relay(decoded.uid))
      assert.equals(stored.token_publish_subscribe,
                    decoded.token_publish_subscribe)
      assert.equals(stored.token_subscribe, decoded.token_subscribe)
      assert.matches('"max_timeout_ms":30000', result.stdout, 1, true)
      assert.matches('"origins":[]', result.stdout, 1, true)
    end)

    it("takes a name starting with a dash after --", function()
      local result = cf { "relays", "create", "--", "-dash" }
      assert.equals(0, result.status)
      assert.equals("-dash", field(result.stdout, "name"))
    end)

    it("keeps tokens out of debug logs", function()
      local result = cf { "relays", "create", "Logged", "--log-level",
                          "debug" }
      assert.equals(0, result.status)
      local stored = assert(emu:relay(field(result.stdout, "uid")))
      assert.matches("cf-moq: debug: POST", result.stderr, 1, true)
      assert_no_secret(result.stderr, { TOKEN,
                                        stored.token_publish_subscribe,
                                        stored.token_subscribe })
    end)
  end)

  describe("relays update", function()
    it("builds ordered origins from repeated --origin", function()
      local relay = seed { name = "edge" }
      local result = cf { "relays", "update", relay.uid, "--lingering",
                          "off", "--origin-fallback", "on", "--origin",
                          "https://c.example/moq", "--origin",
                          "https://a.example/moq", "--origin",
                          "https://b.example/moq" }
      assert.equals(0, result.status)
      local origins = last_body().config.origin_fallback.origins
      assert.same({ { url = "https://c.example/moq" },
                    { url = "https://a.example/moq" },
                    { url = "https://b.example/moq" } }, origins)
      local stored = assert(emu:relay(relay.uid))
      assert.same(origins, stored.config.origin_fallback.origins)
      assert.equals("https://a.example/moq",
        field(result.stdout, "config.origin_fallback.origins[2].url"))
      assert.is_nil(result.stdout:find("token", 1, true))
    end)

    it("sends only the sub-objects given", function()
      local relay = seed { name = "edge" }
      local result = cf { "relays", "update", relay.uid, "--lingering",
                          "on", "--lingering-max-ms", "5000" }
      assert.equals(0, result.status)
      assert.same({ config = { lingering_subscribe = {
        enabled = true, max_timeout_ms = 5000 } } }, last_body())
      assert.equals("5000",
        field(result.stdout, "config.lingering_subscribe.max_timeout_ms"))
    end)

    it("renames a relay", function()
      local relay = seed { name = "old" }
      local result = cf { "relays", "update", relay.uid, "--name", "new" }
      assert.equals(0, result.status)
      assert.same({ name = "new" }, last_body())
      assert.equals("new", emu:relay(relay.uid).name)
    end)

    it("prints the updated relay as JSON", function()
      local relay = seed { name = "edge" }
      local result = cf { "relays", "update", relay.uid, "--json",
                          "--lingering-max-ms=1200" }
      assert.equals(0, result.status)
      local decoded = cjson.decode(result.stdout)
      assert.equals(relay.uid, decoded.uid)
      assert.matches('"max_timeout_ms":1200', result.stdout, 1, true)
      assert.is_false(has_float(result.stdout))
    end)

    it("exits 5 when the API rejects the config", function()
      local relay = seed { name = "edge" }
      local result = cf { "relays", "update", relay.uid,
                          "--origin-fallback", "on" }
      assert_error_line(result, 5, "BadRequestError: HTTP 400")
    end)

    it("exits 4 for an unknown relay", function()
      local result = cf { "relays", "update", UNKNOWN_UID, "--name", "x" }
      assert_error_line(result, 4, "NotFoundError")
    end)
  end)

  describe("relays delete", function()
    it("deletes and confirms", function()
      local relay = seed { name = "doomed" }
      local result = cf { "relays", "delete", relay.uid }
      assert.equals(0, result.status)
      assert.equals("Deleted relay " .. relay.uid .. "\n", result.stdout)
      assert.is_true(emu:relay(relay.uid).deleted)
    end)

    it("prints JSON", function()
      local relay = seed { name = "doomed" }
      local result = cf { "relays", "delete", relay.uid, "--json" }
      assert.equals(0, result.status)
      assert.same({ deleted = true, uid = relay.uid },
                  cjson.decode(result.stdout))
    end)

    it("exits 4 for an unknown relay", function()
      local result = cf { "relays", "delete", UNKNOWN_UID }
      assert_error_line(result, 4, "NotFoundError")
    end)
  end)

  describe("relays rotate-token", function()
    it("prints the new token in full", function()
      local relay = seed { name = "rotating" }
      local result = cf { "relays", "rotate-token", relay.uid, "--type",
                          "subscribe" }
      assert.equals(0, result.status)
      local stored = emu:relay(relay.uid)
      assert.are_not.equal(relay.token_subscribe, stored.token_subscribe)
      assert.equals("subscribe", field(result.stdout, "type"))
      assert.equals(stored.token_subscribe, field(result.stdout, "token"))
      assert.matches("only in this response", result.stderr, 1, true)
      assert_no_secret(result.stderr, { stored.token_subscribe })
    end)

    it("prints the token as JSON", function()
      local relay = seed { name = "rotating" }
      local result = cf { "relays", "rotate-token", relay.uid, "--type",
                          "publish_subscribe", "--json" }
      assert.equals(0, result.status)
      local stored = emu:relay(relay.uid)
      assert.same({ token = stored.token_publish_subscribe,
                    type = "publish_subscribe" },
                  cjson.decode(result.stdout))
    end)

    it("exits 4 for an unknown relay", function()
      local result = cf { "relays", "rotate-token", UNKNOWN_UID, "--type",
                          "subscribe" }
      assert_error_line(result, 4, "NotFoundError")
    end)
  end)

  describe("relays ensure", function()
    it("creates a relay and prints its tokens", function()
      local result = cf { "relays", "ensure", "fresh", "--lingering",
                          "off" }
      assert.equals(0, result.status)
      assert.equals("created", field(result.stdout, "action"))
      local stored = assert(emu:relay(field(result.stdout, "uid")))
      assert.is_false(stored.config.lingering_subscribe.enabled)
      assert.equals(stored.token_publish_subscribe,
                    field(result.stdout, "token_publish_subscribe"))
      assert.equals(stored.token_subscribe,
                    field(result.stdout, "token_subscribe"))
      assert.matches("only in this response", result.stderr, 1, true)
    end)

    it("leaves a matching relay unchanged", function()
      seed { name = "steady" }
      local result = cf { "relays", "ensure", "steady" }
      assert.equals(0, result.status)
      assert.equals("unchanged", field(result.stdout, "action"))
      assert.is_nil(result.stdout:find("token", 1, true))
      assert.equals("", result.stderr)
    end)

    it("updates a differing config without tokens", function()
      local relay = seed { name = "drifted" }
      local result = cf { "relays", "ensure", "drifted", "--lingering",
                          "on", "--lingering-max-ms", "1000" }
      assert.equals(0, result.status)
      assert.equals("updated", field(result.stdout, "action"))
      assert.equals(relay.uid, field(result.stdout, "uid"))
      assert.same({ enabled = true, max_timeout_ms = 1000 },
                  emu:relay(relay.uid).config.lingering_subscribe)
      assert.is_nil(result.stdout:find("token", 1, true))
    end)

    it("prints the action and relay as JSON", function()
      local created = cf { "relays", "ensure", "fresh", "--json" }
      assert.equals(0, created.status)
      local decoded = cjson.decode(created.stdout)
      assert.equals("created", decoded.action)
      local stored = emu:relay(decoded.relay.uid)
      assert.equals(stored.token_subscribe, decoded.relay.token_subscribe)

      local again = cf { "relays", "ensure", "fresh", "--json" }
      decoded = cjson.decode(again.stdout)
      assert.equals("unchanged", decoded.action)
      assert.is_nil(decoded.relay.token_subscribe)
      assert.is_false(has_float(again.stdout))
    end)

    it("prints tokens when the update fails", function()
      -- A new relay has lingering subscribe on, so the API rejects
      -- enabling origin fallback alone, after the create.
      local result = cf { "relays", "ensure", "half", "--origin-fallback",
                          "on" }
      assert.equals(5, result.status)
      assert.equals("created", field(result.stdout, "action"))
      local stored = assert(emu:relay(field(result.stdout, "uid")))
      assert.equals(stored.token_subscribe,
                    field(result.stdout, "token_subscribe"))
      assert.matches("BadRequestError: HTTP 400", result.stderr, 1, true)
    end)

    it("exits 5 for two relays with the name", function()
      seed { name = "twin" }
      seed { name = "twin" }
      local result = cf { "relays", "ensure", "twin" }
      assert_error_line(result, 5, "ConflictError: 2 relays are named")
    end)
  end)

  describe("exit status", function()
    it("is 3 without credentials", function()
      local result = cf({ "relays", "list" },
                        { CLOUDFLARE_API_TOKEN = false })
      assert_error_line(result, 3, "missing credentials")
      assert.equals(0, api_requests())
    end)

    it("is 3 without an account id", function()
      local result = cf({ "relays", "list" },
                        { CLOUDFLARE_ACCOUNT_ID = false })
      assert_error_line(result, 3, "missing account id")
    end)

    it("is 3 for a rejected token", function()
      local secret = "rejected-token-0123456789"
      local result = cf({ "relays", "list" },
                        { CLOUDFLARE_API_TOKEN = secret })
      assert_error_line(result, 3, "AuthenticationError: HTTP 401")
      assert_no_secret(result.stderr, { secret })
    end)

    it("is 3 when permission is denied", function()
      local result = cf({ "relays", "list", "--account-id", OTHER_ACCOUNT },
                        { CLOUDFLARE_API_TOKEN = SCOPED_TOKEN })
      assert_error_line(result, 3, "PermissionDeniedError: HTTP 403")
      assert_no_secret(result.stderr, { SCOPED_TOKEN })
    end)

    it("is 3 for an invalid CLOUDFLARE_BASE_URL", function()
      local result = cf({ "relays", "list" },
                        { CLOUDFLARE_BASE_URL = "ftp://x" })
      assert_error_line(result, 3, "invalid base_url")
    end)

    it("is 3 for an invalid CLOUDFLARE_LOG", function()
      local result = cf({ "relays", "list" }, { CLOUDFLARE_LOG = "loud" })
      assert_error_line(result, 3, 'invalid CLOUDFLARE_LOG "loud"')
    end)

    it("is 1 when stdout cannot be written", function()
      local result = run_cli({ "--version" }, {}, "/dev/full")
      assert.equals(1, result.status)
      assert.matches("^cf%-moq: writing the output failed: ", result.stderr)
    end)

    it("is 5 for a server error", function()
      emu:faults("create", { { status = 500, body = "upstream failed" } })
      local result = cf { "relays", "create", "x" }
      assert_error_line(result, 5, "InternalServerError: HTTP 500")
    end)

    it("is 5 when the connection drops", function()
      emu:faults("create", { { drop = "before_headers" } })
      local result = cf { "relays", "create", "x" }
      assert_error_line(result, 5, "APIConnectionError")
    end)
  end)

  describe("main in-process", function()
    local function env_table(extra)
      local env = api_env(extra)
      return function(name) return env[name] end
    end

    it("writes to the given streams", function()
      seed { name = "inside" }
      local stdout, stderr = buffer(), buffer()
      local status = cli.main({ "relays", "list", "--json" }, env_table(),
                              { stdout = stdout, stderr = stderr })
      assert.equals(0, status)
      assert.equals("", stderr.text())
      assert.equals("inside", cjson.decode(stdout.text()).result[1].name)
    end)

    it("shows progress in auto mode on a tty", function()
      seed { name = "n", count = 3 }
      local stdout, stderr = buffer(), buffer()
      local status = cli.main({ "relays", "list", "--all" },
                              env_table { CF_MOQ_PROGRESS = false },
                              { stdout = stdout, stderr = stderr,
                                stderr_is_tty = true })
      assert.equals(0, status)
      assert.matches("\rcf-moq: fetched 3 of 3 relays", stderr.text(), 1,
                     true)
    end)

    it("exits 1 on an unexpected failure", function()
      local stderr = buffer()
      local broken = {
        write = function() error("stdout is closed") end,
        flush = function() end,
      }
      local status = cli.main({ "--version" }, {},
                              { stdout = broken, stderr = stderr })
      assert.equals(1, status)
      assert.matches("^cf%-moq: unexpected error: .*stdout is closed\n$",
                     stderr.text())
    end)
  end)
end)
