#!/usr/bin/env bash
# size.sh BUILD_DIR [REDIS_TESTS_TMP] - what `make size` prints: the code and data of rsbus in the builds
# an embedded gateway cares about, then the heap a publish-only bus holds (build/size/size_heap).
#
# Rows (gcc -Os, hiredis linked as a shared library, so none of its bytes are counted here):
#   implementation      rsbus.h's implementation alone, every part, as an object file
#   impl, gateway set   the same with RSBUS_NO_SCHEMA/_DEDUPE/_ADMIN/_CLUSTER/_MEM (the spool stays)
#   gateway             tests/size_prog.c -DSIZE_GATEWAY (open, publish, spool flush, close), the gateway
#                       switches, -ffunction-sections -fdata-sections -Wl,--gc-sections: the whole program
#   gateway, no unwind  the same with -fno-asynchronous-unwind-tables (no .eh_frame: C code needs none to
#                       run; debuggers use the debug info)
#   examples/gateway    examples/gateway.c built like the gateway row
#   worker              tests/size_prog.c -DSIZE_WORKER (subscribe, rsbus_run), RSBUS_NO_SPOOL/_ADMIN/
#                       _CLUSTER/_MEM, the same flags
#   .../armhf           the implementation and the gateway for 32-bit ARM (Debian's arm-linux-gnueabihf-gcc:
#                       Thumb-2), when make test-cross's compiler and hiredis are installed; the heap of
#                       size_heap is then also measured under qemu-arm
# Columns: the .text (code), .rodata* (constants and strings), .eh_frame (unwind tables), .data and .bss
# sections, and "text" as size(1) counts it: everything read-only, those and, in a program, the dynamic
# linking tables. Goals: gateway text <= 32 KiB, implementation text <= 96 KiB, gateway heap <= 64 KiB.
# This is a measurement, not a test: a missed goal is said, with the largest symbols (nm --size-sort),
# and size.sh still exits 0; it exits 1 only when something cannot be built or run.
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
run $CC $base $gc $gw_sw -fno-asynchronous-unwind-tables -DSIZE_GATEWAY tests/size_prog.c -o "$build/gateway_nounwind" \
    -Wl,--gc-sections $hlibs -lm
run $CC $base $gc $gw_sw examples/gateway.c -o "$build/example_gateway" -Wl,--gc-sections $hlibs -lm
run $CC $base $gc $wk_sw -DSIZE_WORKER tests/size_prog.c -o "$build/worker" -Wl,--gc-sections $hlibs -lm
run $CC $base $gw_sw tests/size_heap.c -o "$build/size_heap" $hlibs -lm
arm=arm-linux-gnueabihf
rows_arm=
if command -v $arm-gcc >/dev/null 2>&1 && [ -f /usr/lib/$arm/libhiredis.so ] && command -v qemu-arm >/dev/null 2>&1; then
    abase="-std=c99 $WARN -Werror -Os -I. -D_FILE_OFFSET_BITS=64"
    run $arm-gcc $abase -c "$build/impl.c" -o "$build/impl_armhf.o"
    run $arm-gcc $abase $gc $gw_sw -DSIZE_GATEWAY tests/size_prog.c -o "$build/gateway_armhf" -Wl,--gc-sections \
        -L/usr/lib/$arm -lhiredis -lm
    run $arm-gcc $abase $gw_sw tests/size_heap.c -o "$build/size_heap_armhf" /usr/lib/$arm/libhiredis.a -lm
    rows_arm="implementation/armhf:impl_armhf.o gateway/armhf:gateway_armhf"
fi

# section NAME FILE: its size in bytes, summed over NAME and NAME.* (0 when absent)
section() { size -A "$2" | awk -v s="$1" '$1 == s || index($1, s ".") == 1 { n += $2 } END { print n + 0 }'; }
berkeley_text() { size -B "$1" | awk 'NR == 2 { print $1 }'; }
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

printf '%-20s %8s %8s %9s %6s %6s %8s %11s\n' "build" ".text" ".rodata" ".eh_frame" ".data" ".bss" "text" "text (KiB)"
notes=
for row in "implementation:impl.o" "impl, gateway set:impl_gateway.o" "gateway:gateway" \
           "gateway, no unwind:gateway_nounwind" "examples/gateway:example_gateway" "worker:worker" $rows_arm; do
    name=${row%%:*}; f=$build/${row#*:}
    t=$(berkeley_text "$f")
    printf '%-20s %8d %8d %9d %6d %6d %8d %11s\n' "$name" "$(section .text "$f")" "$(section .rodata "$f")" \
        "$(section .eh_frame "$f")" "$(section .data "$f")" "$(section .bss "$f")" "$t" "$(kib "$t")"
    case $name in
        implementation|implementation/armhf) goal=$((96 * 1024)) ;;
        gateway|gateway/armhf) goal=$((32 * 1024)) ;;
        *) goal= ;;
    esac
    if [ -n "$goal" ] && [ "$t" -gt "$goal" ]; then
        notes="$notes$name: text $t bytes, over its goal of $goal; .text alone $(section .text "$f"). Largest symbols:
$(nm --size-sort -S -t d "$f" | tail -n 12 | awk '{ printf "    %6d %s %s\n", $2, $3, $4 }')
"
    fi
done
echo "(gcc $($CC -dumpversion) $(uname -m)${rows_arm:+ and $arm-gcc $($arm-gcc -dumpversion)}, -Os;" \
     "hiredis $(pkg-config --modversion hiredis 2>/dev/null) is a shared library, not counted)"

[ -z "$notes" ] || printf '\nGoals missed:\n%s' "$notes"
echo
out=$("$build/size_heap") || { echo "$out"; echo "size.sh: size_heap failed" >&2; exit 1; }
echo "$out"
peak=$(echo "$out" | sed -n 's/.*peak \([0-9]*\) bytes.*/\1/p')
[ -n "$peak" ] || { echo "size.sh: size_heap printed no peak" >&2; exit 1; }
if [ -n "$rows_arm" ]; then
    aout=$(qemu-arm "$build/size_heap_armhf") || { echo "$aout"; echo "size.sh: size_heap (armhf) failed" >&2; exit 1; }
    echo "$aout" | sed 's/^heap:/heap, armhf:/'
fi
if [ "$peak" -gt $((64 * 1024)) ]; then echo "goal missed: gateway heap peak $peak bytes, over 65536"
else echo "gateway heap peak $peak bytes: within the goal of 65536 (hiredis's own context and reader buffer not counted)"; fi
exit 0
