#!/usr/bin/env bash
# Open bin/cf-repl against the local emulator: start bin/moq-emulator on a
# free loopback port, run the prompt with CLOUDFLARE_BASE_URL pointing at
# it, and stop the emulator by its pid when the prompt exits, on Ctrl-C
# too. Exits with the prompt's status. `make repl` builds the core first.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/emulator-wait.sh

if [ ! -e build/cloudflare/core.so ]; then
  echo "repl: build/cloudflare/core.so is missing; run 'make build'" >&2
  exit 1
fi

# Seconds to wait for the emulator to print its base URL.
startup_timeout=${MOQ_EMULATOR_STARTUP_TIMEOUT:-20}

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/cf-repl.XXXXXX")
emulator_pid=

stop_emulator() {
  if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  emulator_pid=
  rm -rf "$work_dir"
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# setsid puts the emulator in its own session, so that Ctrl-C at the
# prompt reaches the prompt only. --parent-pid stops it if this script
# is killed before its trap can run.
port=$(lua5.4 scripts/free-port.lua)
setsid bin/moq-emulator --quiet --port "$port" --parent-pid "$$" \
  >"$work_dir/emulator.out" 2>"$work_dir/emulator.err" </dev/null &
emulator_pid=$!

wait_status=0
base_url=$(wait_for_base_url repl "$emulator_pid" "$work_dir/emulator.out" \
  "$work_dir/emulator.err" "$startup_timeout") || wait_status=$?
if [ "$wait_status" -ne 0 ]; then
  if [ "$wait_status" -eq 2 ]; then
    emulator_pid=
  fi
  exit 1
fi

# While the prompt runs, Ctrl-C belongs to it: lua5.4 stops the running
# chunk on the first one. This no-op trap keeps the script alive until
# the prompt exits, and the EXIT trap then stops the emulator.
trap ':' INT

status=0
CLOUDFLARE_BASE_URL="$base_url" \
  CLOUDFLARE_API_TOKEN=local-dev-token \
  CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 \
  lua5.4 bin/cf-repl || status=$?

exit "$status"
