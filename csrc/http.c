/*
 * The libcurl transport: a session owns one easy handle, so every request
 * of a client reuses the same connection pool (keep-alive).
 *
 * The Lua side gets a plain exchange: session:request(req) takes a table
 * { method, url, headers, body, timeout, connect_timeout } and returns
 * { status, headers, body, ... } or nil plus an error table. Any other
 * transport (for example nginx cosockets) can offer the same shape.
 *
 * No Lua API call happens while curl_easy_perform runs: the callbacks only
 * copy bytes into buffers owned by the session, and Lua values are built
 * after libcurl returns. Memory that libcurl needs during a request (the
 * header list, the buffers) hangs off the session, so a Lua error raised
 * while a request is prepared leaks nothing: the next request or the
 * session's cleanup frees it.
 *
 * The transfer code (options, buffers, header parsing, error kinds) is
 * shared with the concurrent transport in multi.c through transfer.h.
 */
#include "compat.h"
#include "core.h"
#include "transfer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define SESSION_MT "cloudflare.Session"

/* A response larger than this is cut off (16 MiB unless configured). */
#define DEFAULT_MAX_RESPONSE (16L * 1024 * 1024)

/* Headers are small; this bounds a server that sends endless header lines. */
#define MAX_HEADER_BYTES (256L * 1024)

typedef struct {
  cf_transfer transfer;
  /* Settings kept from session(): each request starts from a reset handle. */
  cf_http_config config;
  long requests;
  /* Set while request runs. A finalizer that closes the session in the
     meantime (any Lua allocation can run one) only sets close_pending,
     and the release happens once request is done with the buffers. */
  int busy;
  int close_pending;
} session;

static void buffer_reset(cf_buffer *b, size_t limit) {
  b->len = 0;
  b->limit = limit;
  b->overflow = 0;
  b->oom = 0;
}

static void buffer_free(cf_buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Append n bytes; returns 0 on success, -1 when over the limit or OOM. */
static int buffer_append(cf_buffer *b, const char *p, size_t n) {
  if (n > b->limit - b->len) {
    b->overflow = 1;
    return -1;
  }

  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *grown;

    while (cap < b->len + n)
      cap *= 2;
    grown = realloc(b->data, cap);
    if (grown == NULL) {
      b->oom = 1;
      return -1;
    }
    b->data = grown;
    b->cap = cap;
  }

  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  cf_buffer *b = ud;
  size_t n = size * nmemb;

  /* Returning less than n makes libcurl abort with CURLE_WRITE_ERROR. */
  return buffer_append(b, p, n) == 0 ? n : 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  cf_buffer *b = ud;
  size_t n = size * nmemb;

  /* A status line starts a new response (after 1xx or a proxy CONNECT):
     only the headers of the final response are kept. */
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
    b->len = 0;
  return buffer_append(b, p, n) == 0 ? n : 0;
}

void cf_transfer_free(cf_transfer *t) {
  if (t->easy != NULL) {
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  curl_slist_free_all(t->req_headers);
  t->req_headers = NULL;
  buffer_free(&t->body);
  buffer_free(&t->head);
}

void cf_http_config_free(cf_http_config *c) {
  free(c->user_agent);
  free(c->ca_file);
  free(c->proxy);
  c->user_agent = c->ca_file = c->proxy = NULL;
}

/* Copy an optional string option into malloc'd memory owned by the
   caller's userdata. */
static void copy_option(lua_State *L, int opts, const char *owner,
                        const char *key, char **dst) {
  size_t len;
  const char *v;

  lua_getfield(L, opts, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "%s option '%s' must be a string", owner, key);

  v = lua_tolstring(L, -1, &len);
  if (memchr(v, '\0', len) != NULL)
    luaL_error(L, "%s option '%s' contains a NUL byte", owner, key);
  *dst = malloc(len + 1);
  if (*dst == NULL)
    luaL_error(L, "out of memory");
  memcpy(*dst, v, len + 1);
  lua_pop(L, 1);
}

void cf_http_config_read(lua_State *L, int opts, cf_http_config *c,
                         const char *owner) {
  c->verify_tls = 1;
  c->max_response = DEFAULT_MAX_RESPONSE;

  copy_option(L, opts, owner, "user_agent", &c->user_agent);
  copy_option(L, opts, owner, "ca_file", &c->ca_file);
  copy_option(L, opts, owner, "proxy", &c->proxy);

  lua_getfield(L, opts, "verify_tls");
  if (!lua_isnil(L, -1))
    c->verify_tls = lua_toboolean(L, -1);
  lua_pop(L, 1);

  lua_getfield(L, opts, "max_response_bytes");
  if (!lua_isnil(L, -1)) {
    lua_Number n = lua_tonumber(L, -1);

    if (!(n >= 1 && n <= 1073741824.0))
      luaL_error(L, "max_response_bytes must be from 1 to 2^30");
    c->max_response = (long)n;
  }
  lua_pop(L, 1);
}

static session *check_session(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, SESSION_MT);
}

static void session_release(session *s) {
  cf_transfer_free(&s->transfer);
  cf_http_config_free(&s->config);
}

/*
 * core.session(opts): opts.user_agent, opts.ca_file, opts.proxy,
 * opts.verify_tls (default true), opts.max_response_bytes.
 */
static int l_session(lua_State *L) {
  session *s;

  luaL_checktype(L, 1, LUA_TTABLE);

  s = lua_newuserdata(L, sizeof *s);
  memset(s, 0, sizeof *s);
  luaL_getmetatable(L, SESSION_MT);
  lua_setmetatable(L, -2);

  /* The userdata exists before any malloc, so __gc frees what follows
     even if an option check raises. */
  cf_http_config_read(L, 1, &s->config, "session");

  s->transfer.easy = curl_easy_init();
  if (s->transfer.easy == NULL)
    return luaL_error(L, "curl_easy_init failed");
  return 1;
}

static int has_forbidden_byte(const char *p, size_t len) {
  size_t i;

  for (i = 0; i < len; i++)
    if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
      return 1;
  return 0;
}

/* Seconds from a request field, as milliseconds; 0 means "no limit". */
static long field_ms(lua_State *L, int req, const char *key, long dflt) {
  lua_Number n;
  long ms;

  lua_getfield(L, req, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  n = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!(n > 0 && n < 86400.0 * 365))
    luaL_error(L, "request field '%s' must be a positive number", key);
  /* Round up: libcurl reads 0 ms as "no limit", so a positive value
     below half a millisecond must not become 0. */
  ms = (long)(n * 1000);
  if ((lua_Number)ms < n * 1000)
    ms++;
  return ms;
}

static void append_header(lua_State *L, cf_transfer *t, const char *line) {
  struct curl_slist *next = curl_slist_append(t->req_headers, line);

  if (next == NULL)
    luaL_error(L, "out of memory");
  t->req_headers = next;
}

/*
 * Build the header list from req.headers, an array of "Name: value"
 * strings. The list hangs off the transfer until its next request.
 */
static void build_headers(lua_State *L, cf_transfer *t, int req) {
  int i, n;

  curl_slist_free_all(t->req_headers);
  t->req_headers = NULL;

  lua_getfield(L, req, "headers");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  n = (int)cf_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *line;

    lua_rawgeti(L, -1, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "header %d must be a string", i);
    line = lua_tolstring(L, -1, &len);
    if (has_forbidden_byte(line, len))
      luaL_error(L, "header %d contains CR, LF or NUL", i);
    append_header(L, t, line);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  /* libcurl sends "Expect: 100-continue" for large bodies; the API does
     not need the extra round trip. */
  append_header(L, t, "Expect:");
}

static const char *error_kind(CURLcode rc, const cf_transfer *t) {
  if (t->body.overflow || rc == CURLE_FILESIZE_EXCEEDED)
    return "too_large";
  if (t->head.overflow)
    return "too_large";
  switch (rc) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
    return "connect";
  case CURLE_OPERATION_TIMEDOUT:
    return "timeout";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
    return "tls";
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_PARTIAL_FILE:
    return "read";
  case CURLE_SEND_ERROR:
    return "send";
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
    return "url";
  default:
    return "other";
  }
}

/* Push the header block of the final response as a table whose keys are
   lower-cased names; repeated headers are joined with ", ". */
static void push_headers(lua_State *L, const cf_buffer *b) {
  const char *p = b->data, *end = b->data + b->len;

  lua_newtable(L);
  while (p != NULL && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));

    if (colon != NULL && colon > p) {
      const char *v = colon + 1, *ve = line_end;
      luaL_Buffer name;
      const char *q;

      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;

      luaL_buffinit(L, &name);
      for (q = p; q < colon; q++)
        luaL_addchar(&name, (char)tolower((unsigned char)*q));
      luaL_pushresult(&name);

      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      } else {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : NULL;
  }
}

static void set_number(lua_State *L, const char *key, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

/* Timing and connection facts, added to both results and errors. */
static void push_info(lua_State *L, cf_transfer *t) {
  double total = 0;
  long connects = 0, req_size = 0;

  curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &total);
  curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &req_size);

  set_number(L, "total_time", total);
  lua_pushinteger(L, connects);
  lua_setfield(L, -2, "new_connections");
  lua_pushboolean(L, req_size > 0);
  lua_setfield(L, -2, "request_sent");
}

static void setup_common(cf_transfer *t, const cf_http_config *c,
                         long timeout_ms, long connect_ms,
                         long low_speed_time, long low_speed_limit) {
  CURL *e = t->easy;

  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                   (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  if (low_speed_time > 0 && low_speed_limit > 0) {
    /* Abort a transfer slower than low_speed_limit bytes/s on average
       for low_speed_time seconds. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, low_speed_time);
  }
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (long)c->verify_tls);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
  if (c->ca_file != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
  if (c->proxy != NULL)
    curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
  if (c->user_agent != NULL)
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                   (curl_off_t)c->max_response);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->head);
}

static int is_body_method(const char *method) {
  return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
         strcmp(method, "DELETE") == 0 || strcmp(method, "PATCH") == 0;
}

/* Set the method and, for methods that take one, the body. libcurl
   copies the body, so the Lua string need not outlive this call. */
static void setup_method(lua_State *L, cf_transfer *t, const char *method,
                         const char *body, size_t body_len) {
  CURL *e = t->easy;

  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    return;
  }

  if (strcmp(method, "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL || strcmp(method, "DELETE") != 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "")
        != CURLE_OK)
      luaL_error(L, "out of memory");
  }
}

/*
 * Fields of req:
 *   method           GET, POST, PUT, PATCH or DELETE
 *   url              absolute http or https URL
 *   headers          array of "Name: value" strings, optional
 *   body             string or nil
 *   timeout          seconds for the whole exchange (default 60)
 *   connect_timeout  seconds to connect (default 10)
 *   low_speed_time   whole seconds, with low_speed_limit in bytes/s
 *   fresh_connect    true to open a new connection instead of reusing one
 */
void cf_transfer_prepare(lua_State *L, cf_transfer *t,
                         const cf_http_config *c, int req) {
  const char *method, *url, *body = NULL;
  size_t url_len, body_len = 0;
  long timeout_ms, connect_ms, low_speed, low_speed_limit;
  int fresh;
  int top = lua_gettop(L);

  if (req < 0)
    req = top + req + 1;
  luaL_checktype(L, req, LUA_TTABLE);

  lua_getfield(L, req, "method");
  method = luaL_checkstring(L, -1);
  if (strcmp(method, "GET") != 0 && !is_body_method(method))
    luaL_error(L, "unsupported method '%s'", method);
  lua_getfield(L, req, "url");
  url = luaL_checklstring(L, -1, &url_len);
  if (has_forbidden_byte(url, url_len))
    luaL_error(L, "request url contains CR, LF or NUL");
  lua_getfield(L, req, "body");
  if (!lua_isnil(L, -1))
    body = luaL_checklstring(L, -1, &body_len);
  /* method, url and body stay on the stack until the options are set. */

  timeout_ms = field_ms(L, req, "timeout", 60000);
  connect_ms = field_ms(L, req, "connect_timeout", 10000);
  low_speed = field_ms(L, req, "low_speed_time", 0) / 1000;
  low_speed_limit = field_ms(L, req, "low_speed_limit", 0) / 1000;
  lua_getfield(L, req, "fresh_connect");
  fresh = lua_toboolean(L, -1);
  lua_pop(L, 1);
  build_headers(L, t, req);

  curl_easy_reset(t->easy);
  t->errbuf[0] = '\0';
  buffer_reset(&t->body, (size_t)c->max_response);
  buffer_reset(&t->head, MAX_HEADER_BYTES);
  setup_common(t, c, timeout_ms, connect_ms, low_speed, low_speed_limit);
  curl_easy_setopt(t->easy, CURLOPT_URL, url);

  /* libcurl silently re-sends a request once when a reused connection
     dies before any response byte arrives. For a request that must not
     run twice (req.fresh_connect), a new connection rules that out. */
  curl_easy_setopt(t->easy, CURLOPT_FRESH_CONNECT, (long)fresh);
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->req_headers);
  setup_method(L, t, method, body, body_len);

  lua_settop(L, top);
}

void cf_transfer_push_error(lua_State *L, cf_transfer *t, const char *kind,
                            const char *message, int code) {
  lua_newtable(L);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "curl_code");
  if (t->easy != NULL)
    push_info(L, t);
}

int cf_transfer_push_outcome(lua_State *L, cf_transfer *t, CURLcode rc,
                             const cf_http_config *c) {
  long status = 0;

  if (rc != CURLE_OK) {
    const char *kind = error_kind(rc, t);
    const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    int formatted = 0;

    if (strcmp(kind, "too_large") == 0) {
      lua_pushfstring(L, "response larger than %d bytes",
                      (int)(t->body.overflow || rc == CURLE_FILESIZE_EXCEEDED
                                ? c->max_response
                                : MAX_HEADER_BYTES));
      detail = lua_tostring(L, -1);
      formatted = 1;
    } else if (t->body.oom || t->head.oom) {
      detail = "out of memory while reading the response";
    }
    cf_transfer_push_error(L, t, kind, detail, (int)rc);
    if (formatted)
      lua_remove(L, -2);
    return 0;
  }

  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_newtable(L);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  push_headers(L, &t->head);
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
  lua_setfield(L, -2, "body");
  push_info(L, t);
  return 1;
}

/* Push nil and an error table: the failure shape of session:request. */
static int push_failure(lua_State *L, cf_transfer *t, const char *kind,
                        const char *message) {
  lua_pushnil(L);
  cf_transfer_push_error(L, t, kind, message, 0);
  return 2;
}

/*
 * session:request(req) performs one HTTP exchange and blocks until it
 * ends. The fields of req are those of cf_transfer_prepare. Returns the
 * response table, or nil and an error table.
 */
static int request_protected(lua_State *L) {
  session *s = lua_touserdata(L, 1);
  cf_transfer *t = &s->transfer;
  CURLcode rc;

  cf_transfer_prepare(L, t, &s->config, 2);
  if (s->close_pending)
    return push_failure(L, t, "closed", "the session was closed");

  s->requests++;
  rc = curl_easy_perform(t->easy);

  if (cf_transfer_push_outcome(L, t, rc, &s->config))
    return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int l_request(lua_State *L) {
  session *s = check_session(L, 1);
  int base, status;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (s->transfer.easy == NULL)
    return push_failure(L, &s->transfer, "closed", "the session is closed");
  if (s->busy)
    return luaL_error(L, "session:request called while a request of the "
                      "same session runs (from a finalizer?)");

  /* Run under lua_pcall, so that busy is cleared and a deferred close is
     done on every path, errors included. */
  lua_settop(L, 2);
  base = lua_gettop(L);
  lua_pushcfunction(L, request_protected);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  s->busy = 1;
  status = lua_pcall(L, 2, LUA_MULTRET, 0);
  s->busy = 0;
  if (s->close_pending) {
    s->close_pending = 0;
    session_release(s);
  }
  if (status != 0)
    return lua_error(L);
  return lua_gettop(L) - base;
}

static int l_close(lua_State *L) {
  session *s = check_session(L, 1);

  if (s->busy)
    s->close_pending = 1;
  else
    session_release(s);
  return 0;
}

static int l_closed(lua_State *L) {
  lua_pushboolean(L, check_session(L, 1)->transfer.easy == NULL);
  return 1;
}

static int l_tostring(lua_State *L) {
  session *s = check_session(L, 1);

  lua_pushfstring(L, "cloudflare.Session (%s, %d requests)",
                  s->transfer.easy ? "open" : "closed", (int)s->requests);
  return 1;
}

/* core.curl_version() returns libcurl's version string, e.g. "7.88.1". */
static int l_curl_version(lua_State *L) {
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  return 1;
}

void cf_http_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"request", l_request},
    {"close", l_close},
    {"closed", l_closed},
    {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"session", l_session},
    {"curl_version", l_curl_version},
    {NULL, NULL}
  };

  /* Not thread-safe before libcurl 7.84; Lua states load modules from
     one thread in every host this library targets. */
  curl_global_init(CURL_GLOBAL_DEFAULT);

  cf_register_handle(L, SESSION_MT, methods, l_close, l_tostring);

  cf_setfuncs(L, funcs);
}
