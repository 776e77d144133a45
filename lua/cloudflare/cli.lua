--- The `cf-moq` command-line tool: manage MoQ relays from a shell.
--
--    local cli = require "cloudflare.cli"
--    os.exit(cli.main(arg))
--
-- `main` parses the arguments, runs one command against the API and
-- returns the exit status, so that specs can call it in-process.
-- @module cloudflare.cli

local cloudflare = require "cloudflare"
local core = require "cloudflare.core"
local errors = require "cloudflare.errors"
local log = require "cloudflare.log"
local validate = require "cloudflare.validate"

local M = {}

M.PROGRAM = "cf-moq"

--- Exit statuses, as documented in `cf-moq --help`.
M.EXIT = {
  OK = 0,
  UNEXPECTED = 1,
  USAGE = 2,
  CONFIG = 3,
  NOT_FOUND = 4,
  API = 5,
}
local EXIT = M.EXIT

-- ---------------------------------------------------------------------
-- Help texts

local TOP_HELP = [[
Usage: cf-moq [global flags] relays COMMAND [arguments] [flags]

Manage Cloudflare MoQ (Media over QUIC) relays.

Commands:
  relays list              list relays, newest first
  relays get ID            show a relay with its config and status
  relays create NAME       create a relay and print its two tokens
  relays update ID         change a relay's name or config
  relays delete ID         delete a relay
  relays rotate-token ID   replace one of a relay's tokens
  relays ensure NAME       create or update a relay to match the flags

ID is a relay's uid, as 'cf-moq relays list' prints it. Put -- before
a NAME or ID that starts with a dash. Run 'cf-moq relays COMMAND --help'
for the flags of a command.

Global flags, accepted before or after the command:
  --json              print the API's JSON result instead of a table
  --account-id ID     Cloudflare account id
                      (default: CLOUDFLARE_ACCOUNT_ID)
  --base-url URL      API base URL (default: CLOUDFLARE_BASE_URL, or
                      https://api.cloudflare.com/client/v4)
  --log-level LEVEL   log level of the library on stderr: debug, info,
                      warn, error or off (default: CLOUDFLARE_LOG, or
                      error); tokens and keys are redacted from logs
  -h, --help          print help for the command and exit
  --version           print the version and exit

Credentials are read from the environment only. No flag takes them,
because command lines are kept in shell history and are visible to
other users in the process list.
  CLOUDFLARE_API_TOKEN   API token, sent as a Bearer token (preferred)
  CLOUDFLARE_API_KEY     legacy global API key, used with
  CLOUDFLARE_EMAIL       the email of its account

Other environment variables:
  CF_MOQ_PROGRESS   progress line of 'relays list --all' on stderr:
                    auto (the default: only when stderr is a terminal),
                    always or never

Exit status:
  0   success
  1   unexpected internal error
  2   usage error: unknown command or flag, missing argument, invalid
      value
  3   configuration or authentication error: missing credentials or
      account id, credentials rejected (HTTP 401), permission denied
      (HTTP 403)
  4   relay not found (HTTP 404)
  5   any other API or connection error
]]

local RELAYS_HELP = [[
Usage: cf-moq [global flags] relays COMMAND [arguments] [flags]

Commands:
  list [--asc] [--per-page N] [--all] [--created-after TIME]
       [--created-before TIME]
                      list relays: uid, name and creation time
  get ID              show a relay with its config and status
  create NAME         create a relay and print its two tokens
  update ID [--name NAME] [config flags]
                      change a relay's name or config
  delete ID           delete a relay
  rotate-token ID --type subscribe|publish_subscribe
                      replace one of a relay's tokens and print it
  ensure NAME [config flags]
                      create or update a relay to match the flags

Config flags: --origin URL (repeatable), --origin-fallback on|off,
--lingering on|off, --lingering-max-ms N.

Run 'cf-moq relays COMMAND --help' for the details of a command, and
'cf-moq --help' for the global flags, credentials and exit statuses.
]]

local GLOBAL_HINT = [[

Global flags, credentials and exit statuses: run 'cf-moq --help'.
]]

local LIST_HELP = [[
Usage: cf-moq relays list [--asc] [--per-page N] [--all]
                          [--created-after TIME] [--created-before TIME]

List relays, newest first, one line each: UID, NAME and CREATED. Without
--all only one page is listed, and a line on stderr shows how many relays
match in total when there are more.

Flags:
  --asc                   list oldest first
  --per-page N            relays per page, an integer from 1 (default:
                          the server's page size; 50 with --all)
  --all                   follow every page and list every relay; a
                          progress line is shown on stderr while stderr
                          is a terminal (see CF_MOQ_PROGRESS)
  --created-after TIME    only relays created strictly after TIME, an
                          RFC 3339 date-time such as 2026-01-02T15:04:05Z
  --created-before TIME   only relays created strictly before TIME

With --json, prints the API's result and result_info:
{"result": [...], "result_info": {"count": N, "total": N}}, or with
--all a single array of every relay.
]]

local GET_HELP = [[
Usage: cf-moq relays get ID

Show a relay: uid, name, status, created, modified and every config
field, one per line. The API never returns a relay's tokens here; use
'cf-moq relays rotate-token' to get a new one.

With --json, prints the relay as the API returns it.
]]

local CREATE_HELP = [[
Usage: cf-moq relays create NAME

Create a relay named NAME and print it with its two tokens in full:
token_publish_subscribe (publish and subscribe) and token_subscribe
(subscribe only). The API shows the tokens only in this response, so
store them now. A new relay has lingering subscribe enabled with a
30000 ms ceiling and origin fallback disabled; change that with
'cf-moq relays update'.

With --json, prints the created relay as the API returns it, tokens
included.
]]

local CONFIG_FLAGS_HELP = [[
  --origin URL              add an upstream origin relay URL to
                            config.origin_fallback.origins; repeat the
                            flag for more, and the order is kept
  --origin-fallback on|off  set config.origin_fallback.enabled
  --lingering on|off        set config.lingering_subscribe.enabled
  --lingering-max-ms N      set config.lingering_subscribe.max_timeout_ms,
                            the relay's ceiling on the lingering subscribe
                            timeout, in milliseconds from 0 to 300000
]]

local CONFIG_SENT_HELP = [[
What is sent: only the parts of the config whose flags are given.
--origin and --origin-fallback send config.origin_fallback, and
--lingering and --lingering-max-ms send config.lingering_subscribe. The
API replaces a config sub-object that is sent as a whole, so a field of
it that is not given is not kept. For example, '--origin-fallback on'
alone sends {"origin_fallback": {"enabled": true}}, which leaves the
relay with no origins, and '--lingering on' alone does not keep a
stored max_timeout_ms. A sub-object with no flag given keeps its stored
value.

Origin fallback and lingering subscribe cannot both be enabled. A new
relay has lingering subscribe enabled, so to switch it to origin
fallback:
  cf-moq relays update ID --lingering off --origin-fallback on \
    --origin https://origin.example.com/moq
]]

local UPDATE_HELP = [[
Usage: cf-moq relays update ID [--name NAME] [--origin URL]...
                               [--origin-fallback on|off]
                               [--lingering on|off] [--lingering-max-ms N]

Change a relay's name or config, and print the relay. At least one flag
is required.

Flags:
  --name NAME               set the relay's name
]] .. CONFIG_FLAGS_HELP .. "\n" .. CONFIG_SENT_HELP .. [[

With --json, prints the updated relay as the API returns it.
]]

local DELETE_HELP = [[
Usage: cf-moq relays delete ID

Delete a relay. It disappears from 'get' and 'list' at once.

With --json, prints {"deleted": true, "uid": ID}.
]]

local ROTATE_HELP = [[
Usage: cf-moq relays rotate-token ID --type subscribe|publish_subscribe

Generate a new token of one type for a relay and print it in full. The
old token of that type stops working at once, and the API shows the new
one only in this response, so store it now.

Flags:
  --type TYPE   required: subscribe (the subscribe-only token) or
                publish_subscribe (the publish and subscribe token)

With --json, prints {"token": ..., "type": ...} as the API returns it.
]]

local ENSURE_HELP = [[
Usage: cf-moq relays ensure NAME [--origin URL]...
                                 [--origin-fallback on|off]
                                 [--lingering on|off]
                                 [--lingering-max-ms N]

Make a relay named NAME exist with the given config, for scripts that
run more than once. It creates the relay when no relay has that name,
updates its config when a given field differs from the stored one, and
otherwise leaves it unchanged. The output starts with the action taken
(created, updated or unchanged), then the relay. The two tokens are
printed in full after "created" only, because the API shows them only
once. When the relay is created but its config update then fails, the
relay and its tokens are printed before the error. Finding the relay
lists every relay of the account. Two relays with that name are an
error (exit status 5).

Flags:
]] .. CONFIG_FLAGS_HELP .. "\n" .. CONFIG_SENT_HELP .. [[

With --json, prints {"action": ACTION, "relay": {...}}.
]]

-- ---------------------------------------------------------------------
-- Text

-- Make a value safe to print on a terminal: control characters, which
-- could move the cursor or change colours, become \xNN escapes.
local function printable(text)
  return (tostring(text):gsub("[%c\127]", function(c)
    return string.format("\\x%02x", c:byte())
  end))
end

-- Maximum length, in bytes, of an argument echoed in an error message,
-- so that a secret pasted into the wrong place is not shown whole.
local MAX_ECHO = 40

-- Quote a command-line word for an error message.
local function quote(text)
  if #text > MAX_ECHO then
    text = text:sub(1, MAX_ECHO) .. "..."
  end
  return '"' .. printable(text) .. '"'
end

-- ---------------------------------------------------------------------
-- Flag values

-- Each parser turns the text of a flag value into its Lua value, or
-- returns nil and what the value must be.

local function parse_text(text)
  if text == "" then
    return nil, "expected a non-empty value"
  end
  return text
end

local function parse_switch(text)
  if text == "on" then
    return true
  elseif text == "off" then
    return false
  end
  return nil, "expected on or off"
end

local function parse_integer(text, min, max)
  local n = text:match("^%d+$") and math.tointeger(tonumber(text))
  if not n or n < min or n > max then
    return nil, string.format("expected an integer from %d to %d", min, max)
  end
  return n
end

local function parse_per_page(text)
  return parse_integer(text, 1, 2 ^ 31 - 1)
end

local function parse_max_timeout_ms(text)
  return parse_integer(text, validate.MAX_TIMEOUT_MS_MIN,
                       validate.MAX_TIMEOUT_MS_MAX)
end

local function parse_time(text)
  if not cloudflare.time.parse(text) then
    return nil, "expected an RFC 3339 date-time such as " ..
      "2026-01-02T15:04:05Z"
  end
  return text
end

-- An absolute URL with a scheme and no whitespace; the API checks more.
local function parse_url(text)
  if not text:match("^%a[%w+.-]*://[^%s/?#]+") or text:find("%s") then
    return nil, "expected an absolute URL such as " ..
      "https://origin.example.com/moq"
  end
  return text
end

local function parse_token_type(text)
  if not validate.TOKEN_TYPES[text] then
    return nil, "expected subscribe or publish_subscribe"
  end
  return text
end

local function parse_log_level(text)
  if not log.LEVELS[text] then
    return nil, "expected debug, info, warn, error or off"
  end
  return text
end

-- ---------------------------------------------------------------------
-- Commands and their flags

-- A flag spec without `value` is a switch that takes no value.
-- `parse` converts the value; `repeatable` collects every value in
-- order instead of rejecting a second one.
local GLOBAL_FLAGS = {
  json = {},
  version = {},
  ["account-id"] = { value = "ID", parse = parse_text },
  ["base-url"] = { value = "URL", parse = parse_text },
  ["log-level"] = { value = "LEVEL", parse = parse_log_level },
}

local CONFIG_FLAGS = {
  origin = { value = "URL", parse = parse_url, repeatable = true },
  ["origin-fallback"] = { value = "on|off", parse = parse_switch },
  lingering = { value = "on|off", parse = parse_switch },
  ["lingering-max-ms"] = { value = "N", parse = parse_max_timeout_ms },
}

local function with_flags(base, extra)
  local out = {}
  for name, spec in pairs(base) do out[name] = spec end
  for name, spec in pairs(extra) do out[name] = spec end
  return out
end

-- Flags that other tools take credentials from, named in a hint.
local CREDENTIAL_FLAGS = {
  ["api-token"] = true, token = true, ["api-key"] = true, key = true,
  email = true,
}

-- The commands of `cf-moq relays`. `run` is set further down.
local COMMANDS = {
  list = {
    help = LIST_HELP,
    flags = {
      asc = {},
      all = {},
      ["per-page"] = { value = "N", parse = parse_per_page },
      ["created-after"] = { value = "TIME", parse = parse_time },
      ["created-before"] = { value = "TIME", parse = parse_time },
    },
  },
  get = { help = GET_HELP, arguments = { "ID" }, flags = {} },
  create = { help = CREATE_HELP, arguments = { "NAME" }, flags = {} },
  update = {
    help = UPDATE_HELP,
    arguments = { "ID" },
    flags = with_flags(CONFIG_FLAGS, {
      name = { value = "NAME", parse = parse_text },
    }),
  },
  delete = { help = DELETE_HELP, arguments = { "ID" }, flags = {} },
  ["rotate-token"] = {
    help = ROTATE_HELP,
    arguments = { "ID" },
    flags = {
      type = { value = "TYPE", parse = parse_token_type },
    },
  },
  ensure = { help = ENSURE_HELP, arguments = { "NAME" },
             flags = CONFIG_FLAGS },
}

-- ---------------------------------------------------------------------
-- Argument parsing

-- The command path shown in usage errors, e.g. "cf-moq relays list".
local function command_path(parsed)
  local words = { M.PROGRAM }
  if parsed.group == "relays" then
    words[#words + 1] = parsed.group
  end
  if parsed.command then
    words[#words + 1] = parsed.command_name
  end
  return table.concat(words, " ")
end

-- Record the first usage error; parsing goes on so that a later --help
-- still prints help.
local function usage_error(parsed, message)
  if not parsed.error then
    parsed.error = message
  end
end

local function add_positional(parsed, word)
  if parsed.group == nil then
    if word ~= "relays" then
      usage_error(parsed, string.format(
        "unknown command %s (expected relays)", quote(word)))
    end
    parsed.group = word
  elseif parsed.command_name == nil then
    local command = COMMANDS[word]
    if not command then
      usage_error(parsed, string.format("unknown command %s for %s",
                                        quote(word), command_path(parsed)))
    end
    parsed.command_name = word
    parsed.command = command
  else
    parsed.arguments[#parsed.arguments + 1] = word
  end
end

local function store_flag(parsed, name, spec, text)
  local shown = "--" .. name
  local value = true
  if spec.value then
    local err
    value, err = spec.parse(text)
    if value == nil then
      return usage_error(parsed, string.format("invalid %s %s: %s", shown,
                                               quote(text), err))
    end
  end
  if spec.repeatable then
    local list = parsed.flags[name] or {}
    list[#list + 1] = value
    parsed.flags[name] = list
  elseif parsed.flags[name] ~= nil then
    return usage_error(parsed, shown .. " is given more than once")
  else
    parsed.flags[name] = value
  end
end

-- Handle the flag at argv[i]; returns the index of the next argument.
local function parse_flag(parsed, argv, i)
  local word = argv[i]
  if word == "-h" or word == "--help" then
    parsed.help = true
    return i + 1
  end

  local name, inline = word:match("^%-%-([^=]+)=(.*)$")
  name = name or word:match("^%-%-(.+)$")
  local spec = name and ((parsed.command and parsed.command.flags[name])
                         or GLOBAL_FLAGS[name])
  if not spec then
    -- The name only: a value after "=" may be a secret.
    local shown = word:match("^(%-%-?[^=]*)") or word
    local message = string.format("unknown flag %s for %s",
                                  quote(shown), command_path(parsed))
    if name and CREDENTIAL_FLAGS[name] then
      message = message .. " (credentials are read from the " ..
        "environment only, see 'cf-moq --help')"
    end
    usage_error(parsed, message)
    return i + 1
  end

  if not spec.value then
    if inline then
      usage_error(parsed, "--" .. name .. " takes no value")
    else
      store_flag(parsed, name, spec, nil)
    end
    return i + 1
  end
  if inline then
    store_flag(parsed, name, spec, inline)
    return i + 1
  end
  local text = argv[i + 1]
  -- A value that looks like a flag is more likely a forgotten value.
  if text == nil or text:match("^%-%-") then
    usage_error(parsed, string.format("--%s needs a value %s (write " ..
      "--%s=VALUE for a value that starts with --)", name, spec.value,
      name))
    return i + 1
  end
  store_flag(parsed, name, spec, text)
  return i + 2
end

--- Parse the arguments of `cf-moq`.
-- @tparam table argv the arguments, from index 1
-- @return a table with `group`, `command_name`, `command`, `arguments`,
--   `flags` (by name without dashes), `help`, and `error` (the first
--   usage error, or nil)
function M.parse(argv)
  local parsed = { arguments = {}, flags = {} }
  local i, after_dashes = 1, false
  while argv[i] ~= nil do
    local word = argv[i]
    if after_dashes or word == "-" or not word:match("^%-") then
      add_positional(parsed, word)
      i = i + 1
    elseif word == "--" then
      after_dashes = true
      i = i + 1
    else
      i = parse_flag(parsed, argv, i)
    end
  end
  return parsed
end

-- Check the positional arguments and the flags that go together.
local function check_command(parsed)
  if parsed.group == nil then
    return "missing command (expected relays)"
  end
  local command = parsed.command
  if command == nil then
    return "missing command for cf-moq relays (expected list, get, " ..
      "create, update, delete, rotate-token or ensure)"
  end
  local expected = command.arguments or {}
  local given = parsed.arguments
  if #given < #expected then
    return string.format("missing %s for %s", expected[#given + 1],
                         command_path(parsed))
  end
  if #given > #expected then
    return string.format("unexpected argument %s for %s",
                         quote(given[#expected + 1]), command_path(parsed))
  end
  for i, name in ipairs(expected) do
    if given[i] == "" then
      return string.format("%s must not be empty", name)
    end
  end
  if parsed.command_name == "rotate-token" and not parsed.flags.type then
    return "missing --type subscribe|publish_subscribe for " ..
      command_path(parsed)
  end
  if parsed.command_name == "update" and parsed.flags.name == nil
      and M.config_from_flags(parsed.flags) == nil then
    return "nothing to update: pass --name or a config flag"
  end
  return nil
end

-- ---------------------------------------------------------------------
-- Output for people

-- Columns a string takes: UTF-8 characters, or bytes when not UTF-8.
local function display_width(text)
  return utf8.len(text) or #text
end

local function pad(text, width)
  return text .. string.rep(" ", width - display_width(text))
end

-- Write rows of cells as aligned columns, two spaces apart.
local function write_columns(stream, rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, display_width(cell))
    end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i < #row and pad(cell, widths[i]) or cell
    end
    stream:write(table.concat(cells, "  "), "\n")
  end
end

-- Fields in the order a person reads them; any other field follows, by
-- name, and the tokens come last.
local FIELD_RANK = {
  action = 1, uid = 2, name = 3, status = 4, created = 5, modified = 6,
  config = 7, lingering_subscribe = 10, origin_fallback = 11,
  enabled = 20, max_timeout_ms = 21, origins = 22, url = 30, type = 80,
  token_publish_subscribe = 90, token_subscribe = 91, token = 92,
}

local function sorted_keys(object)
  local keys = {}
  for key in pairs(object) do
    if type(key) == "string" then
      keys[#keys + 1] = key
    end
  end
  table.sort(keys, function(a, b)
    local ra, rb = FIELD_RANK[a] or 50, FIELD_RANK[b] or 50
    if ra ~= rb then
      return ra < rb
    end
    return a < b
  end)
  return keys
end

local function scalar_text(value)
  if value == core.null then
    return "null"
  elseif math.type(value) == "float" then
    return string.format("%.14g", value)
  end
  return printable(value)
end

local function is_array(value)
  local mt = getmetatable(value)
  if mt and mt.__jsontype then
    return mt.__jsontype == "array"
  end
  return #value > 0
end

-- Append `{ path, text }` rows for a value and everything below it,
-- with paths such as config.origin_fallback.origins[1].url.
local function flatten(rows, path, value)
  if type(value) ~= "table" then
    rows[#rows + 1] = { path, scalar_text(value) }
    return
  end
  if is_array(value) then
    if #value == 0 then
      rows[#rows + 1] = { path, "(none)" }
    end
    for i, item in ipairs(value) do
      flatten(rows, string.format("%s[%d]", path, i), item)
    end
    return
  end
  local keys = sorted_keys(value)
  if #keys == 0 then
    rows[#rows + 1] = { path, "(none)" }
  end
  for _, key in ipairs(keys) do
    local child = path == "" and printable(key) or path .. "." ..
      printable(key)
    flatten(rows, child, value[key])
  end
end

-- Write an object as field and value lines.
local function write_fields(stream, object)
  local rows = {}
  flatten(rows, "", object)
  write_columns(stream, rows)
end

-- A relay from get or update, with `status` shown even when the API
-- leaves it out (the relay is not connected).
local function relay_fields(relay, action)
  local fields = {}
  for key, value in pairs(relay) do
    fields[key] = value
  end
  if fields.status == nil then
    fields.status = "(none)"
  end
  fields.action = action
  return fields
end

-- ---------------------------------------------------------------------
-- Output for programs

-- Copy an array so that the encoder writes it as [] even when empty.
local function json_array(items)
  local out = setmetatable({}, core.array_mt)
  for i, item in ipairs(items) do
    out[i] = item
  end
  return out
end

local function write_json(out, value)
  local text, err = core.json_encode(value)
  if not text then
    error("cannot encode the result as JSON: " .. tostring(err), 0)
  end
  out.stdout:write(text, "\n")
end

-- ---------------------------------------------------------------------
-- Errors and progress

local function report(out, message)
  out.stderr:write(M.PROGRAM, ": ", message, "\n")
end

-- ValidationError fields that come from the credentials or account.
local CONFIG_FIELDS = {
  api_token = true, api_key = true, email = true, account_id = true,
}

-- Cloudflare's "Invalid request headers" code, with a malformed
-- Authorization header or a wrong global API key in its error_chain.
local INVALID_HEADERS_CODE = 6003

--- Return the exit status for an error of the library.
function M.exit_status(err)
  if not errors.is(err) then
    return EXIT.UNEXPECTED
  end
  local name = err.name
  if name == "ValidationError" then
    return CONFIG_FIELDS[err.field] and EXIT.CONFIG or EXIT.USAGE
  end
  if name == "AuthenticationError" or name == "PermissionDeniedError" then
    return EXIT.CONFIG
  end
  if name == "BadRequestError" and err.code == INVALID_HEADERS_CODE then
    return EXIT.CONFIG
  end
  if name == "NotFoundError" then
    return EXIT.NOT_FOUND
  end
  return EXIT.API
end

local function fail(out, err)
  report(out, tostring(err))
  return M.exit_status(err)
end

local Progress = {}
Progress.__index = Progress

-- A progress line on `stream`, rewritten in place with \r.
local function new_progress(stream, enabled)
  return setmetatable({ stream = stream, enabled = enabled, width = 0 },
                      Progress)
end

function Progress:update(count, total)
  if not self.enabled then
    return
  end
  local text
  if total then
    text = string.format("%s: fetched %d of %d relays", M.PROGRAM, count,
                         total)
  else
    text = string.format("%s: fetched %d relays", M.PROGRAM, count)
  end
  -- Spaces cover the end of a longer previous line.
  local padding = string.rep(" ", math.max(0, self.width - #text))
  self.stream:write("\r", text, padding)
  self.stream:flush()
  self.width = math.max(self.width, #text)
end

function Progress:clear()
  if self.enabled and self.width > 0 then
    self.stream:write("\r", string.rep(" ", self.width), "\r")
    self.stream:flush()
    self.width = 0
  end
end

local PROGRESS_MODES = { auto = true, always = true, never = true }

-- Decide whether to show progress, from CF_MOQ_PROGRESS and whether
-- stderr is a terminal.
local function progress_enabled(context)
  local mode = context.env("CF_MOQ_PROGRESS") or "auto"
  if mode == "always" then
    return true
  elseif mode == "never" then
    return false
  end
  if context.out.stderr_is_tty ~= nil then
    return context.out.stderr_is_tty
  end
  return os.execute("test -t 2") == true
end

-- ---------------------------------------------------------------------
-- Commands

local function list_params(flags)
  return {
    asc = flags.asc or nil,
    per_page = flags["per-page"],
    created_after = flags["created-after"],
    created_before = flags["created-before"],
  }
end

local function write_relay_table(out, relays)
  if #relays == 0 then
    report(out, "no relays found")
    return
  end
  local rows = { { "UID", "NAME", "CREATED" } }
  for _, relay in ipairs(relays) do
    rows[#rows + 1] = { printable(relay.uid), printable(relay.name),
                        printable(relay.created) }
  end
  write_columns(out.stdout, rows)
end

-- Walk every page. The first page's result_info.total counts every relay
-- that the walk will return, so it is the progress line's total.
local function list_all(context, relays, params)
  local progress = new_progress(context.out.stderr,
                                progress_enabled(context))
  local all, total = {}, nil
  for page, err in relays:pages(params) do
    if not page then
      progress:clear()
      return nil, err
    end
    if total == nil and page.result_info then
      total = page.result_info.total
    end
    for _, relay in ipairs(page) do
      all[#all + 1] = relay
    end
    progress:update(#all, total)
  end
  progress:clear()
  return all
end

local function run_list(context, relays)
  local flags, out = context.flags, context.out
  local params = list_params(flags)

  if flags.all then
    local all, err = list_all(context, relays, params)
    if not all then return fail(out, err) end
    if flags.json then
      write_json(out, json_array(all))
    else
      write_relay_table(out, all)
    end
    return EXIT.OK
  end

  local page, err = relays:list(params)
  if not page then return fail(out, err) end
  if flags.json then
    write_json(out, { result = json_array(page),
                      result_info = page.result_info })
    return EXIT.OK
  end
  write_relay_table(out, page)
  local info = page.result_info or {}
  if info.total and info.total > #page then
    report(out, string.format("showing %d of %d relays; pass --all to " ..
                              "list every page", #page, info.total))
  end
  return EXIT.OK
end

local function run_get(context, relays)
  local relay, err = relays:get(context.arguments[1])
  if not relay then return fail(context.out, err) end
  if context.flags.json then
    write_json(context.out, relay)
  else
    write_fields(context.out.stdout, relay_fields(relay))
  end
  return EXIT.OK
end

local function remind_tokens(out)
  report(out, "store the tokens now: the API shows them only in this " ..
         "response")
end

local function run_create(context, relays)
  local relay, err = relays:create { name = context.arguments[1] }
  if not relay then return fail(context.out, err) end
  if context.flags.json then
    write_json(context.out, relay)
  else
    write_fields(context.out.stdout, relay)
    remind_tokens(context.out)
  end
  return EXIT.OK
end

--- Build the config that the config flags describe, or nil when no
-- config flag is given. Only the sub-objects with a flag are present.
function M.config_from_flags(flags)
  local config = {}
  local origins, fallback = flags.origin, flags["origin-fallback"]
  if origins ~= nil or fallback ~= nil then
    config.origin_fallback = { enabled = fallback }
    if origins then
      local list = {}
      for i, url in ipairs(origins) do
        list[i] = { url = url }
      end
      config.origin_fallback.origins = list
    end
  end
  local lingering, max_ms = flags.lingering, flags["lingering-max-ms"]
  if lingering ~= nil or max_ms ~= nil then
    config.lingering_subscribe = { enabled = lingering,
                                   max_timeout_ms = max_ms }
  end
  if next(config) == nil then
    return nil
  end
  return config
end

local function run_update(context, relays)
  local flags, out = context.flags, context.out
  local params = { name = flags.name, config = M.config_from_flags(flags) }
  local relay, err = relays:update(context.arguments[1], params)
  if not relay then return fail(out, err) end
  if flags.json then
    write_json(out, relay)
  else
    write_fields(out.stdout, relay_fields(relay))
  end
  return EXIT.OK
end

local function run_delete(context, relays)
  local uid = context.arguments[1]
  local ok, err = relays:delete(uid)
  if not ok then return fail(context.out, err) end
  if context.flags.json then
    write_json(context.out, { deleted = true, uid = uid })
  else
    context.out.stdout:write("Deleted relay ", printable(uid), "\n")
  end
  return EXIT.OK
end

local function run_rotate(context, relays)
  local token, err = relays.tokens:rotate(context.arguments[1],
                                          { type = context.flags.type })
  if not token then return fail(context.out, err) end
  if context.flags.json then
    write_json(context.out, token)
  else
    write_fields(context.out.stdout, token)
    report(context.out, "store the token now: the API shows it only in " ..
           "this response")
  end
  return EXIT.OK
end

local function write_ensured(context, relay, action)
  local out = context.out
  if context.flags.json then
    write_json(out, { action = action, relay = relay })
  else
    write_fields(out.stdout, relay_fields(relay, action))
  end
  if action == "created" and not context.flags.json then
    remind_tokens(out)
  end
end

local function run_ensure(context, relays)
  local relay, action = relays:ensure {
    name = context.arguments[1],
    config = M.config_from_flags(context.flags),
  }
  if not relay then
    local err = action
    -- The relay was created but its config update failed: its tokens
    -- exist only in this process, so print them before the error.
    if type(err) == "table" and err.relay then
      write_ensured(context, err.relay, "created")
    end
    return fail(context.out, err)
  end
  write_ensured(context, relay, action)
  return EXIT.OK
end

COMMANDS.list.run = run_list
COMMANDS.get.run = run_get
COMMANDS.create.run = run_create
COMMANDS.update.run = run_update
COMMANDS.delete.run = run_delete
COMMANDS["rotate-token"].run = run_rotate
COMMANDS.ensure.run = run_ensure

-- ---------------------------------------------------------------------
-- Main

-- Turn `env` (nil, a table or a function) into a lookup function where
-- an empty value counts as unset.
local function env_lookup(env)
  local get
  if env == nil then
    get = os.getenv
  elseif type(env) == "table" then
    get = function(name) return env[name] end
  else
    get = env
  end
  return function(name)
    local value = get(name)
    if value == "" then
      return nil
    end
    return value
  end
end

-- Drop the "file:line: " that error() puts before a message.
local function strip_position(message)
  return (tostring(message):gsub("^[^:\n]+:%d+: ", ""))
end

local DEFAULT_LOG_LEVEL = "error"

local function new_client(context)
  local flags, env, out = context.flags, context.env, context.out
  local options = {
    api_token = env("CLOUDFLARE_API_TOKEN"),
    api_key = env("CLOUDFLARE_API_KEY"),
    email = env("CLOUDFLARE_EMAIL"),
    account_id = flags["account-id"] or env("CLOUDFLARE_ACCOUNT_ID"),
    base_url = flags["base-url"] or env("CLOUDFLARE_BASE_URL"),
    -- Every failure ends in one error line from this tool, so by default
    -- the library's warnings, which repeat that line, are not logged.
    log_level = flags["log-level"] or env("CLOUDFLARE_LOG") or
      DEFAULT_LOG_LEVEL,
    logger = function(level, message)
      out.stderr:write(M.PROGRAM, ": ", level, ": ", message, "\n")
    end,
  }
  if not flags["log-level"] and env("CLOUDFLARE_LOG") then
    local _, level_err = parse_log_level(options.log_level)
    if level_err then
      report(out, string.format("invalid CLOUDFLARE_LOG %s: %s",
                                quote(options.log_level), level_err))
      return nil, EXIT.CONFIG
    end
  end
  -- The library reports these too, but in terms of its own options.
  if not options.api_token and not options.api_key then
    report(out, "missing credentials: set CLOUDFLARE_API_TOKEN, or " ..
           "CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL")
    return nil, EXIT.CONFIG
  end
  if not options.account_id then
    report(out, "missing account id: pass --account-id or set " ..
           "CLOUDFLARE_ACCOUNT_ID")
    return nil, EXIT.CONFIG
  end

  local ok, client = pcall(cloudflare.new, options)
  if not ok then
    report(out, strip_position(client))
    -- A bad --base-url is a usage error; a bad variable is configuration.
    return nil, flags["base-url"] and EXIT.USAGE or EXIT.CONFIG
  end
  return client
end

local function print_help(parsed, out)
  local text = TOP_HELP
  if parsed.command then
    text = parsed.command.help .. GLOBAL_HINT
  elseif parsed.group == "relays" then
    text = RELAYS_HELP
  end
  out.stdout:write(text)
  return EXIT.OK
end

local function run(argv, env, out)
  local parsed = M.parse(argv)
  if parsed.help then
    return print_help(parsed, out)
  end
  local message = parsed.error
  if not message and parsed.flags.version then
    out.stdout:write(M.PROGRAM, " ", cloudflare._VERSION, "\n")
    return EXIT.OK
  end
  message = message or check_command(parsed)
  if message then
    report(out, string.format("%s; run '%s --help' for usage", message,
                              command_path(parsed)))
    return EXIT.USAGE
  end

  local mode = env("CF_MOQ_PROGRESS")
  if mode and not PROGRESS_MODES[mode] then
    report(out, string.format("invalid CF_MOQ_PROGRESS %s: expected " ..
                              "auto, always or never", quote(mode)))
    return EXIT.CONFIG
  end

  local context = { flags = parsed.flags, arguments = parsed.arguments,
                    env = env, out = out }
  local client, status = new_client(context)
  if not client then
    return status
  end
  local code = parsed.command.run(context, client.moq.relays)
  client:close()
  return code
end

--- Run `cf-moq` and return its exit status.
-- @tparam table argv the arguments from index 1, as in `arg`
-- @param[opt] env environment variables: a table, or a function such
--   as `os.getenv` (the default). The library itself still reads the
--   process environment for any setting left unset.
-- @tparam[opt] table streams `stdout` and `stderr` (default `io.stdout`
--   and `io.stderr`), and `stderr_is_tty` (a boolean; by default the
--   file descriptor 2 is tested)
-- @treturn integer the exit status, one of `EXIT`
function M.main(argv, env, streams)
  streams = streams or {}
  local out = {
    stdout = streams.stdout or io.stdout,
    stderr = streams.stderr or io.stderr,
    stderr_is_tty = streams.stderr_is_tty,
  }
  local ok, code = pcall(run, argv or {}, env_lookup(env), out)
  if not ok then
    pcall(report, out, "unexpected error: " .. printable(code))
    return EXIT.UNEXPECTED
  end

  -- A full disk or a closed pipe shows only when the output is flushed.
  local flushed, flush_err = out.stdout:flush()
  if not flushed then
    pcall(report, out, "writing the output failed: " ..
          printable(flush_err))
    return EXIT.UNEXPECTED
  end
  return code
end

return M
