#!/bin/sh
# make check: the test suite twice, optimised (build/) and under ASan+UBSan (build-debug/),
# then one total line "N passed, N failed" (what CI reads).
logs=$(mktemp -d /tmp/terse-check.XXXXXX)
make -j2 test 2>&1 | tee $logs/opt.log
make -j2 debug 2>&1 | tee $logs/debug.log
sum() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1; }
a=$(sum $logs/opt.log); b=$(sum $logs/debug.log)
pa=${a%% passed*}; fa=${a#*, }; fa=${fa%% failed*}
pb=${b%% passed*}; fb=${b#*, }; fb=${fb%% failed*}
[ -z "$a" ] && { pa=0; fa=1; }
[ -z "$b" ] && { pb=0; fb=1; }
echo "optimised: ${a:-no result}; sanitizers: ${b:-no result}"
echo "$((pa + pb)) passed, $((fa + fb)) failed"
[ $((fa + fb)) -eq 0 ]
