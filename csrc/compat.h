/*
 * Shims that let the core build against Lua 5.1, LuaJIT 2.1 and Lua 5.2 to
 * 5.4 headers. Every name carries the cf_ prefix because LuaJIT already
 * defines several of the luaL_ names that 5.2 introduced.
 */
#ifndef CF_COMPAT_H
#define CF_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define cf_rawlen(L, i) lua_objlen((L), (i))
#define cf_setfuncs(L, l) luaL_register((L), NULL, (l))
#else
#define cf_rawlen(L, i) lua_rawlen((L), (i))
#define cf_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#endif

/* True when the value at idx is a number with an exact integer value. */
#if LUA_VERSION_NUM >= 503
#define cf_isinteger(L, i) lua_isinteger((L), (i))
#else
int cf_isinteger(lua_State *L, int idx);
#endif

/*
 * Create the metatable `name` in the registry and leave it on the stack.
 * Lua 5.1 does not set __name, which argument errors and tostring read on
 * 5.3+, so it is set here on every version.
 */
void cf_newmetatable(lua_State *L, const char *name);

/*
 * Register the metatable `name` of a handle that must be closed: methods
 * under __index, and `close` as __gc and __close, so that one idempotent
 * cleanup serves all three. Leaves the stack as it found it.
 */
void cf_register_handle(lua_State *L, const char *name,
                        const luaL_Reg *methods, lua_CFunction close,
                        lua_CFunction tostring);

/* Return the userdata at idx if its metatable is `name`, else NULL. */
void *cf_testudata(lua_State *L, int idx, const char *name);

#endif
