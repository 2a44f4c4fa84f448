#!/usr/bin/env bash
# run_tests.sh BIN... - runs test programs one after another, streams their output, and adds up their
# last "<name>: N passed, N failed" lines. A program that crashes, times out, or exits non-zero counts
# as (at least) 1 failed, and the reason is said. The last line printed is the total, alone:
#     N passed, N failed
# and the exit status is non-zero if anything failed.
#
# Environment:
#   TEST_TIMEOUT  seconds per program (default 600)
#   TEST_WRAP     a command put before each program, e.g. "valgrind --error-exitcode=99 --leak-check=full"
#                 (not before sanitizer builds, which cannot run under valgrind)
# Each program runs with TMPDIR set to a private directory that is removed afterwards, so even a test
# killed before it could clean up leaves no files behind.
set -u

timeout_s=${TEST_TIMEOUT:-600}
wrap=${TEST_WRAP:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/rsbus-tests.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --foreground: the program stays in the terminal's process group, so Ctrl-C reaches it (and its
# handler stops its redis-servers); -k: SIGKILL if SIGTERM did not end it.
tmo=()
for t in timeout gtimeout; do
    if command -v "$t" >/dev/null 2>&1; then tmo=("$t" --foreground -k 10 "$timeout_s"); break; fi
done

total_passed=0
total_failed=0
notes=()
skips=()

for bin in "$@"; do
    echo "== $bin"
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        echo "== $bin: FAILED (no such program)"
        total_failed=$((total_failed + 1))
        notes+=("$bin: no such program: counted as 1 failed")
        continue
    fi
    w=$wrap
    if [ -n "$w" ] && grep -q __asan_init "$bin" 2>/dev/null; then
        echo "== (sanitizer build: run without TEST_WRAP)"
        w=
    fi
    log="$work/log"
    mkdir -p "$work/tmp"
    # shellcheck disable=SC2086   # $w is a command line: split it
    TMPDIR="$work/tmp" ${tmo[@]+"${tmo[@]}"} $w "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}

    why=
    if [ ${#tmo[@]} -gt 0 ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }; then
        why="timed out after ${timeout_s} s"
    elif [ "$rc" -gt 128 ]; then
        sig=$(kill -l $((rc - 128)) 2>/dev/null) && sig=SIG${sig#SIG} || sig="signal $((rc - 128))"
        why="crashed: killed by $sig"
    elif [ "$rc" -ne 0 ]; then
        why="exited with status $rc"
    fi

    # a program's skipped tests (tests/test.h SKIP): neither passed nor failed, listed at the end
    skipped=$(grep -E '^[A-Za-z0-9_.+-]+: [0-9]+ skipped$' "$log" | tail -n 1)
    [ -z "$skipped" ] || skips+=("$bin: ${skipped##*: } (its log says why: lines starting SKIP)")
    line=$(grep -E '^[A-Za-z0-9_.+-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        [ -n "$why" ] || why="exited 0"
        echo "== $bin: FAILED ($why, without a summary line)"
        total_failed=$((total_failed + 1))
        notes+=("$bin: $why without a summary line: counted as 1 failed")
    else
        p=${line% passed,*}; p=${p##*: }
        f=${line##*, }; f=${f% failed}
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            # e.g. a sanitizer's leak report or valgrind's errors after the program's own summary
            echo "== $bin: FAILED ($why after reporting no failure)"
            total_failed=$((total_failed + 1))
            notes+=("$bin: $why after \"$line\": counted as 1 more failed")
        elif [ "$f" -ne 0 ]; then
            echo "== $bin: FAILED ($f failed)"
            notes+=("$bin: $f failed")
        else
            echo "== $bin: ok ($p passed)"
        fi
    fi

    left=$(ls -A "$work/tmp" 2>/dev/null)
    if [ -n "$left" ]; then
        echo "== $bin: left files in its TMPDIR (removed): $(echo $left)"
        rm -rf "$work/tmp"
    fi
done

if [ ${#skips[@]} -gt 0 ]; then
    echo
    echo "Skipped (not counted as passed):"
    for n in "${skips[@]}"; do echo "  $n"; done
fi
if [ ${#notes[@]} -gt 0 ]; then
    echo
    echo "Failures:"
    for n in "${notes[@]}"; do echo "  $n"; done
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
