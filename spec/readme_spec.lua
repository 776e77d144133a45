-- Every ```lua block of README.md runs green against the emulator.
--
-- Each block runs in a child lua5.4 whose CLOUDFLARE_* variables point
-- at the emulator, so `cloudflare.new()` needs no options. Before each
-- block the emulator is reset and seeded with the relays camera-1 to
-- camera-3. A block whose first line is "-- typed at the cf> prompt" is
-- fed to bin/cf-repl instead, and must print no error. Blocks that must
-- not run, such as shell commands, are ```sh.

local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
local REPL_MARKER = "-- typed at the cf> prompt"
-- Seconds one block may run.
local BLOCK_TIMEOUT = 60

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("a")
  file:close()
  return text
end

local function write_file(path, text)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
end

local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  pipe:close()
  return output
end

-- The ```lua blocks of a Markdown text, each with its first line number
-- and the heading above it.
local function lua_blocks(markdown)
  local blocks, heading = {}, "top"
  -- The fenced block being read: its language and, for lua, its lines.
  local fence
  local number = 0
  for line in (markdown .. "\n"):gmatch("([^\n]*)\n") do
    number = number + 1
    if fence then
      if line:match("^```%s*$") then
        if fence.language == "lua" then
          blocks[#blocks + 1] = fence
        end
        fence = nil
      else
        fence.lines[#fence.lines + 1] = line
      end
    elseif line:match("^```") then
      fence = { language = line:match("^```%s*(%w*)"), line = number + 1,
                heading = heading, lines = {} }
    elseif line:match("^#+ ") then
      heading = line:gsub("^#+ ", "")
    end
  end
  assert(fence == nil, "README.md: unterminated ``` block")
  return blocks
end

-- Run `command` with the emulator's environment. Returns the output
-- (stdout and stderr) and the exit status.
local function run(emu, command)
  local env = table.concat({
    "env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT -u LUA_INIT_5_4",
    "-u CLOUDFLARE_API_KEY -u CLOUDFLARE_EMAIL -u CLOUDFLARE_LOG",
    "CLOUDFLARE_BASE_URL=" .. shell_quote(emu.url),
    "CLOUDFLARE_API_TOKEN=local-dev-token",
    "CLOUDFLARE_ACCOUNT_ID=" .. ACCOUNT,
    -- The same library and core as this process: the sanitizer run
    -- points package.cpath at its own build of the core.
    "LUA_PATH=" .. shell_quote(package.path),
    "LUA_CPATH=" .. shell_quote(package.cpath),
    "timeout", tostring(BLOCK_TIMEOUT),
  }, " ")
  local output = capture(env .. " " .. command ..
                         " 2>&1; echo \"exit status: $?\"")
  local status = tonumber(output:match("exit status: (%d+)\n$"))
  return output:gsub("exit status: %d+\n$", ""), status
end

local blocks = lua_blocks(read_file("README.md"))

describe("README", function()
  local emu

  setup(function()
    emu = emulator.start()
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
    emu:seed { account_id = ACCOUNT, name = "camera", count = 3 }
  end)

  it("has lua examples", function()
    assert.is_true(#blocks > 0)
  end)

  for _, block in ipairs(blocks) do
    local code = table.concat(block.lines, "\n") .. "\n"
    local in_repl = block.lines[1] == REPL_MARKER
    local name = string.format("example at line %d (%s) runs",
                               block.line, block.heading)

    it(name, function()
      local file = os.tmpname()
      write_file(file, code)
      local output, status
      if in_repl then
        output, status = run(emu, "lua5.4 bin/cf-repl <" ..
                                        shell_quote(file))
      else
        output, status = run(emu, "lua5.4 " .. shell_quote(file))
      end
      os.remove(file)

      local message = "README.md line " .. block.line .. ":\n" .. output
      assert.equal(0, status, message)
      if in_repl then
        local errors = output:gsub("cf> ", ""):match("\nerror: [^\n]*")
        assert.is_nil(errors, message)
      end
    end)
  end
end)
