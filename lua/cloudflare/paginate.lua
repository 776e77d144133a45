--- Pagination over the keyset cursor of `relays:list`.
--
-- The API pages on `created` alone: the next page is the relays created
-- strictly after (with `asc`) or before the `created` of the last relay
-- on this page. Relays that share that timestamp across a page boundary
-- would be skipped by a strict cursor, so the cursor here is moved back
-- by one microsecond and the relays already returned are dropped by
-- `uid`. What this guarantees and what it cannot:
--
-- * No relay is returned twice, and none that existed for the whole walk
--   is skipped, however many share a timestamp.
-- * A relay created or deleted during the walk may or may not appear.
-- * When more relays share one timestamp than the largest page the
--   server returns, no cursor can get past them: the walk stops with an
--   error rather than loop.
-- @module cloudflare.paginate

local errors = require "cloudflare.errors"
local time = require "cloudflare.time"

local M = {}

-- Per-page size used when the caller sets none.
M.DEFAULT_PER_PAGE = 50
-- The largest page requested while growing past a run of equal
-- timestamps; the API documents no maximum.
M.MAX_PER_PAGE = 1000

-- How far the cursor moves back over the last timestamp, in nanoseconds.
local OVERLAP_NS = 1000

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- Split the caller's params into list params and walk options.
local function split_params(params)
  local list_params = copy(params or {})
  local max_items = list_params.max_items
  list_params.max_items = nil
  if max_items ~= nil and (type(max_items) ~= "number"
      or max_items < 1 or max_items ~= math.floor(max_items)) then
    return nil, errors.validation("max_items", "expected a positive integer",
                                  max_items)
  end
  list_params.per_page = list_params.per_page or M.DEFAULT_PER_PAGE
  return list_params, max_items
end

-- Attach walk state to a page fetched with `params`. `raw` is the page
-- as the server returned it, before relays seen earlier were dropped.
local function adopt(page, relays, params, opts, raw, grown)
  rawset(page, "_walk", { relays = relays, params = params, opts = opts,
                          raw = raw or { table.unpack(page) },
                          grown = grown })
  return page
end
M.adopt = adopt

-- The params for the page after a page, or nil when it was the last.
local function next_params(walk, info)
  local params, raw = walk.params, walk.raw
  local count = #raw

  if count == 0 then
    return nil
  end
  -- result_info.total counts the relays that match the cursor, this page
  -- included. Without it, a page shorter than requested is the last one.
  if info.total ~= nil and info.count ~= nil then
    if info.total <= info.count then
      return nil
    end
  elseif params.per_page and count < params.per_page and not walk.grown then
    return nil
  end

  local last = raw[count]
  local asc = params.asc == true
  -- Inclusive of the last timestamp, so that ties are not lost. One
  -- microsecond, because a server may compare at that precision.
  local cursor, err = time.shift(last.created,
                                 asc and -OVERLAP_NS or OVERLAP_NS)
  if not cursor then
    return nil, errors.new("ResponseDecodeError", "cannot page past relay " ..
      tostring(last.uid) .. ": " .. err)
  end
  local out = copy(params)
  out.per_page = walk.base or params.per_page
  if asc then
    out.created_after = cursor
  else
    out.created_before = cursor
  end
  return out
end

-- The uids of the relays that the next cursor returns again: those of
-- the page at or past the cursor.
local function overlap_uids(raw, cursor, asc)
  local seen, count = {}, 0
  for i = #raw, 1, -1 do
    local order = time.compare(raw[i].created, cursor)
    if order == nil or (asc and order < 0) or (not asc and order > 0) then
      break
    end
    seen[raw[i].uid] = true
    count = count + 1
  end
  return seen, count
end

-- Remove from `page`, in place, the relays whose uid is in `seen`.
local function drop_seen(page, seen)
  local kept = {}
  for i = 1, #page do
    if not seen[page[i].uid] then
      kept[#kept + 1] = page[i]
    end
  end
  for i = #page, 1, -1 do
    page[i] = nil
  end
  for i, relay in ipairs(kept) do
    page[i] = relay
  end
  return #kept
end

-- True when a relay of `raw` lies before the cursor (after it, when
-- walking newest first): the server did not apply the cursor.
local function outside_cursor(raw, cursor, asc)
  for _, relay in ipairs(raw) do
    local order = time.compare(relay.created, cursor)
    if order == nil or (asc and order < 0) or (not asc and order > 0) then
      return true
    end
  end
  return false
end

local function ignored_cursor(cursor)
  return errors.new("APIStatusError", "pagination stopped: the server " ..
    "returned relays outside cursor " .. tostring(cursor) ..
    ", so it ignores the cursor; walking on could loop forever")
end

-- True when every relay of `raw` lies in the overlap window, between the
-- cursor and the boundary timestamp.
local function all_in_window(raw, cursor, boundary)
  for _, relay in ipairs(raw) do
    local low, high = time.compare(relay.created, cursor),
                      time.compare(relay.created, boundary)
    if low == nil or high == nil or low * high > 0 then
      return false
    end
  end
  return true
end

--- Fetch the page after this one. Relays already returned by the walk
-- are left out.
-- @return the next page; nil when this was the last; or nil and an error
function M.next_page(page)
  local walk = rawget(page, "_walk")
  if walk == nil then
    error("page:next_page: this page did not come from relays:list " ..
          "or relays:pages", 2)
  end
  local params, err = next_params(walk, rawget(page, "result_info") or {})
  if not params then
    return nil, err
  end
  local asc = params.asc == true
  local cursor = asc and params.created_after or params.created_before
  local seen, overlap = overlap_uids(walk.raw, cursor, asc)
  local boundary = walk.raw[#walk.raw].created
  local grown = false
  -- Ask for the relays that come again on top of a full page.
  if params.per_page then
    params.per_page = math.min(params.per_page + overlap, M.MAX_PER_PAGE)
  end

  while true do
    local fetched, list_err = walk.relays:list(params, walk.opts)
    if not fetched then
      return nil, list_err
    end
    local raw = { table.unpack(fetched) }
    if outside_cursor(raw, cursor, asc) then
      return nil, ignored_cursor(cursor)
    end
    if drop_seen(fetched, seen) > 0 or #raw == 0 then
      adopt(fetched, walk.relays, params, walk.opts, raw, grown)
      rawget(fetched, "_walk").base = walk.base or walk.params.per_page
      return fetched
    end

    -- Every relay on the page was returned before. Either a run of equal
    -- timestamps fills the page, so a bigger page gets past it, or the
    -- server ignored the cursor.
    if not all_in_window(raw, cursor, boundary) then
      return nil, ignored_cursor(cursor)
    end
    local per_page = params.per_page or #raw
    if #raw < per_page then
      -- A short page of relays already returned is the end, unless
      -- result_info reports more. Then the server caps the page below
      -- the run of equal timestamps, and no cursor gets past it.
      local info = rawget(fetched, "result_info") or {}
      if info.total and info.count and info.total > info.count then
        return nil, errors.new("APIStatusError", string.format(
          "pagination stopped: more relays share created %s than the " ..
          "server returns in one page (%d), so no cursor can get past " ..
          "them", boundary, #raw))
      end
      return nil
    end
    if per_page >= M.MAX_PER_PAGE then
      return nil, errors.new("APIStatusError", string.format(
        "pagination stopped: more than %d relays share created %s, " ..
        "and no page is large enough to get past them",
        per_page, boundary))
    end
    params = copy(params)
    params.per_page = math.min(per_page * 4, M.MAX_PER_PAGE)
    grown = true
  end
end

--- Iterate over pages. Each step yields a page; a failure yields
-- `false, err` once and ends the loop.
function M.pages(relays, params, opts)
  local list_params, max_or_err = split_params(params)
  local state = "start"
  local page
  return function()
    if state == "done" then
      return nil
    end
    local err
    if state == "start" then
      if not list_params then
        state = "done"
        return false, max_or_err
      end
      page, err = relays:list(list_params, opts)
      if page then
        adopt(page, relays, list_params, opts)
      end
      state = "walking"
    else
      page, err = M.next_page(page)
    end
    if not page then
      state = "done"
      if err then
        return false, err
      end
      return nil
    end
    return page
  end
end

--- Iterate over every relay across pages, honouring `max_items`. A
-- failure yields `false, err` once and ends the loop.
function M.each(relays, params, opts)
  local list_params, max_items = split_params(params)
  if not list_params then
    -- The error comes out of the first step of pages below.
    max_items = nil
  end
  local next_page = M.pages(relays, params, opts)
  local page, index, yielded = nil, 0, 0
  local finished = false
  return function()
    if finished then
      return nil
    end
    if max_items and yielded >= max_items then
      finished = true
      return nil
    end
    while page == nil or index >= #page do
      local err
      page, err = next_page()
      index = 0
      if not page then
        finished = true
        if page == false then
          return false, err
        end
        return nil
      end
    end
    index = index + 1
    yielded = yielded + 1
    return page[index]
  end
end

--- Collect every relay into one array, or return nil and an error.
function M.all(relays, params, opts)
  local out = {}
  for relay, err in M.each(relays, params, opts) do
    if not relay then
      return nil, err
    end
    out[#out + 1] = relay
  end
  return out
end

return M
