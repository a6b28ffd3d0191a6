#!/bin/sh
# cli_portable.sh - the vector kernels of a portable build (issue 9, defect 12): src/nn/simd.c
# compiled without -march (as `make PORTABLE=1` does) must still pick its AVX2 bodies at run
# time on a CPU that has them (and the C bodies on one that has not), and pass the kernel
# tests. Links the test against $BUILD/libterse.a with the portable simd.o in front. Prints
# "N passed, N failed" last.
. "$(dirname "$0")/cli_lib.sh"
cli_setup portable
CLI_LOG=$TMP/log
BUILD=${BUILD:-build}
CC=${CC:-cc}

SAN=
nm "$BUILD/libterse.a" 2>/dev/null | grep -q __asan_init && SAN="-fsanitize=address,undefined"
LIBS="$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lpcre2-8 -ljansson -lstemmer -lm -lpthread"
FLAGS="$SAN -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc"
$CC $FLAGS -c src/nn/simd.c -o "$TMP/simd.o" > "$TMP/log" 2>&1
check "simd.c builds without -march" "[ $? -eq 0 ]"
$CC $FLAGS -o "$TMP/kernels" tests/test_nn_kernels.c "$TMP/simd.o" "$BUILD/libterse.a" $LIBS > "$TMP/log" 2>&1
check "kernel test links" "[ $? -eq 0 ]"
"$TMP/kernels" > "$TMP/log" 2>&1
check "kernel tests pass with run-time dispatch" "[ $? -eq 0 ] && grep -q ' 0 failed' '$TMP/log'"
cat > "$TMP/which.c" <<'C'
#include <stdio.h>
int simd_enabled(void);
int main(void) { printf("%d\n", simd_enabled()); return 0; }
C
$CC $SAN -o "$TMP/which" "$TMP/which.c" "$TMP/simd.o" "$BUILD/libterse.a" $LIBS > "$TMP/log" 2>&1
want=0
grep -q ' avx2 ' /proc/cpuinfo 2>/dev/null && grep -q ' fma ' /proc/cpuinfo && grep -q ' f16c ' /proc/cpuinfo && want=1
[ "$(uname -m)" = x86_64 ] || want=0
got=$("$TMP/which" 2>/dev/null)
check "vector bodies chosen as the CPU allows (want $want, got $got)" "[ '$got' = $want ]"
cli_finish
