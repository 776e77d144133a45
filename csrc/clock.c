/*
 * Monotonic time and sleeping, for retry backoff and rate limiting. A host
 * with its own event loop (nginx) passes its own functions instead.
 */
#define _POSIX_C_SOURCE 200809L

#include "compat.h"
#include "core.h"

#include <errno.h>
#include <time.h>

/* core.now() returns seconds on a monotonic clock, as a float. */
static int l_now(lua_State *L) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

/* core.sleep(seconds) blocks the thread; negative values sleep 0. */
static int l_sleep(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  struct timespec ts;

  if (!(seconds > 0))
    return 0;
  if (seconds > 86400)
    seconds = 86400;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
  return 0;
}

/* core.time() returns seconds since the Unix epoch, as a float. */
static int l_time(lua_State *L) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

void cf_clock_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"now", l_now},
    {"sleep", l_sleep},
    {"time", l_time},
    {NULL, NULL}
  };

  cf_setfuncs(L, funcs);
}
