-- The life of a MoQ relay, from creation to deletion.
--
-- Runs against the bundled emulator (`make demo`) or, with real
-- credentials in CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, against
-- the live API. Every relay it creates is deleted before it exits.

local cloudflare = require "cloudflare"

local cf = cloudflare.new()
local relays = cf.moq.relays
local created_uids = {}

local function say(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
end

local function cleanup()
  for _, uid in ipairs(created_uids) do
    relays:delete(uid)
  end
  cf:close()
end

-- Stop with the error on one line, after deleting what was created.
local function check(value, err)
  if value == nil then
    say("failed: %s", tostring(err))
    cleanup()
    os.exit(1)
  end
  return value
end

local function show_config(config)
  local ls, of = config.lingering_subscribe, config.origin_fallback
  if ls then
    local ceiling = ""
    if ls.max_timeout_ms then
      ceiling = " max_timeout_ms=" .. ls.max_timeout_ms
    end
    say("  lingering_subscribe: enabled=%s%s", tostring(ls.enabled),
        ceiling)
  end
  if of then
    local urls = {}
    for i, origin in ipairs(of.origins or {}) do
      urls[i] = origin.url
    end
    say("  origin_fallback:     enabled=%s origins=[%s]",
        tostring(of.enabled), table.concat(urls, ", "))
  end
end

say("lua-cloudflare %s, API at %s", cloudflare._VERSION, cf.config.base_url)
say("")

say("1. Create a relay")
local relay = check(relays:create { name = "Production Live Stream" })
created_uids[#created_uids + 1] = relay.uid
say("  uid:                     %s", relay.uid)
say("  name:                    %s", relay.name)
say("  created:                 %s", relay.created)
say("  token_publish_subscribe: %s",
    cloudflare.mask(relay.token_publish_subscribe))
say("  token_subscribe:         %s", cloudflare.mask(relay.token_subscribe))
say("  (the API shows both tokens only in this response)")
say("")

say("2. Get it back: config and status, never the tokens")
local fetched = check(relays:get(relay.uid))
say("  %s", tostring(fetched))
show_config(fetched.config)
say("")

say("3. Enable origin fallback with two origins, disable lingering " ..
    "subscribe")
local updated = check(relays:update(relay.uid, {
  config = {
    lingering_subscribe = { enabled = false },
    origin_fallback = {
      enabled = true,
      origins = {
        { url = "https://origin-a.example.com/moq" },
        { url = "https://origin-b.example.com/moq" },
      },
    },
  },
}))
show_config(updated.config)
say("")

say("4. Create three more relays and list the newest four, two per page")
for i = 1, 3 do
  local extra = check(relays:create { name = "Backup Stream " .. i })
  created_uids[#created_uids + 1] = extra.uid
end
-- Newest first; the created time of a page's last relay is the cursor
-- for the next page.
local params = { per_page = 2 }
for page_number = 1, 2 do
  local page = check(relays:list(params))
  say("  page %d: result_info count=%d total=%d", page_number,
      page.result_info.count, page.result_info.total)
  for _, summary in ipairs(page) do
    say("    %s  %-24s %s", summary.uid, summary.name, summary.created)
  end
  if #page < params.per_page then
    break
  end
  params.created_before = page[#page].created
end
say("")

say("5. Rotate the subscribe token")
local token = check(relays.tokens:rotate(relay.uid, { type = "subscribe" }))
say("  new %s token: %s (the old one no longer works)", token.type,
    cloudflare.mask(token.token))
say("")

say("6. Delete the relays")
for _, uid in ipairs(created_uids) do
  check(relays:delete(uid))
  say("  deleted %s", uid)
end
local deleted_uid = created_uids[1]
created_uids = {}
say("")

say("7. Get the deleted relay")
local gone, err = relays:get(deleted_uid)
if gone ~= nil then
  say("failed: the deleted relay %s is still there", deleted_uid)
  cf:close()
  os.exit(1)
end
say("  %s", err.name)
say("  %s", tostring(err))
cf:close()
