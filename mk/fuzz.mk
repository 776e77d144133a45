# libFuzzer targets for the C core (fuzz/README.md).
#
#   make fuzz                   build, then run each target FUZZ_SECONDS
#   make fuzz FUZZ_SECONDS=20   shorter run, as CI does
#   make fuzz-build             only build build/fuzz/fuzz_*
#
# The main Makefile includes this file, and scripts/fuzz.sh also runs it
# on its own (make -f mk/fuzz.mk), so it defines every variable it uses.
# Every name here starts with FUZZ_ or fuzz- to stay clear of the main
# Makefile's.

FUZZ_CC ?= clang
FUZZ_PKG_CONFIG ?= pkg-config
FUZZ_CURL_CONFIG ?= curl-config
FUZZ_LUA_PKG ?= lua5.4

# Seconds each target runs under `make fuzz`.
FUZZ_SECONDS ?= 60

FUZZ_TARGETS := fuzz_response fuzz_request fuzz_json
FUZZ_BUILD_DIR := build/fuzz
FUZZ_OBJ_DIR := $(FUZZ_BUILD_DIR)/obj
FUZZ_SOURCES := $(sort $(wildcard csrc/*.c))
FUZZ_CORE_OBJECTS := $(FUZZ_SOURCES:csrc/%.c=$(FUZZ_OBJ_DIR)/%.o)
FUZZ_HARNESS_OBJECTS := $(FUZZ_TARGETS:fuzz_%=$(FUZZ_OBJ_DIR)/harness-%.o)
FUZZ_BINARIES := $(FUZZ_TARGETS:%=$(FUZZ_BUILD_DIR)/%)

# The core objects get coverage instrumentation without libFuzzer's
# main(); only the final link adds it.
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_BASE_CFLAGS = -std=c99 -g -O1 -Wall -Wextra -Wshadow \
	$(shell $(FUZZ_PKG_CONFIG) --cflags $(FUZZ_LUA_PKG)) \
	$(shell $(FUZZ_CURL_CONFIG) --cflags)
FUZZ_COMPILE_FLAGS = $(FUZZ_BASE_CFLAGS) $(FUZZ_SANITIZE) \
	-fsanitize=fuzzer-no-link
FUZZ_LINK_FLAGS = $(FUZZ_SANITIZE) -fsanitize=fuzzer
FUZZ_LIBS = $(shell $(FUZZ_PKG_CONFIG) --libs $(FUZZ_LUA_PKG)) \
	$(shell $(FUZZ_CURL_CONFIG) --libs) -lm

# The harness finds lua/ and fuzz/ through this absolute path; the
# environment variable CLOUDFLARE_FUZZ_ROOT overrides it at run time.
FUZZ_ROOT_DEFINE = -DFUZZ_ROOT='"$(CURDIR)"'

.PHONY: fuzz fuzz-build

fuzz:
	FUZZ_SECONDS='$(FUZZ_SECONDS)' scripts/fuzz.sh

fuzz-build: $(FUZZ_BINARIES)

# Objects that only pattern rules name are intermediate to make, which
# would delete them after each link and rebuild them every time.
.SECONDARY: $(FUZZ_HARNESS_OBJECTS) $(FUZZ_CORE_OBJECTS)

# One harness object per target: FUZZ_TARGET names its script in fuzz/.
$(FUZZ_BUILD_DIR)/fuzz_%: $(FUZZ_OBJ_DIR)/harness-%.o $(FUZZ_CORE_OBJECTS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LINK_FLAGS) -o $@ $^ $(FUZZ_LIBS)

$(FUZZ_OBJ_DIR)/harness-%.o: fuzz/harness.c mk/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_COMPILE_FLAGS) $(FUZZ_ROOT_DEFINE) \
	  -DFUZZ_TARGET='"$*"' -MMD -MP -c -o $@ $<

$(FUZZ_OBJ_DIR)/%.o: csrc/%.c mk/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_COMPILE_FLAGS) -MMD -MP -c -o $@ $<

# Dependency files are only read. The empty rule keeps make from trying
# to rebuild one with its built-in rules, which would take
# harness-response.d for a program linked from harness-response.d.o.
$(FUZZ_OBJ_DIR)/%.d: ;

-include $(wildcard $(FUZZ_OBJ_DIR)/*.d)
