-- Credentials the emulator accepts, and the authentication of API requests.
--
-- A credential is an API token (`Authorization: Bearer <token>`) or the
-- legacy pair `X-Auth-Email` and `X-Auth-Key`. Each is bound to a set of
-- account ids, or to every account.

local auth = {}

-- Credentials from the command line, restored by a reset.
local initial = { tokens = {}, api_keys = {} }

-- Credentials in force: `tokens[token]` and `api_keys[email][key]` are
-- `true` for every account, or a set of account ids.
local current = initial

local function copy_credentials(credentials)
  local result = { tokens = {}, api_keys = {} }
  for token, accounts in pairs(credentials.tokens) do
    result.tokens[token] = accounts
  end
  for email, keys in pairs(credentials.api_keys) do
    result.api_keys[email] = {}
    for key, accounts in pairs(keys) do
      result.api_keys[email][key] = accounts
    end
  end
  return result
end

--- Returns an empty credential set for `add_token` and `add_api_key`.
function auth.new_credentials()
  return { tokens = {}, api_keys = {} }
end

-- Turns a list of account ids into a set. Nil or an empty list means every
-- account.
local function account_set(accounts)
  if accounts == nil or #accounts == 0 then
    return true
  end
  local set = {}
  for _, account_id in ipairs(accounts) do
    set[account_id] = true
  end
  return set
end

--- Adds a token bound to a list of account ids (nil: every account).
function auth.add_token(credentials, token, accounts)
  credentials.tokens[token] = account_set(accounts)
end

--- Adds an email and global API key pair bound to a list of account ids.
function auth.add_api_key(credentials, email, key, accounts)
  credentials.api_keys[email] = credentials.api_keys[email] or {}
  credentials.api_keys[email][key] = account_set(accounts)
end

--- Sets the credentials from the command line, and puts them in force.
function auth.configure(credentials)
  initial = credentials
  current = copy_credentials(initial)
end

--- Puts other credentials in force until the next reset.
function auth.replace(credentials)
  current = credentials
end

--- Puts the command-line credentials back in force.
function auth.restore()
  current = copy_credentials(initial)
end

-- Characters of a well-formed token, and the header value that carries it.
local BEARER_PATTERN = "^Bearer ([A-Za-z0-9_-]+)$"

--- Checks the token format that the Authorization header requires.
function auth.is_valid_token(token)
  return type(token) == "string" and token:find("^[A-Za-z0-9_-]+$") ~= nil
end

local function failure(status, code, message, chain_code, chain_message)
  local err = { status = status, code = code, message = message }
  if chain_code then
    err.error_chain = { { code = chain_code, message = chain_message } }
  end
  return nil, err
end

local function bound_to(accounts, account_id)
  return accounts == true or accounts[account_id] == true
end

-- Returns a header value as a string. A header sent more than once comes
-- back from nginx as a table, and is treated as malformed.
local function single(value)
  if type(value) == "table" then
    return false
  end
  return value
end

--- Returns the rate-limit identity of the credential a request presents,
-- valid or not, or nil when it presents none.
function auth.presented_identity(headers)
  local authorization = single(headers["authorization"])
  if authorization then
    local token = authorization:match(BEARER_PATTERN)
    return token and ("token:" .. token) or nil
  end
  local email = single(headers["x-auth-email"])
  if email and single(headers["x-auth-key"]) then
    return "email:" .. email
  end
  return nil
end

local function authenticate_token(authorization, account_id)
  local token = authorization and authorization:match(BEARER_PATTERN)
  if not token then
    return failure(400, 6003, "Invalid request headers",
      6111, "Invalid format for Authorization header")
  end
  local accounts = current.tokens[token]
  if not accounts then
    return failure(401, 10000, "Authentication error")
  end
  if not bound_to(accounts, account_id) then
    return failure(403, 10000, "Authentication error")
  end
  return "token:" .. token
end

local function authenticate_api_key(email, key, account_id)
  local keys = email and current.api_keys[email]
  local accounts = keys and key and keys[key]
  if not accounts then
    return failure(400, 6003, "Invalid request headers",
      6103, "Invalid format for X-Auth-Key header")
  end
  if not bound_to(accounts, account_id) then
    return failure(403, 10000, "Authentication error")
  end
  return "email:" .. email
end

--- Authenticates a request for an account.
-- `headers` is the table of `ngx.req.get_headers`. The Authorization header
-- wins over the X-Auth pair. Returns the rate-limit identity of the
-- credential, or nil and an error `{ status, code, message, error_chain }`.
function auth.authenticate(headers, account_id)
  local authorization = headers["authorization"]
  if authorization ~= nil then
    return authenticate_token(single(authorization), account_id)
  end
  local email = headers["x-auth-email"]
  local key = headers["x-auth-key"]
  if email == nil or key == nil then
    return failure(400, 9106,
      "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
  end
  return authenticate_api_key(single(email), single(key), account_id)
end

return auth
