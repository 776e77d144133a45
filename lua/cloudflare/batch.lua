--- Concurrent calls over libcurl's multi interface: `client:batch`.
--
--    local results = cf:batch({
--      function(c) return c.moq.relays:get(uid1) end,
--      function(c) return c.moq.relays:get(uid2) end,
--    }, { concurrency = 8 })
--    local relay, err = results[1][1], results[1][2]
--
-- Each call runs in a coroutine on a view of the client (`Client:_view`)
-- whose transport yields its request to the scheduler below and whose
-- clock yields its sleeps as timers. The scheduler adds the requests to
-- one `core.multi`, polls it, and resumes each coroutine with its
-- response. So every call goes through the unchanged request pipeline
-- of `Client:_call`: retries, backoff, Retry-After, the rate limiter,
-- logging and redaction.
-- @module cloudflare.batch

local core = require "cloudflare.core"
local client_module = require "cloudflare.client"

local M = {}

M.DEFAULT_CONCURRENCY = 8
M.MAX_CONCURRENCY = 64

-- Maximum seconds of one poll while no timer is due. A poll returns as
-- soon as a transfer ends, so this only bounds an idle wait.
local MAX_POLL_WAIT = 1

-- Markers that tell the scheduler what a call's coroutine yielded.
local REQUEST, SLEEP = {}, {}

local pack, unpack = table.pack, table.unpack

--- Error raised by `run` when a call raises. `index` is the call's
-- position in `calls`, `cause` the value it raised and `traceback` the
-- stack of its coroutine at that point.
local BatchError = { __name = "cloudflare.BatchError" }
BatchError.__index = BatchError
M.BatchError = BatchError

function BatchError:__tostring()
  return string.format("cloudflare.batch: call %d raised an error: %s\n%s",
                       self.index, tostring(self.cause), self.traceback)
end

local OPTIONS = { concurrency = "number", on_progress = "function" }

-- Raise unless the arguments are a client, an array of functions and
-- valid options. Returns the concurrency and on_progress.
local function check_arguments(client, calls, opts)
  if getmetatable(client) ~= client_module.Client then
    error("cloudflare.batch.run: argument 1 must be a cloudflare.Client",
          3)
  end
  if type(calls) ~= "table" then
    error("cloudflare.Client:batch: calls must be an array of functions, " ..
          "got " .. type(calls), 3)
  end
  local count = #calls
  for key, value in pairs(calls) do
    if type(key) ~= "number" or key ~= math.floor(key) or key < 1
        or key > count then
      error(string.format("cloudflare.Client:batch: calls must be an " ..
                          "array of functions, but it has the key %s",
                          tostring(key)), 3)
    end
    if type(value) ~= "function" then
      error(string.format("cloudflare.Client:batch: calls[%d] must be a " ..
                          "function, got %s", key, type(value)), 3)
    end
  end

  if opts == nil then
    opts = {}
  elseif type(opts) ~= "table" then
    error("cloudflare.Client:batch: options must be a table, got " ..
          type(opts), 3)
  end
  for key, value in pairs(opts) do
    local expected = OPTIONS[key]
    if not expected then
      error(string.format("cloudflare.Client:batch: unknown option %q " ..
                          "(known: concurrency, on_progress)",
                          tostring(key)), 3)
    end
    if type(value) ~= expected then
      error(string.format("cloudflare.Client:batch: option %s must be a " ..
                          "%s, got %s", key, expected, type(value)), 3)
    end
  end

  local concurrency = opts.concurrency or M.DEFAULT_CONCURRENCY
  if concurrency ~= math.floor(concurrency) or concurrency < 1
      or concurrency > M.MAX_CONCURRENCY then
    error(string.format("cloudflare.Client:batch: concurrency must be an " ..
                        "integer from 1 to %d, got %s", M.MAX_CONCURRENCY,
                        tostring(opts.concurrency)), 3)
  end
  return concurrency, opts.on_progress
end

-- Raise a BatchError for a call that raised or misused its coroutine.
local function raise_from(task, cause)
  error(setmetatable({
    index = task.index,
    cause = cause,
    traceback = debug.traceback(task.co),
  }, BatchError), 0)
end

local Batch = {}
Batch.__index = Batch

local function new_batch(client, calls, concurrency, on_progress)
  return setmetatable({
    client = client,
    calls = calls,
    total = #calls,
    concurrency = concurrency,
    on_progress = on_progress,
    results = {},
    tasks = {},        -- the started calls, by index
    next_index = 1,
    running = 0,       -- calls started and not finished
    finished = 0,
    ready = {},        -- { task, packed values } to resume in order
    waiting = {},      -- multi transfer id -> task
    timers = {},       -- { at = monotonic seconds, task = task }
    in_flight = 0,
    max_in_flight = 0,
    requests = 0,
    started_at = core.now(),
  }, Batch)
end

-- The multi is created at the first request, so a batch of a closed
-- client or of calls that send nothing opens no connection.
function Batch:multi_handle()
  if not self.multi then
    local config = self.client.config
    self.multi = core.multi {
      user_agent = client_module.user_agent(),
      ca_file = config.ca_file,
      proxy = self.client._secrets.proxy(),
      verify_tls = config.verify_tls,
      max_response_bytes = config.max_response_bytes,
      max_connections = self.concurrency,
    }
  end
  return self.multi
end

function Batch:count_request()
  self.requests = self.requests + 1
  self.in_flight = self.in_flight + 1
  if self.in_flight > self.max_in_flight then
    self.max_in_flight = self.in_flight
  end
end

-- Raise unless the running coroutine is the task's own: a request or a
-- sleep from a coroutine that the call made itself would yield to that
-- coroutine instead of the scheduler.
local function check_coroutine(task, action)
  if coroutine.running() ~= task.co then
    error(string.format("cloudflare.batch: call %d tried to %s from a " ..
                        "coroutine of its own; a batch call must send " ..
                        "requests from the coroutine it runs in",
                        task.index, action), 3)
  end
end

-- The transport and clock of one call's view.
local function task_transport(batch, task)
  local transport = {}
  local custom = batch.client.config.transport

  if custom then
    -- A transport given to cloudflare.new is used as is, one request at
    -- a time, because the multi cannot drive it.
    function transport.request(_, request)
      batch:count_request()
      local response, err = custom:request(request)
      batch.in_flight = batch.in_flight - 1
      return response, err
    end
  else
    function transport.request(_, request)
      check_coroutine(task, "send a request")
      return coroutine.yield(REQUEST, request)
    end
  end

  -- A view's close must not close the batch's shared transport.
  function transport.close()
  end
  return transport
end

local function task_clock(task)
  return {
    now = core.now,
    time = core.time,
    sleep = function(seconds)
      check_coroutine(task, "sleep")
      coroutine.yield(SLEEP, seconds)
    end,
  }
end

-- Start the next call in a coroutine on its own view of the client.
function Batch:start_next()
  local index = self.next_index
  local task = { index = index }
  local client = self.client

  self.next_index = index + 1
  self.running = self.running + 1
  task.co = coroutine.create(self.calls[index])
  -- A view of a closed client is closed too, so its calls return the
  -- pipeline's error.
  task.view = client:_view(task_transport(self, task), task_clock(task))
  self.tasks[index] = task
  self:resume(task, task.view)
end

function Batch:finish(task, values)
  self.tasks[task.index] = nil
  self.running = self.running - 1
  self.finished = self.finished + 1
  self.results[task.index] = values
  if self.on_progress then
    self.on_progress(self.finished, self.total, task.index,
                     unpack(values, 1, values.n))
  end
end

-- Add a yielded request to the multi. A request the multi does not
-- take (closed, out of handles) resumes its call with the error. A
-- malformed request raises, as session:request does, in the call's name.
function Batch:submit(task, request)
  local multi = self:multi_handle()
  local ok, id, err = pcall(multi.add, multi, request)
  if not ok then
    raise_from(task, id)
  end
  if not id then
    self.ready[#self.ready + 1] = { task = task, values = pack(nil, err) }
    return
  end
  self.waiting[id] = task
  self:count_request()
end

-- Resume a call and act on what it does next: finish, send a request
-- or sleep.
function Batch:resume(task, ...)
  local out = pack(coroutine.resume(task.co, ...))
  if not out[1] then
    raise_from(task, out[2])
  end

  if coroutine.status(task.co) == "dead" then
    self:finish(task, pack(unpack(out, 2, out.n)))
    return
  end

  local marker, value = out[2], out[3]
  if marker == REQUEST then
    self:submit(task, value)
  elseif marker == SLEEP then
    local seconds = tonumber(value)
    -- As core.sleep does, treat a negative or NaN wait as none.
    if not (seconds and seconds > 0) then
      seconds = 0
    end
    self.timers[#self.timers + 1] = { at = core.now() + seconds, task = task }
  else
    raise_from(task, "the call yielded a value of its own; a batch " ..
               "call may yield only through its client's requests")
  end
end

function Batch:run_ready()
  while #self.ready > 0 do
    local entry = table.remove(self.ready, 1)
    self:resume(entry.task, unpack(entry.values, 1, entry.values.n))
  end
end

function Batch:next_timer()
  local first
  for _, timer in ipairs(self.timers) do
    if not first or timer.at < first then
      first = timer.at
    end
  end
  return first
end

-- Resume every call whose sleep has ended, earliest first.
function Batch:wake_timers()
  local now, due, later = core.now(), {}, {}
  for _, timer in ipairs(self.timers) do
    if timer.at <= now then
      due[#due + 1] = timer
    else
      later[#later + 1] = timer
    end
  end
  self.timers = later
  table.sort(due, function(a, b) return a.at < b.at end)
  for _, timer in ipairs(due) do
    self:resume(timer.task)
  end
end

-- Wait for the next transfer to end or timer to be due, then resume
-- the calls concerned.
function Batch:wait()
  local next_at = self:next_timer()
  local now = core.now()

  if self.multi and self.multi:pending() > 0 then
    local wait = next_at and math.max(next_at - now, 0) or MAX_POLL_WAIT
    for _, done in ipairs(self.multi:poll(math.min(wait, MAX_POLL_WAIT))) do
      local task = self.waiting[done.id]
      self.waiting[done.id] = nil
      self.in_flight = self.in_flight - 1
      if done.response then
        self:resume(task, done.response)
      else
        self:resume(task, nil, done.error)
      end
    end
  elseif next_at then
    core.sleep(next_at - now)
  else
    error("cloudflare.batch: no call can make progress; this is a bug " ..
          "in cloudflare.batch")
  end
  self:wake_timers()
end

-- Keep `concurrency` calls started; resume the calls with a result at
-- hand before waiting on the network or a timer.
function Batch:loop()
  while self.finished < self.total do
    if self.running < self.concurrency
        and self.next_index <= self.total then
      self:start_next()
    elseif #self.ready > 0 then
      self:run_ready()
    else
      self:wait()
    end
  end
end

-- Abort what is still running: close the multi, which aborts its
-- transfers, and close the suspended coroutines.
function Batch:close()
  if self.multi then
    self.multi:close()
  end
  if coroutine.close then
    for _, task in pairs(self.tasks) do
      if coroutine.status(task.co) == "suspended" then
        pcall(coroutine.close, task.co)
      end
    end
  end
  self.tasks = {}
end

--- Run calls concurrently on one client's configuration.
-- @tparam cloudflare.Client client the client whose configuration,
--   credentials and rate-limit state the calls share
-- @tparam table calls an array of functions; each receives a client view
--   and returns its call's results
-- @tparam[opt] table opts `concurrency` is the maximum number of calls
--   running at once (default 8, from 1 to 64) and also caps the open
--   connections. `on_progress(done, total, index, ...)` is called after
--   each call ends. It receives the number of calls done, the number of
--   calls, the call's index and its results.
-- @return an array whose index i contains `table.pack` of call i's
--   results, with a field `stats`: `max_in_flight` (the maximum number of
--   requests in flight at once), `requests` (requests sent), `elapsed`
--   (seconds) and `concurrency`.
--   Raises for misuse, and raises a `BatchError` carrying the call's
--   index when a call raises, after aborting the other calls.
function M.run(client, calls, opts)
  local concurrency, on_progress = check_arguments(client, calls, opts)
  local batch = new_batch(client, calls, concurrency, on_progress)

  local ok, err = pcall(batch.loop, batch)
  batch:close()
  if not ok then
    error(err, 0)
  end

  local results = batch.results
  results.stats = {
    max_in_flight = batch.max_in_flight,
    requests = batch.requests,
    elapsed = core.now() - batch.started_at,
    concurrency = concurrency,
  }
  return results
end

return M
