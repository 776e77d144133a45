# Build, test and package lua-cloudflare. `make help` lists the targets.
# The scripts in scripts/ hold the logic; the targets only call them.

PKG_CONFIG ?= pkg-config
CURL_CONFIG ?= curl-config
LUA_PKG ?= lua5.4

SOURCES := $(sort $(wildcard csrc/*.c))

BUILD_DIR := build
OBJ_DIR := $(BUILD_DIR)/obj
CORE := $(BUILD_DIR)/cloudflare/core.so
ASAN_DIR := $(BUILD_DIR)/asan
ASAN_OBJ_DIR := $(ASAN_DIR)/obj
ASAN_CORE := $(ASAN_DIR)/cloudflare/core.so
NO_DLCLOSE := $(BUILD_DIR)/tools/no-dlclose.so

# Extra compiler flags, for example `make build CFLAGS_EXTRA=-Werror`.
CFLAGS_EXTRA ?=

# Recursive (=) so that pkg-config and curl-config run only when a recipe
# needs them, after scripts/deps.sh has had a chance to install them.
LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PKG))
CURL_CFLAGS = $(shell $(CURL_CONFIG) --cflags)
CURL_LIBS = $(shell $(CURL_CONFIG) --libs)

WARNING_FLAGS := -Wall -Wextra -Wshadow
BASE_CFLAGS := -std=c99 -g $(WARNING_FLAGS) -fPIC -fvisibility=hidden
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

CORE_CFLAGS = $(BASE_CFLAGS) -O2 $(LUA_CFLAGS) $(CURL_CFLAGS) \
	$(CFLAGS_EXTRA)
ASAN_CFLAGS = $(BASE_CFLAGS) -O1 $(SANITIZE_FLAGS) $(LUA_CFLAGS) \
	$(CURL_CFLAGS) $(CFLAGS_EXTRA)

OBJECTS := $(SOURCES:csrc/%.c=$(OBJ_DIR)/%.o)
ASAN_OBJECTS := $(SOURCES:csrc/%.c=$(ASAN_OBJ_DIR)/%.o)

.DEFAULT_GOAL := build
.PHONY: help deps build build-asan no-dlclose demo test lint sanitize \
	valgrind rock clean check-tools FORCE

help:
	@echo 'Targets:'
	@echo '  build      build the C core into $(CORE)'
	@echo '  demo       run examples/relay-lifecycle.lua on the emulator'
	@echo '  test       lint, busted suite, sanitizer suite, rockspec check'
	@echo '  lint       run luacheck on the Lua sources'
	@echo '  sanitize   run the busted suite with ASan and UBSan'
	@echo '  valgrind   run the busted suite under valgrind (slow)'
	@echo '  rock       install the rockspec into lua_modules/'
	@echo '  deps       install the Debian packages for the tests'
	@echo '  clean      remove build/'
	@echo '  repl       start the emulator and a Lua REPL with a client'
	@echo '  docs       build the HTML API reference into doc/'
	@echo '  fuzz       run the libFuzzer targets (FUZZ_SECONDS each)'
	@echo 'Variables: CFLAGS_EXTRA (extra compiler flags, e.g. -Werror)'

deps:
	scripts/deps.sh test

build: $(CORE)

build-asan: $(ASAN_CORE) $(NO_DLCLOSE)

no-dlclose: $(NO_DLCLOSE)

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

sanitize:
	scripts/sanitize.sh

valgrind:
	scripts/valgrind.sh

rock:
	scripts/rock.sh install lua_modules

clean:
	rm -rf $(BUILD_DIR)

check-tools:
	@$(PKG_CONFIG) --exists $(LUA_PKG) || { \
	  echo "make: $(PKG_CONFIG) does not find $(LUA_PKG);" \
	    "run 'make deps' first" >&2; exit 1; }
	@command -v $(CURL_CONFIG) >/dev/null || { \
	  echo "make: $(CURL_CONFIG) not found; run 'make deps' first" >&2; \
	  exit 1; }

$(CORE): $(OBJECTS) $(OBJ_DIR)/cflags
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(OBJECTS) $(CURL_LIBS) $(LDFLAGS)

$(ASAN_CORE): $(ASAN_OBJECTS) $(ASAN_OBJ_DIR)/cflags
	@mkdir -p $(@D)
	$(CC) -shared $(SANITIZE_FLAGS) -o $@ $(ASAN_OBJECTS) $(CURL_LIBS) \
	  $(LDFLAGS)

$(NO_DLCLOSE): scripts/no-dlclose.c
	@mkdir -p $(@D)
	$(CC) -std=c99 -O2 $(WARNING_FLAGS) -fPIC -shared -o $@ $<

$(OBJ_DIR)/%.o: csrc/%.c $(OBJ_DIR)/cflags | check-tools
	$(CC) $(CORE_CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

$(ASAN_OBJ_DIR)/%.o: csrc/%.c $(ASAN_OBJ_DIR)/cflags | check-tools
	$(CC) $(ASAN_CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

# Each cflags file records the compile and link flags of the last build
# and changes only when they do, so that a new CFLAGS_EXTRA rebuilds.
CORE_FLAGS_RECORD = $(CC) $(CORE_CFLAGS) $(CPPFLAGS) $(CURL_LIBS) $(LDFLAGS)
ASAN_FLAGS_RECORD = $(CC) $(ASAN_CFLAGS) $(CPPFLAGS) $(CURL_LIBS) $(LDFLAGS)

$(OBJ_DIR)/cflags: FORCE | check-tools
	@mkdir -p $(@D)
	@echo '$(CORE_FLAGS_RECORD)' | cmp -s - $@ || \
	  echo '$(CORE_FLAGS_RECORD)' >$@

$(ASAN_OBJ_DIR)/cflags: FORCE | check-tools
	@mkdir -p $(@D)
	@echo '$(ASAN_FLAGS_RECORD)' | cmp -s - $@ || \
	  echo '$(ASAN_FLAGS_RECORD)' >$@

FORCE:

-include $(wildcard $(OBJ_DIR)/*.d $(ASAN_OBJ_DIR)/*.d)

# Targets kept in their own files: repl, docs, fuzz.
-include $(wildcard mk/*.mk)
