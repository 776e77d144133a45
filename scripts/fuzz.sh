#!/usr/bin/env bash
# Build the libFuzzer targets (mk/fuzz.mk) and run each one for
# FUZZ_SECONDS seconds on a copy of its seed corpus. Exits 1 when a
# target finds a crash, a leak, a timeout or runs out of memory, and
# prints the reproducer's path.
#
# usage: scripts/fuzz.sh [target...]   (default: every target)
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_FLAGS    extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Seeds are read from fuzz/corpus/<target>/ and never written. The
# working corpus is build/fuzz/corpus/<target>/, which keeps the inputs
# that earlier runs found until `make clean`. Reproducers go to
# build/fuzz/artifacts/<target>/ and full logs to build/fuzz/logs/.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: FUZZ_SECONDS must be a positive integer, got '$seconds'" >&2
  exit 64
fi

all_targets=(fuzz_response fuzz_request fuzz_json)
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
  case " ${all_targets[*]} " in
    *" $target "*) ;;
    *)
      echo "fuzz: unknown target '$target' (known: ${all_targets[*]})" >&2
      exit 64
      ;;
  esac
done

scripts/deps.sh build

# libFuzzer comes with clang's runtime libraries, which Debian packages
# apart from clang (libclang-rt-14-dev for clang 14).
fuzz_cc=${FUZZ_CC:-clang}
if ! command -v "$fuzz_cc" >/dev/null; then
  echo "fuzz: $fuzz_cc not found. Install it with:" >&2
  echo "sudo apt-get install -y clang libclang-rt-14-dev" >&2
  exit 2
fi
runtime_name=libclang_rt.fuzzer-$(uname -m).a
fuzzer_runtime=$("$fuzz_cc" -print-resource-dir)/lib/linux/$runtime_name
if [ ! -f "$fuzzer_runtime" ]; then
  echo "fuzz: libFuzzer runtime not found for $fuzz_cc. Install it with:" >&2
  echo "sudo apt-get install -y libclang-rt-14-dev" >&2
  exit 2
fi

make --no-print-directory -f mk/fuzz.mk FUZZ_CC="$fuzz_cc" fuzz-build

build_dir=$root/build/fuzz
mkdir -p "$build_dir/logs"

# Leaks are checked when each target exits. UBSan findings stop the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Print one "stat::name: value" line of libFuzzer's final statistics.
final_stat() {
  awk -v name="stat::$2:" '$1 == name { print $2 }' "$1" | tail -n 1
}

# Every target reads JSON, so they share one dictionary of tokens.
dict_flags=()
if [ -f fuzz/json.dict ]; then
  dict_flags=("-dict=$root/fuzz/json.dict")
fi

failed=()
for target in "${targets[@]}"; do
  seeds=$root/fuzz/corpus/$target
  corpus=$build_dir/corpus/$target
  artifacts=$build_dir/artifacts/$target
  log=$build_dir/logs/$target.log
  mkdir -p "$corpus" "$artifacts"
  if [ -d "$seeds" ]; then
    cp -R "$seeds/." "$corpus/"
  fi

  echo "fuzz: running $target for $seconds s (log: $log)"
  status=0
  # shellcheck disable=SC2086
  "$build_dir/$target" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "${dict_flags[@]}" ${FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1 || status=$?

  runs=$(final_stat "$log" number_of_executed_units)
  speed=$(final_stat "$log" average_exec_per_sec)
  added=$(final_stat "$log" new_units_added)
  echo "fuzz: $target: exit status $status, ${runs:-?} runs," \
    "${speed:-?} runs/s, ${added:-?} new inputs," \
    "corpus $(find "$corpus" -type f | wc -l) files"

  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: $target failed. The end of its log:" >&2
    tail -n 60 "$log" >&2
    reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" |
      tail -n 1)
    if [ -n "$reproducer" ] && [ -f "$reproducer" ]; then
      echo "fuzz: reproducer: $reproducer" >&2
      echo "fuzz: run it again with: $build_dir/$target $reproducer" >&2
      if [ "$(wc -c <"$reproducer")" -le 4096 ]; then
        echo "fuzz: reproducer as base64: $(base64 -w 0 "$reproducer")" >&2
      fi
    else
      echo "fuzz: $target wrote no reproducer. See $log" >&2
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed targets: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
