--- An interactive prompt for exploring the API, run by `bin/cf-repl`.
--
-- Reads Lua from standard input and runs it with `cloudflare`, a client
-- `cf` and `relays` (`cf.moq.relays`) as globals, then prints what each
-- chunk returns. Tables are pretty-printed with their token fields
-- masked, and every line it prints passes through the client's
-- redaction of the secrets that it stores: the API token or key, and
-- the relay tokens it has received.
-- @module cloudflare.repl

local cloudflare = require "cloudflare"

local M = {}

M.PROMPT = "cf> "
M.CONTINUATION_PROMPT = ">> "

-- Column that a pretty-printed table stays within when it fits on one
-- line. A longer table gets one entry per line.
local WIDTH = 78
-- Tables nested deeper than this are shown as `{...}`.
local MAX_DEPTH = 6
-- Entries shown per table. The rest are only counted.
local MAX_ENTRIES = 100

-- Fields whose values are masked: token, token_publish_subscribe and
-- token_subscribe.
local SECRET_FIELDS = cloudflare.models.SECRET_FIELDS

-- Lua 5.4's reserved words, which cannot be written as bare keys.
local KEYWORDS = {}
for _, word in ipairs { "and", "break", "do", "else", "elseif", "end",
    "false", "for", "function", "goto", "if", "in", "local", "nil", "not",
    "or", "repeat", "return", "then", "true", "until", "while" } do
  KEYWORDS[word] = true
end

M.HELP = [[
Globals:
  cloudflare     the module: new, mask, time, errors, models
  cf             a client made by cloudflare.new() from CLOUDFLARE_*
  relays         cf.moq.relays

Relays (each call returns the result, or nil and an error):
  relays:list { asc = true, per_page = 50 }   one page; page:next_page()
  relays:get(uid)
  relays:create { name = "Live" }             shows both tokens, masked
  relays:update(uid, { name = ..., config = ... })
  relays:delete(uid)
  relays.tokens:rotate(uid, { type = "subscribe" })

Helpers:
  relays:each(params)    iterator over every relay, across pages
  relays:pages(params)   iterator over pages
  relays:all(params)     every relay in one array
  relays:find_by_name(name)
  relays:ensure { name = ..., config = ... }  returns relay, action

Client and module:
  cf:batch(calls, { concurrency = 8 })   calls: functions of a client
  cf:rate_limit_status()  cf:close()
  cloudflare.new(opts)  cloudflare.mask(token)
  cloudflare.time.parse(text)  cloudflare.time.format(epoch)
  cloudflare.errors.is(err, "NotFoundError")

A line is run as an expression first, so `relays:list()` prints the
page, and `=expr` does the same. Locals last for one chunk only.
Results and print() hide tokens: token fields appear as
<hidden, N characters>, and any secret that the client stores as
[REDACTED]. io.write prints text unchanged.]]

local function has_tostring(value)
  local mt = getmetatable(value)
  return type(mt) == "table" and mt.__tostring ~= nil
end

local function type_label(value)
  local mt = getmetatable(value)
  if type(mt) == "table" and type(mt.__name) == "string" then
    return mt.__name .. " "
  end
  return ""
end

-- Quote a string as Lua source, with line breaks escaped so that it
-- stays on one line.
local function quote(text)
  return (string.format("%q", text):gsub("\\\n", "\\n"))
end

local function format_key(key)
  if type(key) == "string" then
    if key:match("^[%a_][%w_]*$") and not KEYWORDS[key] then
      return key
    end
    return "[" .. quote(key) .. "]"
  end
  return "[" .. tostring(key) .. "]"
end

-- Order keys by type name, then by value, so output is stable.
local function key_before(a, b)
  local type_a, type_b = type(a), type(b)
  if type_a ~= type_b then
    return type_a < type_b
  end
  if type_a == "number" or type_a == "string" then
    return a < b
  end
  return tostring(a) < tostring(b)
end

-- The length of the sequence 1..n stored in `t`, without metamethods.
local function sequence_length(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do
    n = n + 1
  end
  return n
end

-- The keys of `t` outside its sequence part, sorted.
local function other_keys(t, length)
  local keys = {}
  for key in next, t do
    if not (math.type(key) == "integer" and key >= 1 and key <= length) then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys, key_before)
  return keys
end

local render

local function render_scalar(value)
  if type(value) == "string" then
    return quote(value)
  end
  return tostring(value)
end

-- Join rendered entries into `{ a, b }` when that fits, or one entry per
-- line otherwise.
local function join_entries(label, entries, indent)
  if #entries == 0 then
    return label .. "{}"
  end
  local flat = label .. "{ " .. table.concat(entries, ", ") .. " }"
  if #flat + indent <= WIDTH and not flat:find("\n", 1, true) then
    return flat
  end
  local pad = string.rep(" ", indent + 2)
  local lines = { label .. "{" }
  for _, entry in ipairs(entries) do
    lines[#lines + 1] = pad .. entry .. ","
  end
  lines[#lines + 1] = string.rep(" ", indent) .. "}"
  return table.concat(lines, "\n")
end

local function render_table(t, indent, depth, seen)
  local label = type_label(t)
  if seen[t] then
    return label .. "{<cycle>}"
  end
  if depth > MAX_DEPTH then
    return label .. "{...}"
  end
  seen[t] = true

  local entries = {}
  local length = sequence_length(t)
  local keys = other_keys(t, length)
  local total = length + #keys
  for i = 1, math.min(length, MAX_ENTRIES) do
    entries[#entries + 1] = render(rawget(t, i), indent + 2, depth + 1,
                                   seen)
  end
  for _, key in ipairs(keys) do
    if #entries >= MAX_ENTRIES then
      break
    end
    local value = rawget(t, key)
    local text
    if SECRET_FIELDS[key] then
      text = cloudflare.mask(value)
    else
      text = render(value, indent + 2, depth + 1, seen)
    end
    entries[#entries + 1] = format_key(key) .. " = " .. text
  end
  if total > #entries then
    entries[#entries + 1] = string.format("... (%d more)",
                                          total - #entries)
  end

  seen[t] = nil
  return join_entries(label, entries, indent)
end

-- Render a value as it appears inside a table.
function render(value, indent, depth, seen)
  if type(value) ~= "table" then
    return render_scalar(value)
  end
  if has_tostring(value) then
    return tostring(value)
  end
  return render_table(value, indent, depth, seen)
end

--- Format a value for display. A table without `__tostring` is shown
-- as a constructor, prefixed with its metatable's `__name`, with the
-- fields `token`, `token_publish_subscribe` and `token_subscribe`
-- masked. A value with `__tostring` shows its own text. When it is also
-- a sequence, such as a page of relays, its items follow one per line.
-- @param value any value
-- @treturn string the text, which may span several lines
function M.format(value)
  if type(value) == "string" then
    return value
  end
  if type(value) ~= "table" then
    return tostring(value)
  end
  if not has_tostring(value) then
    return render_table(value, 0, 1, {})
  end

  local lines = { tostring(value) }
  local length = sequence_length(value)
  for i = 1, math.min(length, MAX_ENTRIES) do
    lines[#lines + 1] = string.format("  [%d] %s", i,
      render(rawget(value, i), 2, 2, {}))
  end
  if length > MAX_ENTRIES then
    lines[#lines + 1] = string.format("  ... (%d more)",
                                      length - MAX_ENTRIES)
  end
  return table.concat(lines, "\n")
end

--- Describe a raised error in one line.
-- @param err the error value
-- @treturn string
function M.format_error(err)
  -- lua5.4 (lua.c) raises "interrupted!" on the first Ctrl-C of a script
  -- and then restores the default action, so the next Ctrl-C ends it.
  if type(err) == "string" and err:find("interrupted!$") then
    return "interrupted; a second Ctrl-C ends the prompt"
  end
  local text
  if type(err) == "table" and not has_tostring(err) then
    text = render_table(err, 0, 1, {})
  else
    text = tostring(err)
  end
  return (text:gsub("%s*[\r\n]+%s*", " "))
end

--- Compile the text typed so far. A chunk that compiles as an
-- expression is preferred, so that its values are printed. A leading
-- `=` means `return`.
-- @tparam string source the lines typed so far, joined with newlines
-- @tparam table env the globals of the chunk
-- @return the compiled function; or nil, true and the syntax error when
--   the chunk is incomplete; or nil, false and the syntax error
function M.compile(source, env)
  local code = source
  if code:sub(1, 1) == "=" then
    code = "return " .. code:sub(2)
  end
  local fn = load("return " .. code, "=stdin", "t", env)
  if fn then
    return fn
  end
  local err
  fn, err = load(code, "=stdin", "t", env)
  if fn then
    return fn
  end
  if err:sub(-5) == "<eof>" then
    return nil, true, err
  end
  return nil, false, err
end

-- The banner: what is loaded, where the client points and how to quit.
local function banner(client)
  local config = client.config
  local lines = {
    string.format("lua-cloudflare %s on %s, API at %s",
                  tostring(cloudflare._VERSION), _VERSION,
                  config.base_url),
    "Ready: cf (a client), relays (cf.moq.relays), cloudflare " ..
      "(the module).",
    "help() lists the methods. Quit with Ctrl-D or os.exit().",
  }
  if client.auth == "none" then
    lines[#lines + 1] = "No credentials: set CLOUDFLARE_API_TOKEN, or " ..
      "CLOUDFLARE_API_KEY and\nCLOUDFLARE_EMAIL, then restart."
  end
  if config.account_id == nil then
    lines[#lines + 1] = "No account id: set CLOUDFLARE_ACCOUNT_ID, or " ..
      "pass account_id in each call."
  end
  return table.concat(lines, "\n")
end
M.banner = banner

local Session = {}
Session.__index = Session

-- Replace the secrets stored by the startup client, and by a client
-- later assigned to the global `cf`, with `[REDACTED]`.
function Session:redact(text)
  text = self.client:redact(text)
  local current = rawget(self.env, "cf")
  if current ~= self.client
      and getmetatable(current) == getmetatable(self.client) then
    text = current:redact(text)
  end
  return text
end

function Session:write(text)
  self.output:write(self:redact(text), "\n")
  self.output:flush()
end

function Session:write_error(text)
  self.output:flush()
  self.errors:write("error: ", self:redact(text), "\n")
  self.errors:flush()
end

function Session:print_results(results)
  if results.n == 0 then
    return
  end
  local parts = {}
  for i = 1, results.n do
    parts[i] = M.format(results[i])
  end
  self:write(table.concat(parts, "\t"))
end

-- Run one compiled chunk and print its values or its error.
function Session:run(fn)
  local results = table.pack(xpcall(fn, function(err) return err end))
  if not results[1] then
    self:write_error(M.format_error(results[2]))
    return
  end
  table.remove(results, 1)
  results.n = results.n - 1
  local ok, err = pcall(self.print_results, self, results)
  if not ok then
    self:write_error("cannot print the result: " .. M.format_error(err))
  end
end

-- Read and handle one line. Returns false at end of input.
function Session:step()
  self.output:write(self.pending and M.CONTINUATION_PROMPT or M.PROMPT)
  self.output:flush()
  local line = self.input:read("l")
  if line == nil then
    -- End the prompt's line, then report a chunk left unfinished.
    self.output:write("\n")
    if self.pending then
      local _, _, err = M.compile(self.pending, self.env)
      self:write_error(M.format_error(err))
      self.pending = nil
    end
    return false
  end
  if self.pending then
    line = self.pending .. "\n" .. line
  elseif line:match("^%s*$") then
    return true
  end

  local fn, incomplete, err = M.compile(line, self.env)
  if incomplete then
    self.pending = line
    return true
  end
  self.pending = nil
  if not fn then
    self:write_error(M.format_error(err))
    return true
  end
  self:run(fn)
  return true
end

-- Install the globals that chunks see.
local function install_globals(session)
  local env = session.env
  env.cloudflare = cloudflare
  env.cf = session.client
  env.relays = session.client.moq.relays
  env.help = function()
    session:write(M.HELP)
  end
  -- print, with the same redaction as the printed results.
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do
      parts[i] = tostring(parts[i])
    end
    session:write(table.concat(parts, "\t", 1, parts.n))
  end
end

--- Run the prompt until end of input.
-- @tparam table client the client bound to `cf`
-- @tparam[opt] table opts `input`, `output` and `errors` (files, default
--   the standard streams) and `env` (the globals, default `_G`)
-- @treturn integer the exit status, 0
function M.run(client, opts)
  opts = opts or {}
  local session = setmetatable({
    client = client,
    input = opts.input or io.stdin,
    output = opts.output or io.stdout,
    errors = opts.errors or io.stderr,
    env = opts.env or _G,
  }, Session)
  install_globals(session)
  session:write(banner(client))

  while true do
    -- Ctrl-C becomes the error "interrupted!" at the next Lua
    -- instruction, which may fall outside the chunk's own xpcall.
    local ok, more = pcall(session.step, session)
    if not ok then
      session.pending = nil
      session:write_error(M.format_error(more))
    elseif not more then
      break
    end
  end
  session.output:flush()
  client:close()
  return 0
end

M.USAGE = [[
Usage: cf-repl

Start a Lua prompt with a lua-cloudflare client `cf`, made from the
environment: CLOUDFLARE_API_TOKEN (or CLOUDFLARE_API_KEY and
CLOUDFLARE_EMAIL), CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_BASE_URL
(default https://api.cloudflare.com/client/v4). `make repl` starts it
against the local emulator. Type help() at the prompt for the methods.]]

--- Parse the command line, make the client and run the prompt.
-- @tparam table args the command-line arguments
-- @treturn integer the exit status: 0, 1 when the client cannot be
--   made, 2 for an invalid argument
function M.main(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.USAGE, "\n")
    return 0
  end
  if args[1] ~= nil then
    io.stderr:write("cf-repl: unexpected argument ", quote(args[1]),
                    "\nRun 'cf-repl --help' for usage.\n")
    return 2
  end
  local ok, client = pcall(cloudflare.new)
  if not ok then
    io.stderr:write("cf-repl: ", M.format_error(client), "\n")
    return 1
  end
  return M.run(client)
end

return M
