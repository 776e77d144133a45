/*
 * The concurrent transport: a cloudflare.Multi runs many requests at once
 * on one libcurl multi handle, so they share its connection cache.
 *
 *   local m = core.multi { max_connections = 8 }
 *   local id = m:add { method = "GET", url = url }
 *   for _, done in ipairs(m:poll(0.5)) do ... done.id ... end
 *
 * m:add(req) starts a transfer and returns its id; m:poll(seconds) drives
 * the transfers for at most that long and returns the ones that ended,
 * each as { id, response } or { id, error } with the shapes of
 * session:request. Easy handles come from a pool owned by the multi and
 * are reused once their transfer has been reported.
 *
 * The rules of the session apply. libcurl's callbacks only copy bytes
 * into buffers owned by the transfer, and no Lua API call happens while
 * curl_multi_perform or curl_multi_poll runs. Every allocation hangs off
 * the userdata before anything can raise, so __gc frees it.
 */
#define _POSIX_C_SOURCE 200809L

#include "compat.h"
#include "core.h"
#include "transfer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#if LIBCURL_VERSION_NUM < 0x074200
#error "cloudflare.Multi needs libcurl 7.66.0 or later (curl_multi_poll)"
#endif

#define MULTI_MT "cloudflare.Multi"

/* Maximum of poll's max_wait, in seconds: one day. */
#define MAX_POLL_WAIT 86400.0

enum slot_state {
  SLOT_IDLE,     /* in the pool, free for the next add */
  SLOT_ACTIVE,   /* added to the multi handle, running */
  SLOT_DONE      /* ended and removed from the multi handle, not reported */
};

typedef struct {
  cf_transfer transfer;
  enum slot_state state;
  lua_Integer id;
  CURLcode result;
  long finished;   /* order in which done transfers ended */
} slot;

typedef struct {
  CURLM *handle;
  cf_http_config config;
  slot **slots;    /* every slot, whatever its state; each malloc'd */
  int nslots;
  int cap;
  int active;      /* slots in SLOT_ACTIVE */
  int done;        /* slots in SLOT_DONE */
  long finished;
  long max_connections;   /* 0: no cap */
  lua_Integer last_id;
  /* Set while add or poll runs. A finalizer that closes the multi in the
     meantime (any Lua allocation can run one) only sets close_pending,
     and the release happens once they are done with the slots. */
  int busy;
  int close_pending;
} multi;

static multi *check_multi(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, MULTI_MT);
}

static double monotonic_seconds(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Abort the transfers in flight and free everything. Idempotent. */
static void multi_release(multi *m) {
  int i;

  for (i = 0; i < m->nslots; i++) {
    slot *s = m->slots[i];

    if (s->state == SLOT_ACTIVE)
      curl_multi_remove_handle(m->handle, s->transfer.easy);
  }
  /* libcurl's order: remove every easy handle, clean each up, then clean
     up the multi handle. */
  for (i = 0; i < m->nslots; i++) {
    cf_transfer_free(&m->slots[i]->transfer);
    free(m->slots[i]);
  }
  free(m->slots);
  m->slots = NULL;
  m->nslots = m->cap = 0;
  m->active = m->done = 0;

  if (m->handle != NULL) {
    curl_multi_cleanup(m->handle);
    m->handle = NULL;
  }
  cf_http_config_free(&m->config);
}

static void read_max_connections(lua_State *L, int opts, multi *m) {
  lua_Number n;

  lua_getfield(L, opts, "max_connections");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  n = lua_tonumber(L, -1);
  if (!(n >= 1 && n <= 2147483647.0 && n == (lua_Number)(long)n))
    luaL_error(L, "multi option 'max_connections' must be a positive "
               "integer");
  m->max_connections = (long)n;
  lua_pop(L, 1);
}

/*
 * core.multi(opts): the options of core.session (user_agent, ca_file,
 * proxy, verify_tls, max_response_bytes) plus max_connections, the cap
 * on open connections (CURLMOPT_MAX_TOTAL_CONNECTIONS). Transfers over
 * the cap wait inside libcurl for a free connection. Without it, libcurl
 * sets no cap.
 */
static int l_multi(lua_State *L) {
  multi *m;

  luaL_checktype(L, 1, LUA_TTABLE);

  m = lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m);
  luaL_getmetatable(L, MULTI_MT);
  lua_setmetatable(L, -2);

  cf_http_config_read(L, 1, &m->config, "multi");
  read_max_connections(L, 1, m);

  m->handle = curl_multi_init();
  if (m->handle == NULL)
    return luaL_error(L, "curl_multi_init failed");
  if (m->max_connections > 0) {
    curl_multi_setopt(m->handle, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      m->max_connections);
    /* Keep as many idle connections as may be open, so a connection is
       not closed between two transfers of one batch. */
    curl_multi_setopt(m->handle, CURLMOPT_MAXCONNECTS, m->max_connections);
  }
  return 1;
}

/*
 * Return an idle slot with an easy handle, growing the pool when every
 * slot is busy. A new slot joins the pool before anything can raise.
 */
static slot *idle_slot(lua_State *L, multi *m) {
  slot *s = NULL;
  int i;

  for (i = 0; i < m->nslots && s == NULL; i++)
    if (m->slots[i]->state == SLOT_IDLE)
      s = m->slots[i];

  if (s == NULL) {
    if (m->nslots == m->cap) {
      int cap = m->cap ? m->cap * 2 : 8;
      slot **grown = realloc(m->slots, (size_t)cap * sizeof *grown);

      if (grown == NULL)
        luaL_error(L, "out of memory");
      m->slots = grown;
      m->cap = cap;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
      luaL_error(L, "out of memory");
    m->slots[m->nslots++] = s;
  }

  if (s->transfer.easy == NULL) {
    s->transfer.easy = curl_easy_init();
    if (s->transfer.easy == NULL)
      luaL_error(L, "curl_easy_init failed");
  }
  return s;
}

/*
 * multi:add(req) starts one HTTP exchange, with the req fields of
 * session:request. Returns the transfer's id, a positive integer unique
 * within this multi. Returns nil and an error table when the multi is
 * closed or libcurl rejects the transfer, and raises for a malformed req.
 */
static int add_protected(lua_State *L) {
  multi *m = lua_touserdata(L, 1);
  cf_transfer none;
  CURLMcode mc;
  slot *s;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (m->handle == NULL) {
    memset(&none, 0, sizeof none);
    lua_pushnil(L);
    cf_transfer_push_error(L, &none, "closed", "the multi is closed", 0);
    return 2;
  }

  s = idle_slot(L, m);
  cf_transfer_prepare(L, &s->transfer, &m->config, 2);
  if (m->close_pending) {
    lua_pushnil(L);
    cf_transfer_push_error(L, &s->transfer, "closed", "the multi was closed",
                           0);
    return 2;
  }
  curl_easy_setopt(s->transfer.easy, CURLOPT_PRIVATE, (void *)s);

  mc = curl_multi_add_handle(m->handle, s->transfer.easy);
  if (mc != CURLM_OK) {
    lua_pushnil(L);
    cf_transfer_push_error(L, &s->transfer, "other",
                           curl_multi_strerror(mc), (int)mc);
    return 2;
  }

  s->state = SLOT_ACTIVE;
  s->id = ++m->last_id;
  m->active++;
  lua_pushinteger(L, s->id);
  return 1;
}

/* Move every transfer that libcurl reports as ended to SLOT_DONE. */
static void collect_done(multi *m) {
  CURLMsg *msg;
  int queued;

  while ((msg = curl_multi_info_read(m->handle, &queued)) != NULL) {
    CURL *easy = msg->easy_handle;
    char *owner = NULL;
    slot *s;

    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
    s = (slot *)owner;
    /* msg is invalid once its handle is removed: read it first. */
    s->result = msg->data.result;
    curl_multi_remove_handle(m->handle, easy);

    s->state = SLOT_DONE;
    s->finished = ++m->finished;
    m->active--;
    m->done++;
  }
}

/* Return the done slot that ended first. */
static slot *first_done(multi *m) {
  slot *first = NULL;
  int i;

  for (i = 0; i < m->nslots; i++) {
    slot *s = m->slots[i];

    if (s->state == SLOT_DONE && (first == NULL ||
                                  s->finished < first->finished))
      first = s;
  }
  return first;
}

/* Push the array of done transfers, oldest first, and return their
   slots to the pool. */
static void push_done(lua_State *L, multi *m) {
  int k = 0;

  lua_createtable(L, m->done, 0);
  while (m->done > 0) {
    slot *s = first_done(m);
    int ok;

    lua_createtable(L, 0, 2);
    lua_pushinteger(L, s->id);
    lua_setfield(L, -2, "id");
    ok = cf_transfer_push_outcome(L, &s->transfer, s->result, &m->config);
    lua_setfield(L, -2, ok ? "response" : "error");
    lua_rawseti(L, -2, ++k);

    s->state = SLOT_IDLE;
    m->done--;
  }
}

/*
 * multi:poll(max_wait) drives the transfers until at least one ends, none
 * is left, or max_wait seconds (default 0, at most one day) pass. Returns
 * an array, possibly empty, of { id = n, response = {...} } or
 * { id = n, error = {...} }, in the order the transfers ended. Returns at
 * once when nothing is pending, so it cannot serve as a sleep. Raises
 * when libcurl's multi interface itself fails (out of memory).
 */
static int poll_protected(lua_State *L) {
  multi *m = lua_touserdata(L, 1);
  lua_Number max_wait = luaL_optnumber(L, 2, 0);
  double deadline;

  if (!(max_wait >= 0 && max_wait <= MAX_POLL_WAIT))
    return luaL_error(L, "max_wait must be from 0 to %d seconds",
                      (int)MAX_POLL_WAIT);
  if (m->handle == NULL) {
    lua_newtable(L);
    return 1;
  }

  deadline = monotonic_seconds() + max_wait;
  for (;;) {
    int running;
    double left;
    CURLMcode mc = curl_multi_perform(m->handle, &running);

    if (mc != CURLM_OK)
      return luaL_error(L, "curl_multi_perform failed: %s",
                        curl_multi_strerror(mc));
    collect_done(m);
    if (m->done > 0 || m->active == 0)
      break;

    left = deadline - monotonic_seconds();
    if (left <= 0)
      break;
    /* libcurl shortens the wait to its own next timeout. */
    mc = curl_multi_poll(m->handle, NULL, 0, (int)(left * 1000 + 0.999),
                         NULL);
    if (mc != CURLM_OK)
      return luaL_error(L, "curl_multi_poll failed: %s",
                        curl_multi_strerror(mc));
  }

  push_done(L, m);
  return 1;
}

/*
 * Run fn(m, args...) under lua_pcall with m marked busy, then do a close
 * deferred by a finalizer, and re-raise any error.
 */
static int run_busy(lua_State *L, lua_CFunction fn, const char *name) {
  multi *m = check_multi(L, 1);
  int nargs = lua_gettop(L);
  int status, i;

  if (m->busy)
    return luaL_error(L, "multi:%s called while add or poll of the same "
                      "multi runs (from a finalizer?)", name);
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, m);
  for (i = 2; i <= nargs; i++)
    lua_pushvalue(L, i);
  m->busy = 1;
  status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  m->busy = 0;
  if (m->close_pending) {
    m->close_pending = 0;
    multi_release(m);
  }
  if (status != 0)
    return lua_error(L);
  return lua_gettop(L) - nargs;
}

static int l_add(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  return run_busy(L, add_protected, "add");
}

static int l_poll(lua_State *L) {
  luaL_optnumber(L, 2, 0);
  lua_settop(L, 2);
  return run_busy(L, poll_protected, "poll");
}

/* multi:pending() returns the number of transfers added and not yet
   returned by poll. */
static int l_pending(lua_State *L) {
  multi *m = check_multi(L, 1);

  lua_pushinteger(L, m->active + m->done);
  return 1;
}

/* multi:close() aborts the transfers in flight and frees the handles and
   connections. Idempotent; also __gc and __close. */
static int l_close(lua_State *L) {
  multi *m = check_multi(L, 1);

  if (m->busy)
    m->close_pending = 1;
  else
    multi_release(m);
  return 0;
}

static int l_closed(lua_State *L) {
  lua_pushboolean(L, check_multi(L, 1)->handle == NULL);
  return 1;
}

static int l_tostring(lua_State *L) {
  multi *m = check_multi(L, 1);

  if (m->max_connections > 0)
    lua_pushfstring(L, "cloudflare.Multi (%s, %d pending, %d transfers, "
                    "max_connections %d)",
                    m->handle ? "open" : "closed", m->active + m->done,
                    (int)m->last_id, (int)m->max_connections);
  else
    lua_pushfstring(L, "cloudflare.Multi (%s, %d pending, %d transfers)",
                    m->handle ? "open" : "closed", m->active + m->done,
                    (int)m->last_id);
  return 1;
}

void cf_multi_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", l_add},
    {"poll", l_poll},
    {"pending", l_pending},
    {"close", l_close},
    {"closed", l_closed},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"multi", l_multi},
    {NULL, NULL}
  };

  cf_register_handle(L, MULTI_MT, methods, l_close, l_tostring);

  cf_setfuncs(L, funcs);
}
