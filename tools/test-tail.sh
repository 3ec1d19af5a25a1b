#!/bin/sh
# Runs the test binary with its output copied to a log; when it fails, ends
# with the few lines that say what failed (the test that was running, the
# sanitizer's verdict and the top of its stack), so a reader of only the last
# screen of a CI run still learns where to look.
# Usage: tools/test-tail.sh LOG COMMAND [ARGS...]
log=$1
shift
rcfile=$log.rc
{
    "$@" 2>&1
    echo $? >"$rcfile"
} | tee "$log"
rc=$(cat "$rcfile")
rm -f "$rcfile"
[ "$rc" = 0 ] && exit 0
echo "---- test run failed (exit $rc); whole output in $log ----"
grep -E '^\[ RUN +\]' "$log" | tail -n 1 | sed 's/^/last test started: /'
grep -E '^\[  FAILED  \] [A-Za-z_]' "$log" | head -n 5
awk '/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/ { on = 1; n = 0 }
     on && /^ *#[0-9]+ / { print; if (++n >= 12) on = 0; next }
     on && /ERROR: |runtime error:/ { print }' "$log" | head -n 16
grep -E '^SUMMARY: ' "$log" | head -n 2
exit "$rc"
