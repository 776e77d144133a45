-- busted helper for the sanitizer run (scripts/sanitize.sh).
--
-- The busted process runs with the ASan and UBSan runtimes in LD_PRELOAD,
-- and every process it starts would inherit them. Programs that leak at
-- exit, such as gcc, would then write leak reports that fail the run, and
-- curl 7.88 hangs in setlocale under a preloaded ASan (seen on Debian 12,
-- and the emulator calls curl). So commands run through io.popen and
-- os.execute start without LD_PRELOAD. A child lua5.4 still runs
-- sanitized, because sanitize.sh puts a lua5.4 wrapper that restores the
-- preload first on PATH.

local function shell_quote(text)
  return "'" .. text:gsub("'", "'\\''") .. "'"
end

local function without_preload(command)
  return "env -u LD_PRELOAD /bin/sh -c " .. shell_quote(command)
end

local popen = io.popen
local execute = os.execute

io.popen = function(command, ...)
  return popen(without_preload(command), ...)
end

os.execute = function(command)
  if command == nil then
    return execute()
  end
  return execute(without_preload(command))
end

-- Stop before any test when busted would load a core other than the
-- sanitizer build, which would check nothing.
local expected = os.getenv("SANITIZER_CORE")
local found = package.searchpath("cloudflare.core", package.cpath)
if expected and found ~= expected then
  error(string.format("cloudflare.core resolves to %s, expected %s",
    tostring(found), expected))
end
