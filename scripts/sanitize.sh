#!/usr/bin/env bash
# Run the busted suite against build/asan/cloudflare/core.so, the C core
# built with AddressSanitizer and UndefinedBehaviorSanitizer. Fails when a
# test fails or when any sanitizer writes a report, leaks included.
#
# lua5.4 itself is not instrumented, so the gcc runtimes are preloaded
# (LD_PRELOAD), together with build/tools/no-dlclose.so: without it,
# lua_close unloads libcurl and OpenSSL before LeakSanitizer runs, and
# their still-referenced memory shows up as leaks of "<unknown module>".
# Leaks that belong to system libraries are suppressed in
# scripts/lsan.supp, and nothing in csrc/ may be listed there.
#
# Extra arguments go to busted. Environment: CFLAGS_EXTRA (extra compiler
# flags), SANITIZE_TIMEOUT (seconds for the whole suite, default 2400).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh test
make --no-print-directory build-asan CFLAGS_EXTRA="${CFLAGS_EXTRA:-}"

# Prints the absolute path of a gcc runtime library, or fails.
runtime_path() {
  local path
  path=$(gcc -print-file-name="$1")
  case "$path" in
    /*) [ -e "$path" ] && { echo "$path"; return 0; } ;;
  esac
  echo "sanitize: $1 not found; it comes with gcc (libasan8 and" \
    "libubsan1 on Debian 12)" >&2
  return 1
}

asan_runtime=$(runtime_path libasan.so)
ubsan_runtime=$(runtime_path libubsan.so)
preload="$asan_runtime $ubsan_runtime $root/build/tools/no-dlclose.so"

out_dir=$root/build/asan/test
report_dir=$out_dir/reports
tap_file=$out_dir/busted.tap
stderr_file=$out_dir/busted.stderr
rm -rf "$out_dir"
mkdir -p "$report_dir"

# Every sanitized process, children included, writes its ASan and
# LeakSanitizer reports to $report_dir/asan.PID instead of stderr, so
# that none is lost in a pipe that a spec reads.
asan_options="detect_leaks=1:halt_on_error=1"
asan_options+=":detect_stack_use_after_return=1"
asan_options+=":log_path=$report_dir/asan"
ubsan_options="halt_on_error=1:print_stacktrace=1"
ubsan_options+=":log_path=$report_dir/ubsan"
lsan_options="suppressions=$root/scripts/lsan.supp:print_suppressions=0"

status=0
env PATH="$root/scripts/sanitizer-bin:$PATH" \
  SANITIZER_PRELOAD="$preload" \
  SANITIZER_CORE="build/asan/cloudflare/core.so" \
  ASAN_OPTIONS="$asan_options" \
  UBSAN_OPTIONS="$ubsan_options" \
  LSAN_OPTIONS="$lsan_options" \
  timeout --kill-after=30 "${SANITIZE_TIMEOUT:-2400}" \
  lua5.4 /usr/bin/busted --cpath="build/asan/?.so" \
  --helper=scripts/sanitizer-helper.lua -o TAP "$@" \
  >"$tap_file" 2>"$stderr_file" || status=$?

if [ -s "$stderr_file" ]; then
  echo "sanitize: busted's standard error (last 100 lines):"
  tail -n 100 "$stderr_file"
fi

read -r passed failed skipped planned < <(
  awk -v mode=counts -f scripts/tap-summary.awk "$tap_file")

if [ "$failed" -gt 0 ]; then
  awk -v mode=failures -f scripts/tap-summary.awk "$tap_file" |
    head -n 200
fi

reports=("$report_dir"/*)
if [ -e "${reports[0]}" ]; then
  report_count=${#reports[@]}
  for report in "${reports[@]}"; do
    echo "sanitize: report $report:"
    head -n 100 "$report"
  done
else
  report_count=0
fi
# UBSan prints "runtime error:" on stderr even with log_path set, when it
# runs beside ASan (gcc 12).
ubsan_count=$(grep -c 'runtime error:' "$stderr_file" || true)
report_count=$((report_count + ubsan_count))

echo "sanitize: busted exit status $status; tests: $passed ok," \
  "$failed not ok, $skipped skipped; sanitizer reports: $report_count;" \
  "TAP output in $tap_file"

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "sanitize: the suite timed out" >&2
fi
if [ "$planned" -lt 0 ]; then
  echo "sanitize: busted stopped before the end of the suite" >&2
fi
if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$planned" -lt 0 ] ||
  [ "$report_count" -gt 0 ]; then
  exit 1
fi
