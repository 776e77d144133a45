#!/usr/bin/env bash
# Run the busted suite in lua5.4 under valgrind's memcheck, against
# build/cloudflare/core.so. Fails on any memcheck error or definite leak
# in the busted process. Processes that specs start are not checked.
# Slow: not part of `make test`.
#
# build/tools/no-dlclose.so is preloaded for the reason given in
# scripts/sanitize.sh. Suppressions for system libraries only are in
# scripts/valgrind.supp.
#
# Extra arguments go to busted. Environment: VALGRIND_TIMEOUT (seconds for
# the whole suite, default 3600).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh valgrind
make --no-print-directory build no-dlclose CFLAGS_EXTRA="${CFLAGS_EXTRA:-}"

out_dir=$root/build/valgrind
tap_file=$out_dir/busted.tap
rm -rf "$out_dir"
mkdir -p "$out_dir"

status=0
LD_PRELOAD="$root/build/tools/no-dlclose.so" \
  timeout --kill-after=30 "${VALGRIND_TIMEOUT:-3600}" \
  valgrind --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --suppressions="$root/scripts/valgrind.supp" \
  --log-file="$out_dir/memcheck.%p.log" \
  lua5.4 /usr/bin/busted -o TAP "$@" >"$tap_file" || status=$?

read -r passed failed skipped planned < <(
  awk -v mode=counts -f scripts/tap-summary.awk "$tap_file")
if [ "$failed" -gt 0 ]; then
  awk -v mode=failures -f scripts/tap-summary.awk "$tap_file" |
    head -n 200
fi

# A process that fork()s and then exec()s another program leaves a log
# without an ERROR SUMMARY line: only logs with that line count.
error_logs=0
summaries=0
for log in "$out_dir"/memcheck.*.log; do
  [ -e "$log" ] || continue
  grep -q 'ERROR SUMMARY:' "$log" || continue
  summaries=$((summaries + 1))
  if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
    error_logs=$((error_logs + 1))
    echo "valgrind: errors in $log:"
    head -n 200 "$log"
  fi
done
if [ "$summaries" -eq 0 ]; then
  echo "valgrind: no memcheck log has an ERROR SUMMARY line" >&2
  error_logs=1
fi

echo "valgrind: busted exit status $status; tests: $passed ok," \
  "$failed not ok, $skipped skipped; logs with errors: $error_logs;" \
  "TAP output in $tap_file"

if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$planned" -lt 0 ] ||
  [ "$error_logs" -gt 0 ]; then
  exit 1
fi
