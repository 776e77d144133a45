-- The HTML API reference: `ldoc` (Debian package lua-ldoc) builds it
-- from config.ld into a temporary directory, and every public function
-- appears there with a description.

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local text = file:read("a")
  file:close()
  return text
end

local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  pipe:close()
  return output
end

-- Each public function: how a caller writes it, the page LDoc writes it
-- on, and its anchor there.
local PUBLIC = {
  { "cloudflare.new", "cloudflare.html", "new" },
  { "cloudflare.mask", "cloudflare.html", "mask" },
  { "relays:list", "cloudflare.relays.html", "Relays:list" },
  { "relays:get", "cloudflare.relays.html", "Relays:get" },
  { "relays:create", "cloudflare.relays.html", "Relays:create" },
  { "relays:update", "cloudflare.relays.html", "Relays:update" },
  { "relays:delete", "cloudflare.relays.html", "Relays:delete" },
  { "relays.tokens:rotate", "cloudflare.relays.html", "Tokens:rotate" },
  { "relays:each", "cloudflare.relays.html", "Relays:each" },
  { "relays:pages", "cloudflare.relays.html", "Relays:pages" },
  { "relays:all", "cloudflare.relays.html", "Relays:all" },
  { "relays:find_by_name", "cloudflare.relays.html",
    "Relays:find_by_name" },
  { "relays:ensure", "cloudflare.relays.html", "Relays:ensure" },
  { "page:next_page", "cloudflare.relays.html", "Page:next_page" },
  { "cf:close", "cloudflare.client.html", "Client:close" },
  { "cf:rate_limit_status", "cloudflare.client.html",
    "Client:rate_limit_status" },
  { "cloudflare.time.parse", "cloudflare.time.html", "parse" },
  { "cloudflare.time.format", "cloudflare.time.html", "format" },
  { "cloudflare.errors.is", "cloudflare.errors.html", "is" },
}

-- The text of the description that LDoc writes after an anchor, with
-- the tags removed, or nil when the page has no such anchor.
local function description(page, anchor)
  local start = page:find('<a name = "' .. anchor .. '"></a>', 1, true)
  if not start then
    return nil
  end
  local body = page:match("<dd>(.-)</dd>", start) or ""
  body = body:gsub("<h3>.*", "")
  return (body:gsub("<[^>]*>", " "):gsub("%s+", " "):gsub("^ ", ""))
end

describe("API reference", function()
  local out_dir, status, warnings

  setup(function()
    assert(os.execute("command -v ldoc >/dev/null"),
           "ldoc not found: install the Debian package lua-ldoc")
    out_dir = capture("mktemp -d"):gsub("%s+$", "")
    local stderr_file = out_dir .. "/ldoc.stderr"
    local output = capture("ldoc --dir " .. shell_quote(out_dir .. "/html")
      .. " . 2>" .. shell_quote(stderr_file) .. "; echo \"status $?\"")
    status = tonumber(output:match("status (%d+)\n$"))
    warnings = read_file(stderr_file) or ""
  end)

  teardown(function()
    if out_dir then
      os.execute("rm -rf " .. shell_quote(out_dir))
    end
  end)

  it("builds without error", function()
    assert.equal(0, status, warnings)
    assert.is_truthy(read_file(out_dir .. "/html/index.html"))
  end)

  it("builds without warnings", function()
    assert.equal("", warnings)
  end)

  for _, entry in ipairs(PUBLIC) do
    local name, file, anchor = entry[1], entry[2], entry[3]
    it("documents " .. name, function()
      local page = read_file(out_dir .. "/html/modules/" .. file)
      assert.is_truthy(page, "no page modules/" .. file)
      local text = description(page, anchor)
      assert.is_truthy(text, "no entry " .. anchor .. " in " .. file)
      assert.is_true(#text > 0, "empty description of " .. anchor)
    end)
  end
end)
