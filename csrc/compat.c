#include "compat.h"

#include <math.h>

#if LUA_VERSION_NUM < 503
int cf_isinteger(lua_State *L, int idx) {
  lua_Number n;

  if (lua_type(L, idx) != LUA_TNUMBER)
    return 0;
  n = lua_tonumber(L, idx);
  return n == floor(n) && n >= -9007199254740992.0 &&
         n <= 9007199254740992.0;
}
#endif

void cf_newmetatable(lua_State *L, const char *name) {
  luaL_newmetatable(L, name);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
}

void *cf_testudata(lua_State *L, int idx, const char *name) {
  void *p = lua_touserdata(L, idx);

  if (p == NULL || !lua_getmetatable(L, idx))
    return NULL;
  luaL_getmetatable(L, name);
  if (!lua_rawequal(L, -1, -2))
    p = NULL;
  lua_pop(L, 2);
  return p;
}

void cf_register_handle(lua_State *L, const char *name,
                        const luaL_Reg *methods, lua_CFunction close,
                        lua_CFunction tostring) {
  cf_newmetatable(L, name);
  lua_newtable(L);
  cf_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}
