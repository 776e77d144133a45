/*
 * libFuzzer entry points shared by every fuzz target of cloudflare.core.
 *
 * One Lua 5.4 state lives for the whole run. It has the C core linked in
 * (luaopen_cloudflare_core in package.preload), package.path set to the
 * repository's lua/ and fuzz/ directories, and a check function returned
 * by the target's Lua script, fuzz/<FUZZ_TARGET>.lua. Each input is
 * passed to that function as a string. Any Lua error other than a memory
 * error, raised by the code under test or by a failed check, is a
 * finding. The harness prints it with a traceback and traps, and
 * libFuzzer saves the input. Half of the mutations come from
 * fuzz/mutate.lua, which edits the decoded JSON tree.
 *
 * Compile-time defines: FUZZ_ROOT (absolute path of the repository) and
 * FUZZ_TARGET (the script name, e.g. "response"). The environment
 * variable CLOUDFLARE_FUZZ_ROOT overrides FUZZ_ROOT.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef FUZZ_ROOT
#error "define FUZZ_ROOT as the absolute path of the repository"
#endif
#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET as the name of a script in fuzz/"
#endif

int luaopen_cloudflare_core(lua_State *L);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/*
 * Maximum bytes the Lua state may hold. An allocation past it fails, so
 * Lua raises a memory error, which the harness accepts. libFuzzer's own
 * -rss_limit_mb catches growth outside Lua.
 */
#define LUA_MEMORY_LIMIT ((size_t)512 * 1024 * 1024)

/*
 * Line coverage of the Lua code, for libFuzzer. Liblua5.4 is not
 * instrumented, so without these counters libFuzzer would see only the
 * branches of the C core. A line hook counts each pair (previous line,
 * this line) in a slot of this array, and libFuzzer reads the section
 * __libfuzzer_extra_counters as extra coverage (libFuzzer of LLVM 6 and
 * later, on Linux).
 */
#define LUA_EDGE_SLOTS 65536

__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_edge_counters[LUA_EDGE_SLOTS];

static uintptr_t previous_line_id;
static size_t lua_memory_used;
static lua_State *state;
static int check_ref = LUA_NOREF;
static int mutate_ref = LUA_NOREF;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;

  /* osize is a type tag, not a size, when ptr is NULL. */
  if (ptr == NULL)
    osize = 0;

  if (nsize == 0) {
    free(ptr);
    lua_memory_used -= osize;
    return NULL;
  }

  if (nsize > osize && nsize - osize > LUA_MEMORY_LIMIT - lua_memory_used)
    return NULL;

  ptr = realloc(ptr, nsize);
  if (ptr != NULL)
    lua_memory_used = lua_memory_used - osize + nsize;
  return ptr;
}

static void count_lua_line(lua_State *L, lua_Debug *ar) {
  uintptr_t line_id;

  if (!lua_getinfo(L, "S", ar))
    return;

  /* The source string of a loaded chunk stays at one address. */
  line_id = (uintptr_t)ar->source * 31u;
  line_id ^= (uintptr_t)ar->linedefined * 2654435761u;
  line_id ^= (uintptr_t)ar->currentline * 40503u;
  line_id &= LUA_EDGE_SLOTS - 1;

  /* Saturate at 255, so that a long loop never wraps back to 0. */
  if (lua_edge_counters[line_id ^ previous_line_id] < 255)
    lua_edge_counters[line_id ^ previous_line_id]++;
  previous_line_id = line_id >> 1;
}

static int add_traceback(lua_State *L) {
  const char *message = lua_tostring(L, 1);

  if (message == NULL)
    message = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, 1));
  luaL_traceback(L, L, message, 1);
  return 1;
}

static void fail_setup(const char *what, const char *detail) {
  fprintf(stderr, "fuzz harness: %s: %s\n", what, detail);
  exit(1);
}

/* Set package.path and package.cpath for the repository at root. */
static void set_module_paths(lua_State *L, const char *root) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/fuzz/?.lua", root,
                  root, root);
  lua_setfield(L, -2, "path");

  /*
   * An empty cpath keeps require from loading build/cloudflare/core.so,
   * a second, uninstrumented copy of the core.
   */
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");

  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cloudflare_core);
  lua_setfield(L, -2, "cloudflare.core");
  lua_pop(L, 2);
}

/* Run fuzz/<FUZZ_TARGET>.lua and keep the function it returns. */
static void load_check_function(lua_State *L, const char *root) {
  const char *script;

  lua_pushcfunction(L, add_traceback);
  script = lua_pushfstring(L, "%s/fuzz/%s.lua", root, FUZZ_TARGET);
  if (luaL_loadfile(L, script) != LUA_OK)
    fail_setup("cannot load the target script", lua_tostring(L, -1));
  lua_remove(L, -2);
  if (lua_pcall(L, 0, 1, -2) != LUA_OK)
    fail_setup("the target script failed", lua_tostring(L, -1));
  if (lua_type(L, -1) != LUA_TFUNCTION)
    fail_setup(script, "expected the script to return a function");
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
}

/* Keep mutate from fuzz/mutate.lua, the structure-aware mutator. */
static void load_mutate_function(lua_State *L) {
  lua_pushcfunction(L, add_traceback);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mutate");
  if (lua_pcall(L, 1, 1, -3) != LUA_OK)
    fail_setup("cannot load fuzz/mutate.lua", lua_tostring(L, -1));
  lua_getfield(L, -1, "mutate");
  if (lua_type(L, -1) != LUA_TFUNCTION)
    fail_setup("fuzz/mutate.lua", "expected a function mutate");
  mutate_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *root = getenv("CLOUDFLARE_FUZZ_ROOT");

  (void)argc;
  (void)argv;
  if (root == NULL || root[0] == '\0')
    root = FUZZ_ROOT;

  state = lua_newstate(limited_alloc, NULL);
  if (state == NULL)
    fail_setup("lua_newstate", "not enough memory");
  luaL_openlibs(state);
  set_module_paths(state, root);
  load_check_function(state, root);
  load_mutate_function(state);

  /* Set after loading, so that the modules' top-level code is not counted
   * as coverage of the first input. */
  lua_sethook(state, count_lua_line, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state;
  int status;

  lua_settop(L, 0);
  previous_line_id = 0;
  lua_pushcfunction(L, add_traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size);
  status = lua_pcall(L, 1, 0, 1);

  if (status != LUA_OK && status != LUA_ERRMEM) {
    fprintf(stderr, "fuzz harness: the %s check raised a Lua error:\n%s\n",
            FUZZ_TARGET, lua_tostring(L, -1));
    __builtin_trap();
  }
  lua_settop(L, 0);

  /* A full collection per input keeps garbage from one input out of the
   * memory limit of the next. */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

/*
 * Mutate half of the inputs with fuzz/mutate.lua, which changes one value
 * of the decoded JSON tree, and the other half, and every input that
 * does not decode, with libFuzzer's byte-level mutations.
 */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  lua_State *L = state;
  const char *text;
  size_t len = 0;
  int status;

  if (seed % 2 == 0)
    return LLVMFuzzerMutate(data, size, max_size);

  /* The mutator's own lines are not coverage of the code under test. */
  lua_sethook(L, NULL, 0, 0);
  lua_settop(L, 0);
  lua_pushcfunction(L, add_traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, mutate_ref);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushinteger(L, (lua_Integer)max_size);
  lua_pushinteger(L, (lua_Integer)(seed / 2));
  status = lua_pcall(L, 3, 1, 1);
  lua_sethook(L, count_lua_line, LUA_MASKLINE, 0);

  if (status != LUA_OK && status != LUA_ERRMEM) {
    fprintf(stderr, "fuzz harness: fuzz/mutate.lua raised an error:\n%s\n",
            lua_tostring(L, -1));
    abort();
  }
  if (status == LUA_OK)
    text = lua_tolstring(L, -1, &len);
  else
    text = NULL;
  if (text != NULL && len > 0 && len <= max_size)
    memcpy(data, text, len);
  else
    len = LLVMFuzzerMutate(data, size, max_size);
  lua_settop(L, 0);
  return len;
}
