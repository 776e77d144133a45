-- TLS against the emulator serving HTTPS with a CA made for this test.

local cloudflare = require "cloudflare"
local emulator = require "spec.support.emulator"

local ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"

local function run(command)
  local ok = os.execute(command .. " >/dev/null 2>&1")
  assert(ok, "command failed: " .. command)
end

-- Make a CA and a certificate for 127.0.0.1 signed by it, in `dir`.
local function make_certificates(dir)
  run(string.format(
    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj " ..
    "'/CN=lua-cloudflare test CA' -keyout %s/ca.key -out %s/ca.pem",
    dir, dir))
  run(string.format(
    "openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' " ..
    "-keyout %s/server.key -out %s/server.csr", dir, dir))
  local ext = assert(io.open(dir .. "/ext.cnf", "w"))
  ext:write("subjectAltName = IP:127.0.0.1\n")
  ext:close()
  run(string.format(
    "openssl x509 -req -in %s/server.csr -CA %s/ca.pem -CAkey %s/ca.key " ..
    "-CAcreateserial -days 2 -extfile %s/ext.cnf -out %s/server.pem",
    dir, dir, dir, dir, dir))
end

describe("TLS", function()
  local emu, dir

  setup(function()
    local pipe = assert(io.popen("mktemp -d"))
    dir = pipe:read("l")
    pipe:close()
    make_certificates(dir)
    emu = emulator.start { tls_cert = dir .. "/server.pem",
                           tls_key = dir .. "/server.key" }
  end)

  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  local function client(opts)
    opts.api_token = "local-dev-token"
    opts.account_id = ACCOUNT
    opts.base_url = emu.url
    opts.max_retries = 0
    opts.logger = opts.logger or function() end
    return cloudflare.new(opts)
  end

  it("serves https", function()
    assert.matches("^https://127%.0%.0%.1:%d+/client/v4$", emu.url)
  end)

  it("fails clearly without the CA", function()
    local cf = client {}
    local page, err = cf.moq.relays:list()
    assert.is_nil(page)
    assert.equal("APIConnectionError", err.name)
    assert.equal("tls", err.transport_error)
    assert.matches("TLS failed", err.message, 1, true)
    assert.matches("ca_file", err.message, 1, true)
    cf:close()
  end)

  it("succeeds with ca_file", function()
    local cf = client { ca_file = dir .. "/ca.pem" }
    local relay, err = cf.moq.relays:create { name = "over tls" }
    assert.is_nil(err)
    assert.equal("over tls", relay.name)
    cf:close()
  end)

  it("succeeds with verification off, and warns", function()
    local lines = {}
    local cf = client { verify_tls = false,
                        logger = function(level, message)
                          lines[#lines + 1] = level .. ": " .. message
                        end }
    assert(cf.moq.relays:list())
    assert.matches("^warn: TLS certificate verification is off", lines[1])
    cf:close()
  end)

  it("rejects a CA file that does not exist", function()
    local cf = client { ca_file = dir .. "/missing.pem" }
    local _, err = cf.moq.relays:list()
    assert.equal("APIConnectionError", err.name)
    cf:close()
  end)
end)
