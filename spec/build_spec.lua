-- The rockspec and the built core agree with the sources: the rockspec
-- lists every C source and Lua module, and the core exports only its
-- luaopen_ function. Runs from the repository root, as busted does.

local lfs = require "lfs"

local ROCKSPEC = "rockspec/lua-cloudflare-scm-1.rockspec"

-- Returns the names in `directory` that end with `suffix`, sorted.
local function list_files(directory, suffix)
  local names = {}
  for name in lfs.dir(directory) do
    if name:sub(-#suffix) == suffix then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

local function sorted_keys(map)
  local keys = {}
  for key in pairs(map) do
    keys[#keys + 1] = key
  end
  table.sort(keys)
  return keys
end

local function load_rockspec()
  local spec = {}
  local chunk = assert(loadfile(ROCKSPEC, "t", spec))
  chunk()
  return spec
end

describe("rockspec", function()
  local spec

  setup(function()
    spec = load_rockspec()
  end)

  it("declares format 3.0 and the package", function()
    assert.equal("3.0", spec.rockspec_format)
    assert.equal("lua-cloudflare", spec.package)
    assert.equal("scm-1", spec.version)
    assert.equal("MIT", spec.description.license)
  end)

  it("declares libcurl as an external dependency", function()
    local curl = spec.external_dependencies.CURL
    assert.is_table(curl)
    assert.equal("curl/curl.h", curl.header)
    assert.equal("curl", curl.library)
  end)

  it("builds the core from every csrc/*.c file", function()
    local expected = {}
    for _, name in ipairs(list_files("csrc", ".c")) do
      expected[#expected + 1] = "csrc/" .. name
    end
    local core = spec.build.modules["cloudflare.core"]
    local listed = {}
    for _, source in ipairs(core.sources) do
      listed[#listed + 1] = source
    end
    table.sort(listed)
    assert.same(expected, listed)
  end)

  it("links the core against libcurl", function()
    local core = spec.build.modules["cloudflare.core"]
    assert.same({ "curl" }, core.libraries)
    assert.same({ "$(CURL_INCDIR)" }, core.incdirs)
    assert.same({ "$(CURL_LIBDIR)" }, core.libdirs)
  end)

  it("installs every lua/cloudflare/*.lua module", function()
    local expected = {}
    for _, name in ipairs(list_files("lua/cloudflare", ".lua")) do
      local module = name:gsub("%.lua$", "")
      if module == "init" then
        expected["cloudflare"] = "lua/cloudflare/" .. name
      else
        expected["cloudflare." .. module] = "lua/cloudflare/" .. name
      end
    end
    local listed = {}
    for module, source in pairs(spec.build.modules) do
      if module ~= "cloudflare.core" then
        listed[module] = source
      end
    end
    assert.same(sorted_keys(expected), sorted_keys(listed))
    assert.same(expected, listed)
  end)
end)

describe("core library", function()
  it("exports only luaopen_cloudflare_core", function()
    local path = assert(package.searchpath("cloudflare.core",
      package.cpath))
    local pipe = assert(io.popen(
      "nm -D --defined-only '" .. path .. "' 2>&1"))
    local output = pipe:read("a")
    local ok = pipe:close()
    assert.is_true(ok, "nm failed on " .. path .. ": " .. output)

    local exported = {}
    for symbol in output:gmatch("%x+ [ABDGRSTVWiu] ([%w_@.]+)") do
      exported[#exported + 1] = symbol
    end
    assert.same({ "luaopen_cloudflare_core" }, exported)
  end)
end)

-- The core is meant to load in OpenResty too, so it must compile against
-- Lua 5.1 and LuaJIT 2.1 headers, warning-free, as well as 5.4's.
describe("C core headers", function()
  local headers = {
    ["Lua 5.1"] = "/usr/include/lua5.1",
    ["LuaJIT 2.1"] = "/usr/include/luajit-2.1",
  }
  for label, directory in pairs(headers) do
    it("compiles against " .. label, function()
      for _, name in ipairs(list_files("csrc", ".c")) do
        local command = string.format(
          "cc -std=c99 -Wall -Wextra -Wshadow -Werror -fPIC -c -I%s " ..
          "-o /dev/null csrc/%s 2>&1", directory, name)
        local pipe = assert(io.popen(command))
        local output = pipe:read("a")
        local ok = pipe:close()
        assert.is_true(ok, name .. ": " .. output)
      end
    end)
  end
end)
