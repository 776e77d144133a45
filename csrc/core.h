#ifndef CF_CORE_H
#define CF_CORE_H

#include <lua.h>

#define CF_VERSION "0.1.0"

/*
 * Each part registers its functions into the module table at the top of
 * the stack and leaves the stack as it found it.
 */
void cf_json_open(lua_State *L);
void cf_http_open(lua_State *L);
void cf_multi_open(lua_State *L);
void cf_clock_open(lua_State *L);

#endif
