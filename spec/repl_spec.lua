-- bin/cf-repl: the prompt driven through a pipe against the emulator,
-- and the formatting and compiling functions of cloudflare.repl.

local emulator = require "spec.support.emulator"
local repl = require "cloudflare.repl"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  pipe:close()
  return output
end

local function write_file(path, text)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
end

-- Run bin/cf-repl with `lines` on its standard input and the emulator's
-- URL in CLOUDFLARE_BASE_URL. Returns the output (stdout and stderr)
-- and the exit status. `env` overrides variables, and a false value
-- unsets one. `arguments` is a string added to the command line.
local function run_repl(emu, lines, env, arguments)
  -- The prompt loads the same library and core as this process: the
  -- sanitizer run points package.cpath at its own build of the core.
  local settings = {
    CLOUDFLARE_BASE_URL = emu.url,
    CLOUDFLARE_API_TOKEN = "local-dev-token",
    CLOUDFLARE_ACCOUNT_ID = ACCOUNT,
    LUA_PATH = package.path,
    LUA_CPATH = package.cpath,
  }
  for name, value in pairs(env or {}) do
    settings[name] = value
  end
  local words = { "env", "-u", "CLOUDFLARE_API_KEY", "-u",
                  "CLOUDFLARE_EMAIL", "-u", "CLOUDFLARE_LOG", "-u",
                  "LUA_INIT", "-u", "LUA_INIT_5_4", "-u", "LUA_PATH_5_4",
                  "-u", "LUA_CPATH_5_4" }
  -- env takes every -u option before the first assignment.
  local assignments = {}
  for name, value in pairs(settings) do
    if value == false then
      words[#words + 1] = "-u " .. name
    else
      assignments[#assignments + 1] = name .. "=" .. shell_quote(value)
    end
  end
  table.move(assignments, 1, #assignments, #words + 1, words)

  local input = os.tmpname()
  write_file(input, table.concat(lines, "\n") .. "\n")
  local command = table.concat(words, " ") ..
    " lua5.4 bin/cf-repl " .. (arguments or "") .. " <" ..
    shell_quote(input) ..
    " 2>&1; echo \"exit status: $?\""
  local output = capture(command)
  os.remove(input)

  local status = tonumber(output:match("exit status: (%d+)\n$"))
  return output:gsub("exit status: %d+\n$", ""), status
end

-- The lines of `text` that start with `prefix`.
local function lines_starting(text, prefix)
  local found = {}
  for line in text:gmatch("[^\n]*") do
    if line:sub(1, #prefix) == prefix then
      found[#found + 1] = line
    end
  end
  return found
end

local function contains(text, needle)
  return text:find(needle, 1, true) ~= nil
end

describe("cf-repl", function()
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

  it("prints the banner", function()
    local output, status = run_repl(emu, {})
    assert.equal(0, status)
    assert.is_true(contains(output, "API at " .. emu.url .. "\n"), output)
    assert.is_true(contains(output,
      "Ready: cf (a client), relays (cf.moq.relays), cloudflare"), output)
    assert.is_true(contains(output, "help() lists the methods"), output)
    assert.is_true(contains(output, "Quit with Ctrl-D or os.exit()"),
                   output)
    assert.is_false(contains(output, "No credentials"), output)
  end)

  it("warns about missing credentials", function()
    local output, status = run_repl(emu, {},
      { CLOUDFLARE_API_TOKEN = false, CLOUDFLARE_ACCOUNT_ID = false })
    assert.equal(0, status)
    assert.is_true(contains(output, "No credentials: set " ..
                            "CLOUDFLARE_API_TOKEN"), output)
    assert.is_true(contains(output, "No account id: set " ..
                            "CLOUDFLARE_ACCOUNT_ID"), output)
  end)

  it("prints an expression result", function()
    local output = run_repl(emu, { "1 + 2", "=2 * 3, 'six'",
                                   "string.rep('ab', 2)" })
    assert.is_true(contains(output, "cf> 3\n"), output)
    assert.is_true(contains(output, "cf> 6\tsix\n"), output)
    assert.is_true(contains(output, "cf> abab\n"), output)
  end)

  it("runs a multi-line function definition", function()
    local output = run_repl(emu, {
      "function double(n)",
      "  return n * 2",
      "end",
      "double(21)",
    })
    assert.is_true(contains(output, "cf> >> >> cf> 42\n"), output)
  end)

  it("prints an expression spread over lines", function()
    local output = run_repl(emu, { "math.max(", "  4,", "  9)" })
    assert.is_true(contains(output, "cf> >> >> 9\n"), output)
  end)

  it("hides the tokens of a created relay", function()
    local output = run_repl(emu, {
      "relay = relays:create { name = 'repl relay' }",
      "relay",
      "relay.token_subscribe",
      "print(relay.token_publish_subscribe)",
      "{ token = relay.token_subscribe, name = relay.name }",
    })
    local uid = output:match("uid=(%x+) name=\"repl relay\"")
    assert.is_truthy(uid, output)
    local stored = assert(emu:relay(uid))

    assert.is_false(contains(output, stored.token_publish_subscribe),
                    output)
    assert.is_false(contains(output, stored.token_subscribe), output)
    assert.is_false(contains(output, "local-dev-token"), output)
    assert.is_true(contains(output, "cf> cloudflare.CreatedRelay uid=" ..
                            uid), output)
    assert.is_truthy(output:find("token_subscribe=<hidden, %d+ characters>"),
                     output)
    assert.is_truthy(output:find(
      "token_publish_subscribe=<hidden, %d+ characters>"), output)
    assert.is_true(contains(output, "cf> [REDACTED]\ncf> [REDACTED]\n"),
                   output)
    assert.is_truthy(output:find(
      "{ name = \"repl relay\", token = <hidden, %d+ characters> }"),
      output)
  end)

  it("lists relays", function()
    emu:seed { account_id = ACCOUNT, name = "listed",
               created = "2026-01-02T03:04:05Z", count = 2 }
    local output = run_repl(emu, {
      "relays:list { asc = true }",
      "relays:all { asc = true }",
    })
    assert.is_true(contains(output,
      "cf> cloudflare.RelayPage (relays: 2, count=2, total=2"), output)
    assert.is_truthy(output:find(
      "\n  %[1%] cloudflare.RelaySummary uid=%x+ name=\"listed%-1\""),
      output)
    assert.is_truthy(output:find(
      "\n  %[2%] cloudflare.RelaySummary uid=%x+ name=\"listed%-2\""),
      output)
    assert.is_truthy(output:find(
      "cf> {\n  cloudflare.RelaySummary uid=%x+ name=\"listed%-1\""),
      output)
  end)

  it("prints errors in one line", function()
    local output, status = run_repl(emu, {
      "relays:get('0123456789abcdef0123456789abcdef')",
      "assert(relays:get('0123456789abcdef0123456789abcdef'))",
      "error('first\\nsecond')",
      "x = = 1",
      "error({ code = 7 })",
      "'still running'",
    })
    assert.equal(0, status)
    assert.is_true(contains(output, "cf> nil\tNotFoundError: HTTP 404"),
                   output)

    local errors = lines_starting(output:gsub("cf> ", ""), "error: ")
    assert.equal(4, #errors, output)
    assert.is_truthy(errors[1]:find("^error: NotFoundError: HTTP 404"))
    assert.equal("error: stdin:1: first second", errors[2])
    assert.is_truthy(errors[3]:find("^error: stdin:1: unexpected symbol"))
    assert.equal("error: { code = 7 }", errors[4])
    assert.is_true(contains(output, "cf> still running\n"), output)
  end)

  it("prints help", function()
    local output = run_repl(emu, { "help()" })
    for _, method in ipairs { "relays:list", "relays:get", "relays:create",
        "relays:update", "relays:delete", "relays.tokens:rotate",
        "relays:each", "relays:pages", "relays:all", "relays:find_by_name",
        "relays:ensure", "page:next_page", "cf:rate_limit_status",
        "cf:close", "cloudflare.time.parse", "cloudflare.time.format",
        "cloudflare.mask", "cloudflare.errors.is" } do
      assert.is_true(contains(output, method), method)
    end
  end)

  it("exits 0 at end of input", function()
    local output, status = run_repl(emu, { "1" })
    assert.equal(0, status)
    assert.is_truthy(output:find("cf> 1\ncf> \n$"), output)
  end)

  it("reports an unfinished chunk at end of input", function()
    local output, status = run_repl(emu, { "function f()" })
    assert.equal(0, status)
    assert.is_truthy(output:find("\nerror: stdin:1: 'end' expected near " ..
                                 "<eof>\n"), output)
  end)

  it("exits with the status given to os.exit", function()
    local output, status = run_repl(emu, { "os.exit(3)", "'not reached'" })
    assert.equal(3, status)
    assert.is_false(contains(output, "not reached"), output)
  end)

  it("rejects an argument", function()
    local output, status = run_repl(emu, {}, nil, "--verbose")
    assert.equal(2, status)
    assert.is_true(contains(output, 'unexpected argument "--verbose"'),
                   output)
  end)

  it("loads the library of its clone", function()
    local root = capture("pwd"):gsub("\n$", "")
    local output = capture("cd / && printf '%s\\n' " ..
      shell_quote("package.searchpath('cloudflare', package.path)") ..
      " | env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4" ..
      " CLOUDFLARE_BASE_URL=" .. shell_quote(emu.url) ..
      " lua5.4 " .. shell_quote(root .. "/bin/cf-repl") .. " 2>&1")
    assert.is_true(contains(output, "cf> " .. root ..
                            "/bin/../lua/cloudflare/init.lua\n"), output)
  end)

  it("prints usage for --help", function()
    local output, status = run_repl(emu, {}, nil, "--help")
    assert.equal(0, status)
    assert.is_truthy(output:find("^Usage: cf%-repl\n"), output)
  end)
end)

describe("repl.format", function()
  it("shows a string as it is", function()
    assert.equal("a\nb", repl.format("a\nb"))
  end)

  it("shows a table as a constructor", function()
    assert.equal('{ 1, 2, "x\\ny", flag = true, n = 3 }',
                 repl.format { 1, 2, "x\ny", n = 3, flag = true })
  end)

  it("masks token fields", function()
    local token = string.rep("s", 43)
    local text = repl.format {
      token = token,
      token_subscribe = token,
      nested = { token_publish_subscribe = token },
    }
    assert.is_false(contains(text, token), text)
    assert.equal(3, select(2, text:gsub("<hidden, 43 characters>", "")),
                 text)
  end)

  it("labels a table with its metatable name", function()
    local value = setmetatable({ enabled = true },
                               { __name = "cloudflare.Example" })
    assert.equal("cloudflare.Example { enabled = true }", repl.format(value))
  end)

  it("quotes keys that are not names", function()
    assert.equal('{ [1.5] = 3, ["a b"] = 1, ["end"] = 2 }',
                 repl.format { ["a b"] = 1, ["end"] = 2, [1.5] = 3 })
  end)

  it("marks a cycle", function()
    local t = { name = "loop" }
    t.self = t
    assert.equal('{ name = "loop", self = {<cycle>} }', repl.format(t))
  end)

  it("breaks a long table into lines", function()
    local t = {}
    for i = 1, 30 do
      t[i] = "item " .. i
    end
    local text = repl.format(t)
    local count = 0
    for line in text:gmatch("[^\n]+") do
      count = count + 1
      assert.is_true(#line <= 78, line)
    end
    assert.equal(32, count)
  end)

  it("counts entries past the limit", function()
    local t = {}
    for i = 1, 150 do
      t[i] = i
    end
    assert.is_truthy(repl.format(t):find("... (50 more)", 1, true))
  end)

  it("lists the items of a sequence with __tostring", function()
    local item = setmetatable({}, { __tostring = function() return "it" end })
    local page = setmetatable({ item, item },
                              { __tostring = function() return "page" end })
    assert.equal("page\n  [1] it\n  [2] it", repl.format(page))
  end)
end)

describe("repl.format_error", function()
  it("joins lines", function()
    assert.equal("a b", repl.format_error("a\n  b"))
  end)

  it("explains an interrupt", function()
    assert.equal("interrupted; a second Ctrl-C ends the prompt",
                 repl.format_error("bin/cf-repl:1: interrupted!"))
  end)
end)

describe("repl.compile", function()
  it("prefers an expression", function()
    local fn = repl.compile("1 + 1", {})
    assert.equal(2, fn())
  end)

  it("reads = as return", function()
    local fn = repl.compile("=40 + 2", {})
    assert.equal(42, fn())
  end)

  it("compiles a statement", function()
    local env = {}
    local fn = repl.compile("x = 5", env)
    fn()
    assert.equal(5, env.x)
  end)

  it("reports an incomplete chunk", function()
    local fn, incomplete, err = repl.compile("function f()", {})
    assert.is_nil(fn)
    assert.is_true(incomplete)
    assert.is_truthy(err:find("<eof>$"))
  end)

  it("reports a syntax error", function()
    local fn, incomplete, err = repl.compile("x = = 1", {})
    assert.is_nil(fn)
    assert.is_false(incomplete)
    assert.is_truthy(err:find("unexpected symbol", 1, true))
  end)
end)
