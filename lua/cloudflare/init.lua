--- lua-cloudflare: a client for Cloudflare's MoQ relays API.
--
--    local cloudflare = require "cloudflare"
--    local cf = cloudflare.new { api_token = "...", account_id = "..." }
--    local relay, err = cf.moq.relays:create { name = "Live" }
--
-- @module cloudflare

local client = require "cloudflare.client"
local errors = require "cloudflare.errors"
local models = require "cloudflare.models"
local time = require "cloudflare.time"

local M = {}

--- The library's version.
M._VERSION = client.VERSION

--- Helpers to test errors: `cloudflare.errors.is(err, "NotFoundError")`.
M.errors = errors

--- The model metatables, to test a result's type.
M.models = models

--- RFC 3339 helpers: `time.parse(created)` to epoch seconds and
-- `time.format(epoch)` for `created_after` and `created_before`.
M.time = time

--- Describe a token without showing it, e.g. `<hidden, 43 characters>`.
M.mask = models.mask

--- Create a client.
--
-- Every option is optional, and falls back to an environment variable
-- where one is named:
--
-- * `api_token` (`CLOUDFLARE_API_TOKEN`): sent as a Bearer token. It wins
--   over `api_key` when both are set.
-- * `api_key` (`CLOUDFLARE_API_KEY`) and `email` (`CLOUDFLARE_EMAIL`): the
--   legacy global key pair.
-- * `account_id` (`CLOUDFLARE_ACCOUNT_ID`): the default for every call.
-- * `base_url` (`CLOUDFLARE_BASE_URL`): default
--   `https://api.cloudflare.com/client/v4`.
-- * `timeout` (seconds, default 60) and `connect_timeout` (default 10).
-- * `ca_file`: a PEM bundle to trust instead of the system's.
-- * `verify_tls` (default true), `proxy`, `max_response_bytes` (default
--   16 MiB), `allow_insecure_http` (plain http to a non-loopback host).
--
-- Misuse (an unknown option, a value of the wrong type) raises an error.
-- Missing credentials or account id are reported by the first call,
-- before anything is sent.
-- @tparam[opt] table opts
-- @return the client
function M.new(opts)
  return client.new(opts)
end

return M
