#!/usr/bin/env bash
# Open bin/cf-repl against the local emulator: start bin/moq-emulator on a
# free loopback port, run the prompt with CLOUDFLARE_BASE_URL pointing at
# it, and stop the emulator by its pid when the prompt exits, on Ctrl-C
# too. Exits with the prompt's status. `make repl` builds the core first.
set -euo pipefail

cd "$(dirname "$0")/.."

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

base_url=
deadline=$((SECONDS + startup_timeout))
while [ -z "$base_url" ]; do
  base_url=$(grep -m 1 -E '^https?://' "$work_dir/emulator.out" || true)
  if [ -n "$base_url" ]; then
    break
  fi
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "repl: bin/moq-emulator exited before printing its base URL" >&2
    cat "$work_dir/emulator.err" >&2
    emulator_pid=
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "repl: bin/moq-emulator printed no base URL within" \
      "${startup_timeout}s" >&2
    cat "$work_dir/emulator.err" >&2
    exit 1
  fi
  sleep 0.1
done

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
