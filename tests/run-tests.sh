#!/bin/sh
# Runs each test program given on the command line (Check suites), prints their output, and
# ends with one Check-style summary line over all of them. Exit status 1 if any failed.
set -u
total=0 failures=0 errors=0 bad=""
for t in "$@"; do
    echo "=== $(basename "$t")"
    out=$(CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} "$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' | tail -n 1)
    if [ -n "$line" ]; then
        c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
        e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
        total=$((total + c)); failures=$((failures + f)); errors=$((errors + e))
    else
        errors=$((errors + 1))
    fi
    [ $rc -ne 0 ] && bad="$bad $(basename "$t")"
done
passed=$((total - failures - errors))
[ $passed -lt 0 ] && passed=0
pct=0
[ $total -gt 0 ] && pct=$((100 * passed / total))
[ -n "$bad" ] && echo "failed test programs:$bad"
echo "$pct%: Checks: $total, Failures: $failures, Errors: $errors"
[ -z "$bad" ] && [ $failures -eq 0 ] && [ $errors -eq 0 ]
