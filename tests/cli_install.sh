#!/bin/sh
# cli_install.sh - `make install` into a temporary prefix (issue 9, defect 12): every file in
# place, terse.pc usable, a small C program (tests/data/install_user.c) built with pkg-config
# against the shared library and against the static one, run on the installed default model,
# and the installed terse finding its model and cl100k from elsewhere. Uses $BUILD (default
# build); prints "N passed, N failed" last.
. "$(dirname "$0")/cli_lib.sh"
cli_setup install
CLI_LOG=$TMP/log
BUILD=${BUILD:-build}
CC=${CC:-cc}

if [ ! -f models/terse-default.gguf ] || ! command -v pkg-config >/dev/null; then
  cli_skip "default model or pkg-config missing"
fi
P=$TMP/prefix
make -s install PREFIX="$P" BUILD="$BUILD" > "$TMP/log" 2>&1
check "make install" "[ $? -eq 0 ]"
for f in bin/terse lib/libterse.a lib/libterse.so lib/libterse.so.0 include/terse.h \
         share/terse/terse-default.gguf lib/pkgconfig/terse.pc; do
  check "installed $f" "[ -e '$P/$f' ]"
done
check "soname" "objdump -p '$P/lib/libterse.so' 2>/dev/null | grep -q 'SONAME.*libterse.so.0'"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
check "pkg-config version" "[ \"\$(pkg-config --modversion terse)\" = \"\$(sed -n 's/^#define TERSE_VERSION \"\\(.*\\)\"/\\1/p' include/terse.h)\" ]"
# a sanitizer build's library needs the sanitizer runtime in the program too
SAN=
nm "$BUILD/libterse.a" 2>/dev/null | grep -q __asan_init && SAN="-fsanitize=address,undefined"
$CC $SAN -std=c11 -o "$TMP/user_so" tests/data/install_user.c $(pkg-config --cflags --libs terse) \
    -Wl,-rpath,"$P/lib" > "$TMP/log" 2>&1
check "build against libterse.so with pkg-config" "[ $? -eq 0 ]"
LIBS=$(pkg-config --libs --static terse | sed 's/-lterse/-l:libterse.a/')
$CC $SAN -std=c11 -o "$TMP/user_a" tests/data/install_user.c $(pkg-config --cflags terse) $LIBS > "$TMP/log" 2>&1
check "build against libterse.a with pkg-config --static" "[ $? -eq 0 ]"
check "static program has no libterse.so" "! ldd '$TMP/user_a' 2>/dev/null | grep -q libterse"
check "shared program uses the installed libterse.so" "ldd '$TMP/user_so' 2>/dev/null | grep -q '$P/lib/libterse.so'"
for prog in user_so user_a; do
  "$TMP/$prog" "$P/share/terse/terse-default.gguf" > "$TMP/$prog.out" 2> "$TMP/log"
  check "$prog runs" "[ $? -eq 0 ] && grep -q '^ok ' '$TMP/$prog.out'"
done
check "both programs agree" "cmp -s '$TMP/user_so.out' '$TMP/user_a.out'"

# the installed terse, run from elsewhere, finds its default model (and cl100k if installed)
echo "The quick brown fox jumps over the lazy dog." > "$TMP/fox.txt"
(cd "$TMP" && env -u TERSE_MODEL -u TERSE_SHARED "$P/bin/terse" info) > "$TMP/info" 2> "$TMP/log"
check "installed terse finds its model" "grep -q 'share/terse/terse-default.gguf' '$TMP/info' || grep -q 'architecture  llama' '$TMP/info'"
if [ -f "$P/share/terse/cl100k_base.tiktoken" ]; then
  n=$(cd "$TMP" && env -u TERSE_SHARED -u TERSE_CL100K "$P/bin/terse" tokenize cl100k --count < fox.txt 2> "$TMP/log")
  check "installed terse finds cl100k" "[ '$n' = 10 ]"
fi
make -s uninstall PREFIX="$P" BUILD="$BUILD" > "$TMP/log" 2>&1
check "make uninstall" "[ $? -eq 0 ] && [ ! -e '$P/bin/terse' ] && [ ! -e '$P/lib/libterse.so' ] && [ ! -e '$P/share/terse' ]"

cli_finish
