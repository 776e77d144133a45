#!/usr/bin/env bash
# Run every check of `make test`: install the packages, build the core
# with -Werror, run luacheck, the busted suite, the busted suite against
# the sanitizer build, the rockspec install check and a short fuzz run.
#
# The last line is "N passed, N failed": one count per busted test of the
# main run, plus one each for luacheck, the sanitizer run, the rockspec
# check and the fuzz run. A stage that cannot run counts as one failure.
# Exits 1 when anything failed, 2 when packages are missing and cannot be
# installed.
#
# Environment: BUSTED_TIMEOUT (seconds for the main suite, default 1200)
# and FUZZ_SECONDS (seconds per fuzz target, default 20).
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD
out_dir=$root/build/test

passed=0
failed=0

heading() {
  echo
  echo "== $1"
}

record() {
  if [ "$1" -eq 0 ]; then
    passed=$((passed + 1))
    echo "-- $2: passed"
  else
    failed=$((failed + 1))
    echo "-- $2: FAILED"
  fi
}

finish() {
  echo
  echo "$passed passed, $failed failed"
  if [ "$failed" -gt 0 ]; then
    exit "${1:-1}"
  fi
  exit 0
}

heading "Debian packages (scripts/deps.sh test)"
deps_status=0
scripts/deps.sh test || deps_status=$?
if [ "$deps_status" -ne 0 ]; then
  failed=$((failed + 1))
  echo "-- packages: FAILED (status $deps_status)"
  finish "$deps_status"
fi

heading "Build with -Werror"
build_status=0
make --no-print-directory build CFLAGS_EXTRA=-Werror || build_status=$?
if [ "$build_status" -ne 0 ]; then
  echo "-- build: FAILED; the busted and sanitizer stages are skipped"
fi

heading "luacheck"
lint_status=0
scripts/lint.sh || lint_status=$?
record "$lint_status" luacheck

heading "busted (lua5.4 /usr/bin/busted -o TAP)"
if [ "$build_status" -ne 0 ]; then
  record 1 "busted (not run: the build failed)"
else
  rm -rf "$out_dir"
  mkdir -p "$out_dir"
  tap_file=$out_dir/busted.tap
  stderr_file=$out_dir/busted.stderr
  busted_status=0
  timeout --kill-after=30 "${BUSTED_TIMEOUT:-1200}" \
    lua5.4 /usr/bin/busted -o TAP >"$tap_file" 2>"$stderr_file" ||
    busted_status=$?
  read -r tests_passed tests_failed tests_skipped planned < <(
    awk -v mode=counts -f scripts/tap-summary.awk "$tap_file")
  if [ "$tests_failed" -gt 0 ]; then
    awk -v mode=failures -f scripts/tap-summary.awk "$tap_file" |
      head -n 300
  fi
  if [ -s "$stderr_file" ]; then
    echo "busted's standard error (last 50 lines):"
    tail -n 50 "$stderr_file"
  fi
  echo "-- busted: $tests_passed ok, $tests_failed not ok," \
    "$tests_skipped skipped (exit status $busted_status);" \
    "TAP output in $tap_file"
  passed=$((passed + tests_passed))
  failed=$((failed + tests_failed))
  # A crash or a timeout can end busted without a "not ok" line.
  if [ "$planned" -lt 0 ]; then
    record 1 "busted (stopped before the end of the suite)"
  elif [ "$busted_status" -ne 0 ] && [ "$tests_failed" -eq 0 ]; then
    record 1 "busted (exit status $busted_status without a failed test)"
  fi
fi

heading "busted with AddressSanitizer and UBSan (scripts/sanitize.sh)"
if [ "$build_status" -ne 0 ]; then
  record 1 "sanitizers (not run: the build failed)"
else
  sanitize_status=0
  CFLAGS_EXTRA=-Werror scripts/sanitize.sh || sanitize_status=$?
  record "$sanitize_status" sanitizers
fi

heading "rockspec install (scripts/rock.sh check)"
rock_status=0
scripts/rock.sh check || rock_status=$?
record "$rock_status" rockspec

heading "libFuzzer targets, ${FUZZ_SECONDS:-20} s each (make fuzz)"
fuzz_status=0
make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}" ||
  fuzz_status=$?
record "$fuzz_status" fuzzing

finish 1
