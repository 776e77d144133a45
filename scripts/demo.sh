#!/usr/bin/env bash
# Run examples/relay-lifecycle.lua against the local emulator: install the
# packages, build the core, start bin/moq-emulator on a free loopback port,
# run the example and stop the emulator. Exits with the example's status.
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/emulator-wait.sh

scripts/deps.sh demo
make --no-print-directory build

# Seconds to wait for the emulator to print its base URL.
startup_timeout=${MOQ_EMULATOR_STARTUP_TIMEOUT:-20}

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/cf-demo.XXXXXX")
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

port=$(lua5.4 scripts/free-port.lua)
bin/moq-emulator --quiet --port "$port" \
  >"$work_dir/emulator.out" 2>"$work_dir/emulator.err" &
emulator_pid=$!

wait_status=0
base_url=$(wait_for_base_url demo "$emulator_pid" "$work_dir/emulator.out" \
  "$work_dir/emulator.err" "$startup_timeout") || wait_status=$?
if [ "$wait_status" -ne 0 ]; then
  if [ "$wait_status" -eq 2 ]; then
    emulator_pid=
  fi
  exit 1
fi

echo "demo: emulator listening at $base_url"

# Lua 5.4 reads LUA_PATH_5_4 before LUA_PATH, so those are cleared.
status=0
env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 \
  CLOUDFLARE_BASE_URL="$base_url" \
  CLOUDFLARE_API_TOKEN=local-dev-token \
  CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 \
  LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" \
  LUA_CPATH="$PWD/build/?.so;;" \
  lua5.4 examples/relay-lifecycle.lua || status=$?

exit "$status"
