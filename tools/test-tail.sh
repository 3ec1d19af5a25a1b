#!/bin/sh
# Runs the test binary with its whole output copied to a log, and shows on
# the screen what a reader needs: one line per group (tests/main.c prints
# "[ GROUP  ] ok|FAIL name N passed N failed T s"), every failed or skipped
# test in full (its cmocka lines and the log lines written while it ran),
# a test cut short by a crash in full, and the closing "N passed, N
# failed". Log lines of passing tests (daemons refusing bad input on
# purpose) stay in the log. TEST_VERBOSE=1 shows everything.
# When the run fails, it ends with the few lines that say what failed (the
# test that was running, the sanitizer's verdict and the top of its stack),
# so a reader of only the last screen of a CI run still learns where to look.
# Usage: tools/test-tail.sh LOG COMMAND [ARGS...]
log=$1
shift
rcfile=$log.rc
filter='
/^\[ RUN +\] / { inblock = 1; buf = $0; next }
inblock {
    buf = buf "\n" $0
    if ($0 ~ /^\[ +OK +\] /) { inblock = 0; buf = "" }
    else if ($0 ~ /^\[  (FAILED|SKIPPED) +\] /) { print buf; fflush(); inblock = 0; buf = "" }
    next
}
/^\[ GROUP  \] / { sub(/^\[ GROUP  \] /, ""); print; fflush(); next }
/^\[/ || /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T/ || /^ [0-9]+ FAILED TEST/ { next }
{ print; fflush() }
END { if (inblock) print buf }
'
{
    "$@" 2>&1
    echo $? >"$rcfile"
} | tee "$log" | if [ -n "$TEST_VERBOSE" ]; then cat; else awk "$filter"; fi
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
