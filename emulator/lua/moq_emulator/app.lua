-- Entry points that nginx.conf calls: `init` from init_by_lua and
-- `handle` from content_by_lua.

local admin = require "moq_emulator.admin"
local api = require "moq_emulator.api"
local auth = require "moq_emulator.auth"
local faults = require "moq_emulator.faults"
local journal = require "moq_emulator.journal"
local ratelimit = require "moq_emulator.ratelimit"
local request = require "moq_emulator.request"
local response = require "moq_emulator.response"

local app = {}

local function split_accounts(text)
  if text == "*" then
    return nil
  end
  local accounts = {}
  for account_id in text:gmatch("[^,]+") do
    accounts[#accounts + 1] = account_id
  end
  return accounts
end

--- Reads the settings file that bin/moq-emulator writes, one setting a
-- line: `token TOKEN ACCOUNTS`, `api_key EMAIL KEY ACCOUNTS` and
-- `rate_limit QUOTA SECONDS`. ACCOUNTS is a comma-separated list of
-- account ids, or `*` for every account.
function app.init(settings_path)
  local credentials = auth.new_credentials()
  for line in io.lines(settings_path) do
    local words = {}
    for word in line:gmatch("%S+") do
      words[#words + 1] = word
    end
    if words[1] == "token" then
      auth.add_token(credentials, words[2], split_accounts(words[3]))
    elseif words[1] == "api_key" then
      auth.add_api_key(credentials, words[2], words[3],
        split_accounts(words[4]))
    elseif words[1] == "rate_limit" then
      ratelimit.configure(tonumber(words[2]), tonumber(words[3]))
    elseif words[1] then
      error("unknown setting in " .. settings_path .. ": " .. words[1])
    end
  end
  auth.configure(credentials)
end

local function is_admin_path(path)
  return path == admin.PREFIX
    or path:sub(1, #admin.PREFIX + 1) == admin.PREFIX .. "/"
end

-- Handles an API request, with any queued fault for its endpoint.
local function handle_api(req)
  journal.record(req)
  local route = api.route(req.method, req.path)
  local fault = faults.take(route.endpoint)
  if fault and not fault.passthrough and not fault.after then
    return faults.send(fault)
  end
  if fault and fault.passthrough then
    faults.delay(fault)
  end
  local resp = api.handle(req, route)
  if fault and fault.after then
    return faults.send(fault)
  end
  return response.send(resp)
end

local function handle_request()
  local req = request.read()
  if is_admin_path(req.path) then
    return response.send(admin.handle(req))
  end
  return handle_api(req)
end

local function internal_error(err)
  ngx.log(ngx.ERR, "request failed: ", debug.traceback(err, 2))
  return err
end

--- Handles the current request. A Lua error becomes a 500 envelope
-- with code 10500, and is logged to the error log.
function app.handle()
  local ok = xpcall(handle_request, internal_error)
  if not ok and not ngx.headers_sent then
    return response.send(response.failure({
      status = 500, code = 10500,
      message = "Internal error in the emulator; see its error log",
    }))
  end
end

return app
