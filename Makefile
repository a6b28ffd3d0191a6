# terse - one Makefile. Targets: all (library + CLI), test, debug (ASan/UBSan tests), bench,
# fuzz (clang libFuzzer), clean. Sources are picked up by folder: src/<layer>/*.c, cli/*.c,
# tests/test_*.c (one binary each), bench/bench_*.c (one binary each).
# install (PREFIX, DESTDIR): library, header, terse, default model, terse.pc; uninstall.
# PORTABLE=1: no -march=native (binaries for other machines; the vector kernels are then
# chosen at run time), built in build-portable/; or pick the target yourself with ARCH=...

CC      ?= cc
ifeq ($(PORTABLE),1)
BUILD   ?= build-portable
ARCH    ?=
endif
BUILD   ?= build
OPT     ?= -O2
ARCH    ?= $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
PCRE_CFLAGS := $(shell pkg-config --cflags libpcre2-8 2>/dev/null)
PCRE_LIBS   := $(shell pkg-config --libs libpcre2-8 2>/dev/null || echo -lpcre2-8)
JSON_LIBS   := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
STEM_LIBS   := -lstemmer

SAN     ?=
CFLAGS  ?= $(OPT) -g
CFLAGS  += $(SAN)
CFLAGS  += -std=c11 -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -fPIC $(ARCH) \
           -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
           -Iinclude -Isrc $(BLAS_CFLAGS) $(PCRE_CFLAGS)
LDLIBS  += $(BLAS_LIBS) $(PCRE_LIBS) $(JSON_LIBS) $(STEM_LIBS) -lm -lpthread
LDFLAGS += $(SAN)

LIB_SRC   := $(sort $(wildcard src/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC   := $(sort $(wildcard cli/*.c))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
HDRS      := $(wildcard include/*.h src/*/*.h tests/*.h)

.PHONY: all test debug check bench fuzz clean setup install uninstall
all: $(BUILD)/libterse.a $(BUILD)/libterse.so $(BUILD)/terse

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libterse.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libterse.so: $(LIB_OBJ) $(BUILD)/libterse.map
	$(CC) -shared -Wl,-soname,libterse.so.$(SO_MAJOR) -Wl,--version-script=$(BUILD)/libterse.map \
	      $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)

# The shared library exports the functions of include/terse.h and nothing else (internal
# helpers such as terse_json_bytes stay local; tests/cli_symbols.sh checks).
$(BUILD)/libterse.map: include/terse.h
	@mkdir -p $(dir $@)
	{ echo '{ global:'; grep -oE '\bterse_[a-z0-9_]+ *\(' include/terse.h | sed 's/ *(//' | \
	  sort -u | sed 's/$$/;/'; echo 'local: *; };'; } > $@

# terse serve (serve/) links libmicrohttpd and libcurl; only the command does, not the library.
SERVE_SRC := $(sort $(wildcard serve/*.c))
CLI_OBJ   += $(SERVE_SRC:%.c=$(BUILD)/%.o)
$(SERVE_SRC:%.c=$(BUILD)/%.o): $(wildcard serve/*.h)
$(CLI_OBJ): cli/cli.h
$(BUILD)/terse: LDLIBS += -lmicrohttpd -lcurl

$(BUILD)/terse: $(CLI_OBJ) $(BUILD)/libterse.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libterse.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libterse.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libterse.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c bench/util.c bench/util.h $(BUILD)/libterse.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< bench/util.c $(BUILD)/libterse.a $(LDLIBS)

# Tests: every tests/test_* binary, then the CLI checks; the runner prints "N passed, N failed".
test: all $(TEST_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

# Same tests under AddressSanitizer + UndefinedBehaviorSanitizer, in build-debug/.
debug:
	$(MAKE) BUILD=build-debug OPT="-O1 -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# CI: tests optimised and under sanitizers, one total line last.
check:
	@sh tools/check.sh

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

FUZZ_SRC := $(sort $(wildcard tests/fuzz_*.c))
fuzz:
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc $(PCRE_CFLAGS) -D_DEFAULT_SOURCE \
	    -o $(BUILD)/fuzz/$$n $$f $(LIB_SRC) $(LDLIBS) || exit 1; done

setup:
	sh tools/setup.sh

clean:
	rm -rf build build-debug build-portable

# ---------------------------------------------------------------------------------------------
# install: $(PREFIX)/bin/terse, lib/libterse.{a,so}, include/terse.h, share/terse/ (the default
# model, and cl100k_base.tiktoken when ../shared has it), lib/pkgconfig/terse.pc.
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := $(shell sed -n 's/^\#define TERSE_VERSION "\(.*\)"/\1/p' include/terse.h)
SO_MAJOR := 0
SHARED_DIR ?= $(if $(TERSE_SHARED),$(TERSE_SHARED),../shared)
CL100K   := $(SHARED_DIR)/vocab/tiktoken/cl100k_base.tiktoken
I        := $(DESTDIR)$(PREFIX)

install: all
	install -d $(I)/bin $(I)/lib/pkgconfig $(I)/include $(I)/share/terse
	install -m 755 $(BUILD)/terse $(I)/bin/terse
	install -m 644 $(BUILD)/libterse.a $(I)/lib/libterse.a
	install -m 755 $(BUILD)/libterse.so $(I)/lib/libterse.so.$(VERSION)
	ln -sf libterse.so.$(VERSION) $(I)/lib/libterse.so.$(SO_MAJOR)
	ln -sf libterse.so.$(SO_MAJOR) $(I)/lib/libterse.so
	install -m 644 include/terse.h $(I)/include/terse.h
	install -m 644 models/terse-default.gguf $(I)/share/terse/terse-default.gguf
	if [ -f $(CL100K) ]; then install -m 644 $(CL100K) $(I)/share/terse/; fi
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(BLAS_LIBS) $(PCRE_LIBS) $(JSON_LIBS) $(STEM_LIBS) -lm -lpthread)|' \
	    tools/terse.pc.in > $(I)/lib/pkgconfig/terse.pc

uninstall:
	rm -f $(I)/bin/terse $(I)/lib/libterse.a $(I)/lib/libterse.so $(I)/lib/libterse.so.$(SO_MAJOR) \
	      $(I)/lib/libterse.so.$(VERSION) $(I)/include/terse.h $(I)/lib/pkgconfig/terse.pc \
	      $(I)/share/terse/terse-default.gguf $(I)/share/terse/cl100k_base.tiktoken
	-rmdir $(I)/share/terse 2>/dev/null
