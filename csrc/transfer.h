/*
 * One HTTP exchange over a libcurl easy handle, shared by the blocking
 * session (http.c) and the concurrent multi (multi.c).
 *
 * A transfer owns everything libcurl reads or writes while it runs: the
 * easy handle, the request header list, the response buffers and the
 * error buffer. libcurl copies the URL, the method and the request body
 * (CURLOPT_COPYPOSTFIELDS), so no pointer into a Lua string outlives the
 * call that prepared the transfer.
 *
 * The functions below are extern only so that both files can call them.
 * The build hides them with -fvisibility=hidden, and the cf_ prefix keeps
 * them apart from other libraries where it does not.
 */
#ifndef CF_TRANSFER_H
#define CF_TRANSFER_H

#include <stddef.h>

#include <curl/curl.h>
#include <lua.h>

/* A growing byte buffer with a size limit, filled by libcurl callbacks. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
  size_t limit;
  int overflow;   /* set when a write would pass limit */
  int oom;        /* set when realloc failed */
} cf_buffer;

/* Options of core.session and core.multi that apply to every request. */
typedef struct {
  char *user_agent;
  char *ca_file;
  char *proxy;
  int verify_tls;
  long max_response;
} cf_http_config;

typedef struct {
  CURL *easy;
  struct curl_slist *req_headers;
  cf_buffer body;
  cf_buffer head;
  char errbuf[CURL_ERROR_SIZE];
} cf_transfer;

/*
 * Read user_agent, ca_file, proxy, verify_tls and max_response_bytes from
 * the table at index opts into c, which must start zeroed. Raises for a
 * bad value; the strings already copied stay in c, so the owner's
 * cleanup frees them. `owner` names the constructor in messages.
 */
void cf_http_config_read(lua_State *L, int opts, cf_http_config *c,
                         const char *owner);
void cf_http_config_free(cf_http_config *c);

/*
 * Set up t->easy for the request table at index req: method, url,
 * headers, body, timeout, connect_timeout, low_speed_time,
 * low_speed_limit and fresh_connect. Raises for a malformed request
 * before the handle is touched; afterwards only "out of memory" can
 * raise. The easy handle must exist. CURLOPT_PRIVATE is left unset.
 */
void cf_transfer_prepare(lua_State *L, cf_transfer *t,
                         const cf_http_config *c, int req);

/*
 * Push one table describing how the transfer ended with code rc: the
 * response { status, headers, body, total_time, new_connections,
 * request_sent } when rc is CURLE_OK, else the error { kind, message,
 * curl_code, total_time, new_connections, request_sent }. Returns 1 for
 * a response and 0 for an error.
 */
int cf_transfer_push_outcome(lua_State *L, cf_transfer *t, CURLcode rc,
                             const cf_http_config *c);

/* Push an error table of the given kind, with the transfer's timing
   facts when it has an easy handle. */
void cf_transfer_push_error(lua_State *L, cf_transfer *t, const char *kind,
                            const char *message, int code);

/* Free the easy handle, the header list and the buffers. Idempotent. */
void cf_transfer_free(cf_transfer *t);

#endif
