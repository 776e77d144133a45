-- Record of API requests, as received, for tests to inspect.

local json = require "moq_emulator.json"

local journal = {}

-- Number of most recent entries kept.
journal.MAX_ENTRIES = 10000

-- Entries live at indexes first..last, so dropping the oldest is O(1).
local entries, first, last = {}, 1, 0

local entry_keys = {
  "method", "uri", "path", "query", "headers", "body", "connection",
}

local function copy_headers(headers)
  local result = {}
  for name, value in pairs(headers) do
    if type(value) == "table" then
      local values = json.array()
      for i, item in ipairs(value) do
        values[i] = item
      end
      value = values
    end
    result[name] = value
  end
  return result
end

--- Records a request as `request.read` returns it.
function journal.record(req)
  last = last + 1
  entries[last] = json.object({
    method = req.method,
    uri = req.uri,
    path = req.path,
    query = req.query,
    headers = copy_headers(req.headers),
    body = req.body,
    -- nginx's serial number of the connection, so that tests can tell
    -- whether requests shared one (keep-alive).
    connection = tonumber(ngx.var.connection),
  }, entry_keys)
  if last - first + 1 > journal.MAX_ENTRIES then
    entries[first] = nil
    first = first + 1
  end
end

--- Returns the recorded requests, oldest first.
function journal.list()
  local result = json.array()
  for i = first, last do
    result[#result + 1] = entries[i]
  end
  return result
end

--- Removes every entry.
function journal.clear()
  entries, first, last = {}, 1, 0
end

return journal
