-- The MoQ relays API under /client/v4: routing, authentication, rate
-- limits and the endpoint handlers.

local auth = require "moq_emulator.auth"
local json = require "moq_emulator.json"
local ratelimit = require "moq_emulator.ratelimit"
local request = require "moq_emulator.request"
local response = require "moq_emulator.response"
local store = require "moq_emulator.store"
local validate = require "moq_emulator.validate"

local api = {}

local API_PREFIX = "/client/v4"

local codes = validate.codes

-- Methods of each route shape, by the number of path segments after
-- /client/v4, and the endpoint name each method reaches.
local routes = {
  [4] = { GET = "list", POST = "create" },
  [5] = { GET = "get", PUT = "update", DELETE = "delete" },
  [7] = { POST = "rotate" },
}

-- The message gives the path without /client/v4, as the live API does.
local function route_error(path)
  local relative_path = path
  if path:sub(1, #API_PREFIX + 1) == API_PREFIX .. "/" then
    relative_path = path:sub(#API_PREFIX + 1)
  end
  return {
    status = 404, code = 7003,
    message = "Could not route to " .. relative_path
      .. ", perhaps your object identifier is invalid?",
  }
end

local function allowed_methods(methods)
  local names = {}
  for method in pairs(methods) do
    names[#names + 1] = method
  end
  table.sort(names)
  return table.concat(names, ", ")
end

-- Returns whether the decoded segments have the literal parts of a relay
-- route: accounts/{account_id}/moq/relays[/{relay_id}[/tokens/rotate]].
local function has_route_shape(segments)
  local count = #segments
  if not routes[count] then
    return false
  end
  if segments[1] ~= "accounts" or segments[3] ~= "moq"
    or segments[4] ~= "relays" then
    return false
  end
  if count == 5 and segments[5] == "" then
    return false
  end
  if count == 7 and (segments[5] == "" or segments[6] ~= "tokens"
      or segments[7] ~= "rotate") then
    return false
  end
  return true
end

--- Matches a request to an endpoint.
-- The raw path is split on `/` before each segment is percent-decoded, so
-- an encoded `/`, `?` or `..` inside an id stays inside that id.
-- Returns `{ endpoint, account_id, relay_id }`, or `{ error, allow }` for
-- an unknown path (404) or a method the path does not take (405).
function api.route(method, path)
  if path:sub(1, #API_PREFIX + 1) ~= API_PREFIX .. "/" then
    return { error = route_error(path) }
  end
  local segments = request.split_path(path:sub(#API_PREFIX + 1))
  for i, segment in ipairs(segments) do
    segments[i] = request.decode_segment(segment)
  end
  if not has_route_shape(segments)
    or not segments[2]:find("^[A-Za-z0-9]+$") or #segments[2] > 64 then
    return { error = route_error(path) }
  end
  local methods = routes[#segments]
  local endpoint = methods[method]
  if not endpoint then
    return {
      error = { status = 405, code = 7001,
        message = "Method " .. method .. " not allowed" },
      allow = allowed_methods(methods),
    }
  end
  return {
    endpoint = endpoint,
    account_id = segments[2],
    relay_id = segments[5],
  }
end

local function not_found(relay_id)
  return {
    status = 404, code = codes.RELAY_NOT_FOUND,
    message = "Relay not found: " .. relay_id,
  }
end

local handlers = {}

function handlers.list(req, route)
  local filter, err = validate.list_query(req.query)
  if not filter then
    return response.failure(err)
  end
  local page, total = store.list(route.account_id, filter)
  local result = json.array()
  for i, relay in ipairs(page) do
    result[i] = store.summary_view(relay)
  end
  local result_info = json.object({ count = #page, total = total },
    { "count", "total" })
  return response.success(200, result, result_info)
end

function handlers.create(req, route)
  local body, name, err
  body, err = validate.object_body(req.body)
  if body then
    name, err = validate.create_body(body)
  end
  if not name then
    return response.failure(err)
  end
  local relay = store.insert({ account_id = route.account_id, name = name })
  return response.success(200, store.created_view(relay))
end

function handlers.get(_, route)
  local relay = store.find(route.account_id, route.relay_id)
  if not relay then
    return response.failure(not_found(route.relay_id))
  end
  return response.success(200, store.relay_view(relay))
end

function handlers.update(req, route)
  local relay = store.find(route.account_id, route.relay_id)
  if not relay then
    return response.failure(not_found(route.relay_id))
  end
  local body, err = validate.object_body(req.body)
  if not body then
    return response.failure(err)
  end
  local name, config
  name, config, err = validate.update_body(body, relay)
  if err then
    return response.failure(err)
  end
  relay.name = name or relay.name
  relay.config = config or relay.config
  store.touch(relay)
  return response.success(200, store.relay_view(relay))
end

-- NOTE: the live API does not document the delete result, so the emulator
-- returns `result: null`.
function handlers.delete(_, route)
  local relay = store.find(route.account_id, route.relay_id)
  if not relay then
    return response.failure(not_found(route.relay_id))
  end
  relay.deleted = true
  store.touch(relay)
  return response.success(200, nil)
end

function handlers.rotate(req, route)
  local relay = store.find(route.account_id, route.relay_id)
  if not relay then
    return response.failure(not_found(route.relay_id))
  end
  local body, token_type, err
  body, err = validate.object_body(req.body)
  if body then
    token_type, err = validate.rotate_body(body)
  end
  if not token_type then
    return response.failure(err)
  end
  local token = store.rotate_token(relay, token_type)
  local result = json.object({ token = token, type = token_type },
    { "token", "type" })
  return response.success(200, result)
end

local function with_headers(resp, headers)
  for name, value in pairs(headers) do
    resp.headers[name] = value
  end
  return resp
end

local function too_many_requests(headers, retry_after)
  local resp = response.failure({
    status = 429, code = 971,
    message = "Please wait and consider throttling your request speed",
  })
  headers["Retry-After"] = tostring(retry_after)
  return with_headers(resp, headers)
end

--- Handles an API request that `api.route` has matched (or not).
-- Authentication comes first, then the rate limit, then the query and
-- body checks. Only authenticated requests count against a quota, but
-- every response carries the rate-limit headers of the credential that
-- the request presents. Returns the response.
function api.handle(req, route)
  if route.error then
    local resp = response.failure(route.error)
    resp.headers["Allow"] = route.allow
    return with_headers(resp,
      ratelimit.peek(auth.presented_identity(req.headers)))
  end
  local identity, err = auth.authenticate(req.headers, route.account_id)
  if not identity then
    return with_headers(response.failure(err),
      ratelimit.peek(auth.presented_identity(req.headers)))
  end
  local allowed, headers, retry_after = ratelimit.consume(identity)
  if not allowed then
    return too_many_requests(headers, retry_after)
  end
  if route.endpoint ~= "list" then
    local ok
    ok, err = validate.no_query(req.query)
    if not ok then
      return with_headers(response.failure(err), headers)
    end
  end
  return with_headers(handlers[route.endpoint](req, route), headers)
end

return api
