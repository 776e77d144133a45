/*
 * cloudflare.core: the C half of the client. It opens one module table and
 * lets each part (JSON conversion, HTTP transport) register its functions.
 */
#include "compat.h"
#include "core.h"

/* The build hides every other symbol with -fvisibility=hidden. */
__attribute__((visibility("default")))
int luaopen_cloudflare_core(lua_State *L) {
  lua_newtable(L);

  cf_json_open(L);
  cf_http_open(L);
  cf_multi_open(L);
  cf_clock_open(L);

  lua_pushliteral(L, CF_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
