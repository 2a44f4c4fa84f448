#!/usr/bin/env bash
# expect_fail.sh NAME PROGRAM [ARGS...] - a check that passes when PROGRAM fails: it runs PROGRAM (a test
# program built broken on purpose, e.g. test_json with -DRSBUS__JSON_BREAK_FALLBACK on s390x), shows its
# summary, and ends with "NAME: 1 passed, 0 failed" if PROGRAM reported failures (and did not crash for
# another reason: it must reach its own summary line), else "NAME: 0 passed, 1 failed".
set -u
name=${1:?usage: expect_fail.sh NAME PROGRAM [ARGS...]}
shift
out=$("$@" 2>&1)
rc=$?
line=$(printf '%s\n' "$out" | grep -E '^[A-Za-z0-9_.+-]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
failed=${line##*, }; failed=${failed% failed}
printf '%s\n' "$out" | grep -E '^(FAIL|[A-Za-z0-9_.+-]+: [0-9]+ passed)' | head -n 20 | sed 's/^/    /'
if [ -n "$line" ] && [ "$rc" -ne 0 ] && [ "${failed:-0}" -gt 0 ]; then
    echo "$name: the broken build failed as it must ($line)"
    echo "$name: 1 passed, 0 failed"
    exit 0
fi
echo "$name: the broken build did not fail (exit $rc, summary '${line:-none}'): the check does not reach the code it breaks"
echo "$name: 0 passed, 1 failed"
exit 1
