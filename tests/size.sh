#!/usr/bin/env bash
# size.sh BUILD_DIR [REDIS_TESTS_TMP] - what `make size` prints: the code and data of rsbus in the builds
# an embedded gateway cares about, then the heap a publish-only bus holds (build/size/size_heap).
#
# Rows (gcc -Os, hiredis linked as a shared library, so none of its bytes are counted here):
#   implementation      rsbus.h's implementation alone, every part, as an object file
#   impl, gateway set   the same with RSBUS_NO_SCHEMA/_DEDUPE/_ADMIN/_CLUSTER/_MEM (the spool stays)
#   gateway             tests/size_prog.c -DSIZE_GATEWAY (open, publish, spool flush, close), the gateway
#                       switches, -ffunction-sections -fdata-sections -Wl,--gc-sections: the whole program
#   examples/gateway    examples/gateway.c built the same way
#   worker              tests/size_prog.c -DSIZE_WORKER (subscribe, rsbus_run), RSBUS_NO_SPOOL/_ADMIN/
#                       _CLUSTER/_MEM, the same flags
# Columns: the .text, .rodata, .data and .bss sections, and "text" as size(1) counts it (everything
# read-only: .text, .rodata, .eh_frame, ...). Goals: gateway text <= 32 KiB, implementation text <= 96 KiB,
# gateway heap <= 64 KiB; a missed goal makes size.sh exit 1 after listing the largest functions.
set -u
build=${1:-build}/size
CC=${CC:-cc}
mkdir -p "$build" || exit 1
hcflags=$(pkg-config --cflags hiredis 2>/dev/null)
hlibs=$(pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)
WARN="-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings -Wcast-qual"
base="-std=c99 $WARN -Werror -Os -I. $hcflags"
gc="-ffunction-sections -fdata-sections"
gw_sw="-DRSBUS_NO_SCHEMA -DRSBUS_NO_DEDUPE -DRSBUS_NO_ADMIN -DRSBUS_NO_CLUSTER -DRSBUS_NO_MEM"
wk_sw="-DRSBUS_NO_SPOOL -DRSBUS_NO_ADMIN -DRSBUS_NO_CLUSTER -DRSBUS_NO_MEM"
printf '#define _POSIX_C_SOURCE 200809L\n#define RSBUS_IMPLEMENTATION\n#include "rsbus.h"\n' > "$build/impl.c"

run() { "$@" || { echo "size.sh: failed: $*" >&2; exit 1; }; }
run $CC $base -c "$build/impl.c" -o "$build/impl.o"
run $CC $base $gw_sw -c "$build/impl.c" -o "$build/impl_gateway.o"
run $CC $base $gc $gw_sw -DSIZE_GATEWAY tests/size_prog.c -o "$build/gateway" -Wl,--gc-sections $hlibs -lm
run $CC $base $gc $gw_sw examples/gateway.c -o "$build/example_gateway" -Wl,--gc-sections $hlibs -lm
run $CC $base $gc $wk_sw -DSIZE_WORKER tests/size_prog.c -o "$build/worker" -Wl,--gc-sections $hlibs -lm
run $CC $base $gw_sw tests/size_heap.c -o "$build/size_heap" $hlibs -lm

# section NAME FILE: its size in bytes (0 when absent)
section() { size -A "$2" | awk -v s="$1" '$1 == s { n += $2 } END { print n + 0 }'; }
berkeley_text() { size -B "$1" | awk 'NR == 2 { print $1 }'; }
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

printf '%-20s %9s %9s %7s %7s %9s %11s\n' "build" ".text" ".rodata" ".data" ".bss" "text" "text (KiB)"
status=0
for row in "implementation:impl.o" "impl, gateway set:impl_gateway.o" "gateway:gateway" \
           "examples/gateway:example_gateway" "worker:worker"; do
    name=${row%%:*}; f=$build/${row#*:}
    t=$(berkeley_text "$f")
    printf '%-20s %9d %9d %7d %7d %9d %11s\n' "$name" "$(section .text "$f")" "$(section .rodata "$f")" \
        "$(section .data "$f")" "$(section .bss "$f")" "$t" "$(kib "$t")"
    case $name in
        implementation) goal=$((96 * 1024)) ;;
        gateway) goal=$((32 * 1024)) ;;
        *) goal= ;;
    esac
    if [ -n "$goal" ] && [ "$t" -gt "$goal" ]; then
        echo "size.sh: $name: $t bytes of text, over its goal of $goal; the largest symbols:"
        nm --size-sort -S "$f" | tail -n 15
        status=1
    fi
done
echo "(gcc $($CC -dumpversion) $(uname -m), -Os; hiredis $(pkg-config --modversion hiredis 2>/dev/null) is a shared library, not counted)"

echo
out=$("$build/size_heap") || { echo "$out"; echo "size.sh: size_heap failed" >&2; exit 1; }
echo "$out"
peak=$(echo "$out" | sed -n 's/.*peak \([0-9]*\) bytes.*/\1/p')
if [ -z "$peak" ] || [ "$peak" -gt $((64 * 1024)) ]; then
    echo "size.sh: gateway heap peak ${peak:-?} bytes, over its goal of 65536"
    status=1
fi
exit $status
