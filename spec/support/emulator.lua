--- Runs bin/moq-emulator for specs.
--
--     local emulator = require "spec.support.emulator"
--     local emu
--     setup(function() emu = emulator.start() end)
--     teardown(function() emu:stop() end)
--
-- `emulator.start` finds a free loopback port, starts the emulator in its
-- own process group, waits (at most 10 s) for its base URL and returns a
-- handle. Specs call `emu:stop()` in `teardown`. As a fallback, a handle
-- that is garbage-collected or left open at exit stops its emulator, and
-- the emulator stops by itself when the Lua process that started it
-- exits (`--parent-pid`). Works with the repository root as the current
-- directory, as busted runs.

local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"

local emulator = {}

-- Seconds to wait for the base URL line, and for the process to exit.
local START_TIMEOUT = 10
local STOP_TIMEOUT = 10

-- Seconds an HTTP request to the emulator may take.
local REQUEST_TIMEOUT = 10

local Emulator = {}
Emulator.__index = Emulator
Emulator.__name = "spec.support.Emulator"

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

-- Runs a shell command and returns its standard output.
local function capture(command)
  local pipe = assert(io.popen(command, "r"))
  local output = pipe:read("a")
  pipe:close()
  return output
end

--- Returns the path of bin/moq-emulator, from the location of this file.
function emulator.script_path()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = source:gsub("spec/support/emulator%.lua$", "")
  if root == "" then
    root = "./"
  end
  return root .. "bin/moq-emulator"
end

--- Returns a TCP port on 127.0.0.1 that was free a moment ago.
function emulator.free_port()
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  server:close()
  return tonumber(port)
end

--- Returns whether a process exists and is not a zombie.
function emulator.process_alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then
    return false
  end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

-- Returns whether any process of a process group is left.
local function group_alive(pgid)
  return os.execute("kill -0 -" .. pgid .. " 2>/dev/null") == true
end

local function own_pid()
  local stat = read_file("/proc/self/stat")
  return stat and stat:match("^(%d+)")
end

local function emulator_arguments(options, port)
  local args = { "--quiet", "--port", tostring(port) }
  local parent = own_pid()
  if parent then
    args[#args + 1] = "--parent-pid"
    args[#args + 1] = parent
  end
  for _, token in ipairs(options.tokens or {}) do
    args[#args + 1] = "--token"
    args[#args + 1] = token
  end
  for _, api_key in ipairs(options.api_keys or {}) do
    args[#args + 1] = "--api-key"
    args[#args + 1] = api_key
  end
  if options.rate_limit then
    args[#args + 1] = "--rate-limit"
    args[#args + 1] = options.rate_limit
  end
  if options.keepalive_timeout then
    args[#args + 1] = "--keepalive-timeout"
    args[#args + 1] = tostring(options.keepalive_timeout)
  end
  if options.tls_cert then
    args[#args + 1] = "--tls-cert"
    args[#args + 1] = options.tls_cert
    args[#args + 1] = "--tls-key"
    args[#args + 1] = options.tls_key
  end
  return args
end

-- Starts the emulator in the background in a new session, so that it and
-- nginx form one process group. Returns the emulator's pid.
local function spawn(args, directory)
  local words = { "setsid", shell_quote(emulator.script_path()) }
  for _, arg in ipairs(args) do
    words[#words + 1] = shell_quote(arg)
  end
  local command = table.concat(words, " ")
    .. " >" .. shell_quote(directory .. "/stdout")
    .. " 2>" .. shell_quote(directory .. "/stderr")
    .. " </dev/null & echo $!"
  return tonumber(capture(command):match("%d+"))
end

-- Waits for the base URL line. Returns it, or nil when the process exits
-- first or the time runs out.
local function wait_for_url(pid, directory)
  local deadline = socket.gettime() + START_TIMEOUT
  while socket.gettime() < deadline do
    local output = read_file(directory .. "/stdout") or ""
    local url = output:match("^(https?://[^\n]+)\n")
    if url then
      return url
    end
    if not emulator.process_alive(pid) then
      return nil
    end
    socket.sleep(0.05)
  end
  return nil
end

-- A handle dropped without `stop`, or still open when Lua closes its
-- state at exit, stops its emulator. `__gc` must be in the metatable
-- before `setmetatable` for Lua 5.4 to finalize the table.
Emulator.__gc = function(handle)
  handle:stop()
end

Emulator.__close = Emulator.__gc

--- Starts an emulator.
-- `options` (all optional): `tokens` and `api_keys` (lists of --token and
-- --api-key values), `rate_limit` ("N/SECONDS"), `tls_cert` and `tls_key`
-- (PEM files). Raises with the emulator's stderr when it does not start.
-- Returns a handle with `url`, `port`, `pid` and the methods below.
function emulator.start(options)
  options = options or {}
  local directory = capture("mktemp -d"):gsub("%s+$", "")
  assert(directory ~= "", "mktemp -d failed")
  local last_error
  -- A port found free can be taken before nginx binds it, so retry.
  for _ = 1, 3 do
    local port = emulator.free_port()
    local pid = assert(spawn(emulator_arguments(options, port), directory),
      "cannot start " .. emulator.script_path())
    local url = wait_for_url(pid, directory)
    if url then
      return setmetatable({
        url = url,
        port = port,
        pid = pid,
        origin = url:gsub("/client/v4$", ""),
        directory = directory,
      }, Emulator)
    end
    last_error = read_file(directory .. "/stderr") or ""
    os.execute("kill -KILL -" .. pid .. " 2>/dev/null")
    if not last_error:find("already in use", 1, true) then
      break
    end
  end
  os.execute("rm -rf " .. shell_quote(directory))
  error("moq-emulator did not start: " .. last_error, 2)
end

--- Stops the emulator with SIGTERM and waits until it has exited. After
-- 10 s, or when anything of its process group is left, sends SIGKILL to
-- the group. Safe to call more than once.
function Emulator:stop()
  if self.stopped then
    return
  end
  self.stopped = true
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = socket.gettime() + STOP_TIMEOUT
  while emulator.process_alive(self.pid) and socket.gettime() < deadline do
    socket.sleep(0.02)
  end
  if emulator.process_alive(self.pid) or group_alive(self.pid) then
    os.execute("kill -KILL -" .. self.pid .. " 2>/dev/null")
  end
  os.execute("rm -rf " .. shell_quote(self.directory))
end

local function request_function(url)
  if url:find("^https:") then
    return require("ssl.https").request
  end
  return http.request
end

local function tcp_with_timeout()
  local connection = socket.tcp()
  connection:settimeout(REQUEST_TIMEOUT)
  return connection
end

--- Sends an HTTP request to the emulator and returns the status, the
-- response headers (lower-cased names) and the body.
-- `path` is sent as is, so percent-encoding in it reaches the server
-- unchanged. `body` is a string or nil. Raises when the request fails at
-- the transport level.
function Emulator:raw_request(method, path, headers, body)
  headers = headers or {}
  local source
  if body ~= nil then
    headers["content-length"] = tostring(#body)
    source = ltn12.source.string(body)
  end
  local chunks = {}
  local params = {
    url = self.origin .. path,
    uri = path,
    method = method,
    headers = headers,
    source = source,
    sink = ltn12.sink.table(chunks),
  }
  if not self.origin:find("^https:") then
    params.create = tcp_with_timeout
  end
  local ok, status, response_headers = request_function(self.origin)(params)
  if not ok then
    error(method .. " " .. path .. " failed: " .. tostring(status), 2)
  end
  return status, response_headers, table.concat(chunks)
end

--- Sends a request to a test route. `body` is a table (encoded with
-- cjson, where an empty table becomes `{}`), a string sent as is, or nil.
-- Returns the status and the decoded body (the raw text when it is not
-- JSON).
function Emulator:request(method, path, body)
  local headers = {}
  if type(body) == "table" then
    body = cjson.encode(body)
  end
  if body ~= nil then
    headers["content-type"] = "application/json"
  end
  local status, _, text = self:raw_request(method, path, headers, body)
  local ok, decoded = pcall(cjson.decode, text)
  if ok then
    return status, decoded
  end
  return status, text
end

-- Sends a request to a test route that must succeed, and returns the
-- decoded body.
local function expect_ok(handle, method, path, body)
  local status, decoded = handle:request(method, path, body)
  if status ~= 200 then
    local body_text = type(decoded) == "table" and cjson.encode(decoded)
      or tostring(decoded)
    error(method .. " " .. path .. " returned " .. status .. ": "
      .. body_text, 3)
  end
  return decoded
end

--- Clears relays, journal, faults and rate-limit windows, and restores
-- the command-line credentials.
function Emulator:reset()
  expect_ok(self, "POST", "/__emulator/reset")
end

--- Returns the recorded API requests, oldest first.
function Emulator:journal()
  return expect_ok(self, "GET", "/__emulator/journal")
end

--- Clears the journal.
function Emulator:clear_journal()
  expect_ok(self, "DELETE", "/__emulator/journal")
end

--- Queues fault responses for an endpoint (list, get, create, update,
-- delete, rotate or *). Returns the status and decoded body, so a spec
-- can check a rejected fault too.
function Emulator:faults(endpoint, responses)
  return self:request("POST", "/__emulator/faults",
    { endpoint = endpoint, responses = responses })
end

--- Removes every queued fault.
function Emulator:clear_faults()
  expect_ok(self, "DELETE", "/__emulator/faults")
end

--- Returns everything stored about a relay, tokens included, or nil and
-- the status when no relay has that uid.
function Emulator:relay(uid)
  local status, decoded = self:request("GET", "/__emulator/relays/" .. uid)
  if status ~= 200 then
    return nil, status
  end
  return decoded
end

--- Sets a relay's status ("connected"), or clears it when `status` is nil.
-- Returns the stored relay.
function Emulator:set_status(uid, status)
  return expect_ok(self, "PUT", "/__emulator/relays/" .. uid .. "/status",
    { status = status == nil and cjson.null or status })
end

--- Stores relays with exact fields (`account_id`, `name`, and optionally
-- `created`, `modified`, `config`, `status`, `uid`, `deleted`, `count`).
-- Returns the stored relay, or the list of them when `count` is given.
function Emulator:seed(fields)
  return expect_ok(self, "POST", "/__emulator/relays", fields)
end

return emulator
