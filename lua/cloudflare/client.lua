--- The client: configuration, authentication and the request pipeline.
-- @module cloudflare.client

local core = require "cloudflare.core"
local errors = require "cloudflare.errors"
local log = require "cloudflare.log"
local models = require "cloudflare.models"
local policy = require "cloudflare.policy"

local M = {}

M.VERSION = core._VERSION
M.DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
M.DEFAULT_TIMEOUT = 60
M.DEFAULT_CONNECT_TIMEOUT = 10
M.DEFAULT_MAX_RETRIES = 2
M.DEFAULT_MAX_RETRY_WAIT = 60
-- A response slower than this many bytes per second, averaged over
-- DEFAULT_LOW_SPEED_TIME seconds, is aborted before the total timeout.
M.DEFAULT_LOW_SPEED_LIMIT = 16
M.DEFAULT_LOW_SPEED_TIME = 30

-- Options accepted by cloudflare.new, with the type each must have.
local OPTIONS = {
  api_token = "string", api_key = "string", email = "string",
  account_id = "string", base_url = "string", timeout = "number",
  connect_timeout = "number", ca_file = "string", proxy = "string",
  verify_tls = "boolean", max_response_bytes = "number",
  allow_insecure_http = "boolean", transport = "table",
  max_retries = "number", max_retry_wait = "number", rate_limit = "table",
  log_level = "string", logger = "function", clock = "table",
  low_speed_limit = "number", low_speed_time = "number",
}

-- Environment variables that Cloudflare's own tools read.
local ENV = {
  api_token = "CLOUDFLARE_API_TOKEN",
  api_key = "CLOUDFLARE_API_KEY",
  email = "CLOUDFLARE_EMAIL",
  account_id = "CLOUDFLARE_ACCOUNT_ID",
  base_url = "CLOUDFLARE_BASE_URL",
  log_level = "CLOUDFLARE_LOG",
}

-- The clock of a plain Lua host. A host with its own event loop, such as
-- nginx, can pass a non-blocking one as the `clock` option.
local SYSTEM_CLOCK = { now = core.now, sleep = core.sleep, time = core.time }

-- Relay tokens seen by one client that are scrubbed from error text.
local MAX_REMEMBERED_SECRETS = 256

-- Finite and above zero: false for NaN, unlike `not (n <= 0)`.
local function positive(n)
  return n > 0 and n < math.huge
end

-- Credentials and the relay tokens seen are kept in upvalues of these
-- functions, not in tables, so that no walk over a client's fields (a
-- table dumper, a debugger's inspect) can print them.
local function new_secret_store(api_token, api_key, proxy)
  local remembered = {}
  local store = {}

  function store.credentials()
    return api_token, api_key
  end

  -- A proxy URL can carry a user name and password.
  function store.proxy()
    return proxy
  end

  function store.remember(value)
    if type(value) ~= "string" or value == "" then
      return
    end
    if #remembered >= MAX_REMEMBERED_SECRETS then
      table.remove(remembered, 1)
    end
    remembered[#remembered + 1] = value
  end

  -- Every known secret of at least 4 bytes, credentials first.
  function store.all()
    local out = {}
    local proxy_password = proxy
      and proxy:match("^%a[%w+.-]*://[^/@]*:([^/@]+)@")
    for _, secret in ipairs { api_token or "", api_key or "",
                              proxy_password or "" } do
      if #secret >= 4 then
        out[#out + 1] = secret
      end
    end
    for _, secret in ipairs(remembered) do
      out[#out + 1] = secret
    end
    return out
  end

  return setmetatable(store, { __tostring = function()
    return "<hidden>"
  end })
end

local Client = { __name = "cloudflare.Client" }
Client.__index = Client
M.Client = Client

--- Raise unless `self` is a client: catches `cf.close()` written for
-- `cf:close()`.
local function check_self(self, method)
  if getmetatable(self) ~= Client then
    error(string.format("cloudflare.Client:%s: call it with ':' " ..
                        "(client:%s(...)), not '.'", method, method), 3)
  end
end

local function is_loopback(host)
  return host == "localhost" or host == "[::1]"
    or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- Split a base URL into scheme and host, raising for a malformed one.
local function check_base_url(url, allow_insecure)
  local scheme, host = url:match("^(%a[%w+.-]*)://([^/:?#]+)")
  if host and host:sub(1, 1) == "[" then
    host = url:match("^%a[%w+.-]*://(%[[^%]]*%])")
  end
  if not scheme or not host then
    error(string.format("invalid base_url %q: expected an absolute URL " ..
                        "such as %s", url, M.DEFAULT_BASE_URL), 3)
  end
  scheme = scheme:lower()
  if scheme ~= "https" and scheme ~= "http" then
    error(string.format("invalid base_url %q: the scheme must be https " ..
                        "(or http for a loopback emulator)", url), 3)
  end
  if scheme == "http" and not is_loopback(host) and not allow_insecure then
    error(string.format("refusing plain http base_url %q: credentials " ..
                        "would travel unencrypted; use https, or set " ..
                        "allow_insecure_http = true", url), 3)
  end
  return (url:gsub("/+$", ""))
end

function M.user_agent()
  return string.format("lua-cloudflare/%s (%s; libcurl %s)", M.VERSION,
                       _VERSION, core.curl_version())
end

--- Create a client. See `cloudflare.new` for the options.
function M.new(opts)
  if opts == nil then
    opts = {}
  elseif type(opts) ~= "table" then
    error("cloudflare.new: options must be a table, got " .. type(opts), 2)
  end
  for key, value in pairs(opts) do
    local expected = OPTIONS[key]
    if not expected then
      local names = {}
      for name in pairs(OPTIONS) do names[#names + 1] = name end
      table.sort(names)
      error(string.format("cloudflare.new: unknown option %q (known: %s)",
                          tostring(key), table.concat(names, ", ")), 2)
    end
    if type(value) ~= expected then
      error(string.format("cloudflare.new: option %s must be a %s, got %s",
                          key, expected, type(value)), 2)
    end
  end

  local self = setmetatable({}, Client)
  local config = {}
  for key in pairs(OPTIONS) do
    config[key] = opts[key]
  end
  for key, var in pairs(ENV) do
    if config[key] == nil then
      local value = os.getenv(var)
      if value ~= nil and value ~= "" then
        config[key] = value
      end
    end
  end
  config.base_url = check_base_url(config.base_url or M.DEFAULT_BASE_URL,
                                   config.allow_insecure_http)
  config.timeout = config.timeout or M.DEFAULT_TIMEOUT
  config.connect_timeout = config.connect_timeout
    or math.min(M.DEFAULT_CONNECT_TIMEOUT, config.timeout)
  if not positive(config.timeout) or not positive(config.connect_timeout)
      then
    error("cloudflare.new: timeout and connect_timeout must be positive " ..
          "numbers of seconds", 2)
  end
  config.max_retries = config.max_retries or M.DEFAULT_MAX_RETRIES
  if config.max_retries < 0 or config.max_retries > 100
      or config.max_retries ~= math.floor(config.max_retries) then
    error("cloudflare.new: max_retries must be an integer from 0 to 100", 2)
  end
  config.max_retry_wait = config.max_retry_wait or M.DEFAULT_MAX_RETRY_WAIT
  if config.max_retry_wait ~= 0 and not positive(config.max_retry_wait)
      then
    error("cloudflare.new: max_retry_wait must be a number of seconds " ..
          "from 0", 2)
  end
  config.low_speed_limit = config.low_speed_limit
    or M.DEFAULT_LOW_SPEED_LIMIT
  config.low_speed_time = config.low_speed_time or M.DEFAULT_LOW_SPEED_TIME
  local limit = config.rate_limit
  if limit ~= nil and (type(limit.requests) ~= "number"
      or limit.requests < 1 or type(limit.per) ~= "number"
      or not positive(limit.per)) then
    error("cloudflare.new: rate_limit must be { requests = N, per = " ..
          "SECONDS } with N >= 1 and SECONDS > 0", 2)
  end
  local level, level_err = log.level_number(config.log_level or "warn")
  if not level then
    error("cloudflare.new: " .. level_err, 2)
  end
  self.log_level = level
  self.logger = config.logger or log.stderr_logger
  self.clock = config.clock or SYSTEM_CLOCK
  self._rate = { sent = {} }

  self._secrets = new_secret_store(config.api_token, config.api_key,
                                   config.proxy)
  self.auth = config.api_token and "api_token"
    or (config.api_key and "api_key") or "none"
  config.api_token, config.api_key, config.proxy = nil, nil, nil
  self.config = config
  self.transport = config.transport or core.session {
    user_agent = M.user_agent(),
    ca_file = config.ca_file,
    proxy = self._secrets.proxy(),
    verify_tls = config.verify_tls,
    max_response_bytes = config.max_response_bytes,
  }
  self.moq = M.new_moq(self)
  if config.verify_tls == false then
    self:_log("warn", "TLS certificate verification is off for %s: any " ..
              "server can read the credentials", config.base_url)
  end
  return self
end

-- The `moq` namespace of a client: `cf.moq.relays`.
function M.new_moq(client)
  local relays = require "cloudflare.relays"
  return setmetatable({ relays = relays.new(client) }, {
    __name = "cloudflare.MoQ",
    __tostring = function() return "cloudflare.MoQ (relays)" end,
  })
end

-- A client that shares this one's configuration, secrets and rate-limit
-- state, but sends through `transport` and waits on `clock`. Batches run
-- their calls on such views.
function Client:_view(transport, clock)
  local view = setmetatable({}, Client)
  for key, value in pairs(self) do
    view[key] = value
  end
  view.transport, view.clock = transport, clock
  view.moq = M.new_moq(view)
  return view
end

--- Run many calls concurrently on this client's configuration, over
-- libcurl's multi interface.
-- @tparam table calls an array of functions; each receives a client and
--   returns what its call returns, e.g.
--   `function(c) return c.moq.relays:get(uid) end`
-- @tparam[opt] table opts `concurrency` (default 8) and `on_progress`
-- @return an array with, at each index, the packed results of that call
function Client:batch(calls, opts)
  check_self(self, "batch")
  return require("cloudflare.batch").run(self, calls, opts)
end

function Client:__tostring()
  return string.format("cloudflare.Client (%s, account %s, auth %s, %s; " ..
                       "use moq.relays, batch, rate_limit_status, close)",
                       self.config.base_url,
                       self.config.account_id or "unset", self.auth,
                       self._closed and "closed" or "open")
end

--- Release the client's connection. Later calls return an error.
-- Safe to call more than once.
function Client:close()
  check_self(self, "close")
  if not self._closed then
    self._closed = true
    self.transport:close()
  end
  return true
end

Client.__close = function(self)
  self:close()
end

Client.__gc = Client.__close

-- Remember a relay token, so that error text never shows it.
function Client:_remember_secret(value)
  self._secrets.remember(value)
end

local function replace_plain(text, needle)
  local out, start = {}, 1
  while true do
    local i, j = text:find(needle, start, true)
    if not i then break end
    out[#out + 1] = text:sub(start, i - 1)
    out[#out + 1] = "[REDACTED]"
    start = j + 1
  end
  out[#out + 1] = text:sub(start)
  return table.concat(out)
end

--- Replace every secret this client knows in `text` with `[REDACTED]`.
function Client:redact(text)
  if type(text) ~= "string" then
    return text
  end
  for _, secret in ipairs(self._secrets.all()) do
    text = replace_plain(text, secret)
  end
  return text
end

-- Redact every string inside `value`, a table from a response, in place.
function Client:_redact_deep(value, depth)
  depth = depth or 0
  if type(value) ~= "table" or depth > 32 then
    return
  end
  for k, v in pairs(value) do
    if type(v) == "string" then
      value[k] = self:redact(v)
    else
      self:_redact_deep(v, depth + 1)
    end
  end
end

-- Remove known secrets from an error before it reaches the caller.
function Client:_redact_error(err)
  err.message = self:redact(err.message)
  -- An id that happens to be a secret must not show in the path either,
  -- and a server can echo anything into cf-ray or an error code.
  err.path = self:redact(err.path)
  err.ray_id = self:redact(err.ray_id)
  err.code = self:redact(err.code)
  self:_redact_deep(err.errors)
  self:_redact_deep(err.messages)
  return err
end

-- Percent-encode a path segment or query value: only RFC 3986
-- unreserved characters pass unchanged.
local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", c:byte())
  end))
end
M.escape = escape

-- Build the authentication headers, or return a ValidationError.
function Client:_auth_headers()
  local token, key = self._secrets.credentials()
  local email = self.config.email
  if token then
    if token:find("[%z\r\n]") then
      return nil, errors.new("ValidationError", "invalid api_token: it " ..
        "contains a line break or NUL byte; copy the token again without " ..
        "the trailing newline", { field = "api_token" })
    end
    return { "Authorization: Bearer " .. token }
  end
  if key then
    if not email then
      return nil, errors.new("ValidationError", "missing email: api_key " ..
        "needs the account email (option email or CLOUDFLARE_EMAIL)",
        { field = "email" })
    end
    for field, value in pairs { api_key = key, email = email } do
      if value:find("[%z\r\n]") then
        return nil, errors.new("ValidationError", "invalid " .. field ..
          ": it contains a line break or NUL byte", { field = field })
      end
    end
    return { "X-Auth-Email: " .. email, "X-Auth-Key: " .. key }
  end
  return nil, errors.new("ValidationError", "missing credentials: set " ..
    "api_token (or CLOUDFLARE_API_TOKEN), or api_key and email " ..
    "(CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL)", { field = "api_token" })
end

-- A short, single-line excerpt of a body that is not the API's JSON:
-- tags dropped, whitespace collapsed, at most 120 characters.
local function excerpt(body, redact)
  redact = redact or function(text) return text end
  -- Tags go without a trace, so that one inside a secret cannot hide
  -- the secret from the second redaction.
  local text = redact(body):sub(1, 4096):gsub("<[^>]*>", "")
  text = redact(text:gsub("%s+", " "))
  text = text:gsub("^ ", ""):gsub(" $", "")
  text = text:gsub("[^\32-\126]", "?")
  if #text > 120 then
    text = text:sub(1, 117) .. "..."
  end
  return text
end

-- Describe the envelope's errors in one message, following each
-- error_chain, e.g. "Invalid request headers (6003) > Invalid format
-- for Authorization header (6111)".
local function describe_errors(list)
  local parts = {}
  local function add(entry, prefix)
    if type(entry) ~= "table" then return end
    local text = tostring(entry.message or "error")
    if entry.code ~= nil then
      text = text .. " (" .. tostring(entry.code) .. ")"
    end
    parts[#parts + 1] = prefix .. text
    if type(entry.error_chain) == "table" then
      for _, inner in ipairs(entry.error_chain) do
        add(inner, "> ")
      end
    end
  end
  for i, entry in ipairs(list) do
    add(entry, i > 1 and "; " or "")
  end
  return table.concat(parts, " ")
end

local function header(resp, name)
  return resp.headers and resp.headers[name]
end

local function as_list(value)
  if type(value) == "table" then
    return value
  end
  return {}
end

-- Turn a transport response into the result, or nil and an error.
function Client:_decode(resp, op, fields)
  local function redact(text)
    return self:redact(text)
  end
  fields.status = resp.status
  fields.ray_id = header(resp, "cf-ray")
  local status, body = resp.status, resp.body or ""
  local content_type = header(resp, "content-type") or ""

  if op.allow_empty and status >= 200 and status < 300
      and body:find("^%s*$") then
    return true
  end

  if status >= 300 and status < 400 then
    local location = header(resp, "location") or "nowhere"
    return nil, errors.new("APIStatusError", string.format(
      "HTTP %d redirect to %s was not followed", status,
      excerpt(location, redact)), fields)
  end

  local decoded, decode_err
  if content_type == "" or content_type:lower():find("json", 1, true) then
    decoded, decode_err = core.json_decode(body)
  else
    decode_err = "content type " .. excerpt(content_type, redact) ..
      " is not application/json"
  end
  if decoded == nil or type(decoded) ~= "table"
      or type(decoded.success) ~= "boolean" then
    local what = decode_err or "the body is not the API envelope"
    if status >= 200 and status < 300 then
      return nil, errors.new("ResponseDecodeError", string.format(
        "unexpected HTTP %d response: %s: %s", status, what,
        excerpt(body, redact)), fields)
    end
    return nil, errors.new(errors.name_for_status(status), string.format(
      "unexpected response: %s: %s", what, excerpt(body, redact)), fields)
  end

  fields.errors = as_list(decoded.errors)
  fields.messages = as_list(decoded.messages)
  local first = fields.errors[1]
  fields.code = type(first) == "table" and first.code or nil

  if not decoded.success or status < 200 or status >= 300 then
    local name = errors.name_for_status(status)
    local message = describe_errors(fields.errors)
    if message == "" then
      message = decoded.success and "request failed"
        or "the API returned success: false"
    end
    if status >= 200 and status < 300 then
      message = message .. " (HTTP " .. status .. " with success: false)"
    elseif status == 401 then
      message = message .. "; check the API token (api_token or " ..
        "CLOUDFLARE_API_TOKEN) or the api_key and email pair"
    elseif status == 403 then
      message = message .. "; check that the credentials may access " ..
        "account " .. tostring(op.account_id)
    end
    return nil, errors.new(name, self:redact(message), fields)
  end

  if decoded.result == nil and op.allow_empty then
    return true
  end
  if op.schema == nil then
    return decoded.result == nil and true or decoded.result
  end

  local result, shape_err = models.convert(op.schema, decoded.result,
                                             "result")
  if not result then
    return nil, errors.new("ResponseDecodeError", "unexpected response: " ..
      shape_err, fields)
  end
  for field in pairs(models.SECRET_FIELDS) do
    self:_remember_secret(rawget(result, field))
  end
  op.envelope = decoded
  return result
end

-- Options a call accepts as its last argument.
local CALL_OPTIONS = {
  timeout = "number", max_retries = "number", deadline = "number",
  headers = "table",
}

-- Check a call's options; raises for misuse, returns a ValidationError
-- for a bad value.
function M.call_options(opts)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    error("call options must be a table, got " .. type(opts), 3)
  end
  for key, value in pairs(opts) do
    local expected = CALL_OPTIONS[key]
    if not expected then
      return nil, errors.validation("options." .. tostring(key),
        "unknown call option (known: deadline, headers, max_retries, " ..
        "timeout)", value)
    end
    if type(value) ~= expected then
      return nil, errors.validation("options." .. key, "expected a " ..
        expected, value)
    end
  end
  for _, key in ipairs { "timeout", "deadline" } do
    if opts[key] ~= nil and not positive(opts[key]) then
      return nil, errors.validation("options." .. key,
        "expected a positive number of seconds", opts[key])
    end
  end
  if opts.max_retries ~= nil and (opts.max_retries < 0
      or opts.max_retries ~= math.floor(opts.max_retries)) then
    return nil, errors.validation("options.max_retries",
      "expected an integer from 0", opts.max_retries)
  end
  for name, value in pairs(opts.headers or {}) do
    if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      return nil, errors.validation("options.headers",
        "expected header names made of token characters", name)
    end
    if type(value) ~= "string" or value:find("[%z\r\n]") then
      return nil, errors.new("ValidationError", "invalid options.headers." ..
        name .. ": expected a string without CR, LF or NUL",
        { field = "options.headers." .. name })
    end
  end
  return opts
end

-- Build the path, query string and body of an operation.
local function build_request(op)
  local path = "/accounts/" .. escape(op.account_id) .. "/moq/relays"
  for _, segment in ipairs(op.segments or {}) do
    path = path .. "/" .. escape(segment)
  end
  if op.query and #op.query > 0 then
    local pairs_out = {}
    for i, pair in ipairs(op.query) do
      pairs_out[i] = escape(pair[1]) .. "=" .. escape(pair[2])
    end
    path = path .. "?" .. table.concat(pairs_out, "&")
  end
  if op.body == nil then
    return path
  end
  local body, encode_err = core.json_encode(op.body)
  if not body then
    return nil, errors.new("ValidationError", encode_err)
  end
  return path, nil, body
end

-- Send one API request with retries. `op` has method, account_id,
-- segments (below the relays path), query pairs, body table, schema,
-- allow_empty and idempotent.
function Client:_call(op, call_opts)
  if self._closed then
    return nil, errors.new("APIConnectionError",
      "the client is closed; create a new one with cloudflare.new")
  end

  local opts, opts_err = M.call_options(call_opts)
  if not opts then return nil, opts_err end

  local headers, err = self:_auth_headers()
  if not headers then return nil, err end

  local path, build_err, body = build_request(op)
  if not path then return nil, build_err end
  if body then
    headers[#headers + 1] = "Content-Type: application/json"
  end
  headers[#headers + 1] = "Accept: application/json"
  for name, value in pairs(opts.headers or {}) do
    headers[#headers + 1] = name .. ": " .. value
  end

  local clock = self.clock
  local started = clock.now()
  local deadline = opts.deadline and started + opts.deadline
  local max_retries = opts.max_retries or self.config.max_retries
  local timeout = opts.timeout or self.config.timeout
  local request = {
    method = op.method, url = self.config.base_url .. path,
    headers = headers, body = body,
    connect_timeout = self.config.connect_timeout,
    low_speed_time = self.config.low_speed_time,
    low_speed_limit = self.config.low_speed_limit,
    -- libcurl re-sends once on a dead reused connection; a create or a
    -- rotate must never run twice, so it gets a new connection.
    fresh_connect = not op.idempotent,
  }

  local attempt = 0
  while true do
    attempt = attempt + 1
    local fields = { method = op.method, path = path, attempts = attempt }

    local waited, wait_err = self:_wait_for_rate_limit(deadline, fields)
    if not waited then return nil, wait_err end

    request.timeout = timeout
    if deadline then
      local remaining = deadline - clock.now()
      if remaining <= 0 then
        return nil, errors.new("APITimeoutError", string.format(
          "deadline of %g s passed before attempt %d", opts.deadline,
          attempt), fields)
      end
      request.timeout = math.min(timeout, remaining)
      request.connect_timeout = math.min(self.config.connect_timeout,
                                         remaining)
    end

    self:_log_request(request, attempt, max_retries)
    local resp, terr = self.transport:request(request)
    local result, failure, outcome
    if resp then
      self:_note_rate_limit(resp.headers or {})
      self:_log_response(request, resp, attempt)
      result, failure = self:_decode(resp, op, fields)
      if result ~= nil then
        return result
      end
      outcome = { status = resp.status, headers = resp.headers or {} }
    else
      failure = self:_transport_error(terr, fields)
      outcome = { transport = terr.kind, request_sent = terr.request_sent }
      self:_log("debug", "%s %s failed on attempt %d: %s", op.method,
                request.url, attempt, failure.message)
    end

    local retry, unknown = policy.should_retry(outcome, op.idempotent)
    if failure.name == "ValidationError" then
      retry = false
    end
    -- A create or rotate whose request went out and got no definite
    -- refusal back (an unreadable 2xx, a body over the cap, a transport
    -- failure after sending) may have taken effect.
    if not op.idempotent and not unknown and not retry then
      if outcome.status then
        unknown = outcome.status >= 200 and outcome.status < 300
      else
        unknown = outcome.request_sent == true
      end
    end
    if unknown then
      failure.outcome_unknown = true
      failure.message = failure.message .. "; the outcome is unknown: " ..
        "the server may have acted on the request, so it was not sent " ..
        "again (check the relay before retrying)"
      self:_log("warn", "%s %s: outcome unknown after attempt %d",
                op.method, path, attempt)
    end
    if not retry or attempt > max_retries then
      return nil, self:_redact_error(failure)
    end

    local delay = outcome.headers
      and policy.retry_after(outcome.headers, clock.time())
    if delay == nil then
      delay = policy.backoff(attempt)
    end
    if delay > self.config.max_retry_wait then
      delay = self.config.max_retry_wait
    end
    if deadline and clock.now() + delay >= deadline then
      failure.message = failure.message .. string.format(
        "; not retried: the deadline of %g s would pass first",
        opts.deadline)
      return nil, self:_redact_error(failure)
    end
    self:_log("info", "retrying %s %s in %.2f s after %s (attempt %d of %d)",
              op.method, path, delay,
              outcome.status and ("HTTP " .. outcome.status)
                or tostring(outcome.transport), attempt, max_retries + 1)
    clock.sleep(delay)
  end
end

-- Log a line at `level` when the client's log level allows it. The
-- text passes through redaction first.
function Client:_log(level, fmt, ...)
  if log.LEVELS[level] < self.log_level then
    return
  end
  local ok, line = pcall(string.format, fmt, ...)
  if not ok then
    line = fmt
  end
  self.logger(level, self:redact(line))
end

function Client:_log_request(request, attempt, max_retries)
  if log.LEVELS.debug < self.log_level then
    return
  end
  self:_log("debug", "%s %s attempt %d/%d headers [%s]%s", request.method,
            request.url, attempt, max_retries + 1,
            table.concat(log.redact_headers(request.headers), "; "),
            request.body and (" body " .. log.clip(
              log.redact_body(request.body))) or "")
end

function Client:_log_response(request, resp, attempt)
  if log.LEVELS.debug < self.log_level then
    return
  end
  local names = {}
  for name, value in pairs(resp.headers or {}) do
    names[#names + 1] = name .. ": " .. value
  end
  table.sort(names)
  self:_log("debug", "%s %s -> HTTP %d in %.1f ms (attempt %d) " ..
            "headers [%s] body %s", request.method, request.url,
            resp.status, (resp.total_time or 0) * 1000, attempt,
            table.concat(log.redact_headers(names), "; "),
            log.clip(log.redact_body(resp.body or "")))
end

-- Record the server's `Ratelimit` header.
function Client:_note_rate_limit(headers)
  local remaining, reset = policy.parse_ratelimit(headers["ratelimit"])
  if remaining then
    local state = self._rate
    state.remaining = remaining
    state.reset_at = self.clock.now() + reset
  end
  local quota, window = policy.parse_ratelimit_policy(
    headers["ratelimit-policy"])
  if quota then
    self._rate.quota, self._rate.window = quota, window
  end
end

-- Wait, when needed, for the server's quota to reset and for the
-- client-side limit. Returns true, or nil and an error when the wait
-- would pass the deadline.
function Client:_wait_for_rate_limit(deadline, fields)
  local state, clock = self._rate, self.clock
  local now = clock.now()
  local wait = 0

  if state.remaining == 0 and state.reset_at and state.reset_at > now then
    wait = math.min(state.reset_at - now, self.config.max_retry_wait)
  end

  -- `sent` contains the send time of each request in the window, in order.
  -- A request that must wait stores the time it will be sent before it
  -- sleeps, so that calls of a batch, which wait concurrently, queue
  -- behind it instead of all taking the same free slot.
  local limit = self.config.rate_limit
  local sent = state.sent
  if limit then
    local first = 1
    while sent[first] and sent[first] <= now - limit.per do
      first = first + 1
    end
    if first > 1 then
      table.move(sent, first, #sent + first, 1)
    end
    if #sent >= limit.requests then
      wait = math.max(wait,
                      sent[#sent - limit.requests + 1] + limit.per - now)
    end
  end

  if wait > 0 then
    if deadline and now + wait >= deadline then
      return nil, errors.new("APITimeoutError", string.format(
        "the rate limit needs a wait of %.2f s, past the deadline", wait),
        fields)
    end
    if limit then
      sent[#sent + 1] = now + wait
    end
    self:_log("info", "waiting %.2f s for the rate limit", wait)
    clock.sleep(wait)
    if state.remaining == 0 then
      state.remaining = nil
    end
  elseif limit then
    sent[#sent + 1] = now
  end
  return true
end

--- Describe the rate-limit state: what the server's last `Ratelimit`
-- headers contained and how much of the client-side limit is used.
-- @return a table with `remaining`, `reset_in` (seconds), `quota`,
--   `window`, and `client` (`requests`, `per`, `used`) when a client-side
--   limit is set
function Client:rate_limit_status()
  check_self(self, "rate_limit_status")
  local state, now = self._rate, self.clock.now()
  local status = {
    remaining = state.remaining,
    reset_in = state.reset_at and math.max(0, state.reset_at - now) or nil,
    quota = state.quota,
    window = state.window,
  }
  local limit = self.config.rate_limit
  if limit then
    local used = 0
    for _, at in ipairs(state.sent) do
      if at > now - limit.per then
        used = used + 1
      end
    end
    status.client = { requests = limit.requests, per = limit.per,
                      used = used }
  end
  return status
end

-- Map a transport failure to APITimeoutError, APIConnectionError or
-- ResponseDecodeError (a response over the size cap).
function Client:_transport_error(terr, fields)
  local message = self:redact(tostring(terr.message))
  fields.transport_error = terr.kind
  if terr.kind == "timeout" then
    return errors.new("APITimeoutError", "request timed out: " .. message,
                      fields)
  end
  if terr.kind == "too_large" then
    return errors.new("ResponseDecodeError", message ..
                      "; raise max_response_bytes if this is expected",
                      fields)
  end
  if terr.kind == "tls" then
    return errors.new("APIConnectionError", "TLS failed: " .. message ..
                      "; set ca_file if the server uses a private CA",
                      fields)
  end
  return errors.new("APIConnectionError", "connection failed: " .. message,
                    fields)
end

-- Resolve the account id of a call: params first, then the client's.
function Client:_account_id(params)
  local account_id = params and params.account_id
  if account_id == nil then
    account_id = self.config.account_id
  end
  if account_id == nil then
    return nil, errors.new("ValidationError", "missing account_id: pass " ..
      "account_id in the call, set it in cloudflare.new, or set " ..
      "CLOUDFLARE_ACCOUNT_ID", { field = "account_id" })
  end
  return account_id
end

M.check_self = check_self

return M
