-- luacheck configuration: `make lint` (scripts/lint.sh) checks lua/,
-- spec/, examples/, emulator/ and the Lua scripts in bin/ and scripts/.
std = "lua54"
max_line_length = 80

-- Specs run under busted, which defines describe, it, assert and the rest.
files["spec/"] = {
  std = "+busted",
}

-- The emulator runs inside nginx's Lua module: LuaJIT 2.1 with the ngx API.
files["emulator/"] = {
  std = "ngx_lua",
}

-- The sanitizer run replaces these two to start children without
-- LD_PRELOAD.
files["scripts/sanitizer-helper.lua"] = {
  globals = { "io.popen", "os.execute" },
}
