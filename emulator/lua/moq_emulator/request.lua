-- Reading the current nginx request.

local request = {}

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  -- nginx writes a body larger than client_body_buffer_size to a file.
  local path = ngx.req.get_body_file()
  if not path then
    return ""
  end
  local file = assert(io.open(path, "rb"))
  body = file:read("*a")
  file:close()
  return body
end

--- Reads the current request.
-- Returns a table with `method`, `uri`, `path`, `query`, `headers` and
-- `body`. `uri` is the raw request target, and `path` and `query` are its
-- raw parts before and after the first `?`. `query` is empty when absent.
-- `headers` has lower-cased names, with a list for a repeated header.
-- `body` is the raw bytes, empty when absent.
function request.read()
  local uri = ngx.var.request_uri
  local path, query = uri:match("^([^?]*)%??(.*)$")
  return {
    method = ngx.req.get_method(),
    uri = uri,
    path = path,
    query = query,
    -- 0 lifts the Lua module's default limit of 100 headers.
    headers = ngx.req.get_headers(0),
    body = read_body(),
  }
end

--- Splits a raw path on `/` into its segments, without decoding them, so
-- an encoded `/` (`%2F`) stays inside its segment. The leading empty
-- segment of the path's first `/` is dropped.
function request.split_path(path)
  local segments = {}
  for segment in (path .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = segment
  end
  table.remove(segments, 1)
  return segments
end

--- Percent-decodes one path segment. A `%` not followed by two hex digits
-- stays as it is.
function request.decode_segment(segment)
  return (segment:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

return request
