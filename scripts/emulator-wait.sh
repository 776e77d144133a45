# Shell function shared by scripts/demo.sh and scripts/repl.sh; source it.

# wait_for_base_url NAME PID OUT_FILE ERR_FILE SECONDS prints the base URL
# that bin/moq-emulator (process PID) writes to OUT_FILE, waiting at most
# SECONDS. On failure it prints why, prefixed with NAME, and the
# emulator's standard error from ERR_FILE. It returns 2 when the emulator
# exited and 1 when it printed nothing in time.
wait_for_base_url() {
  local name=$1 pid=$2 out_file=$3 err_file=$4 timeout=$5
  local url deadline=$((SECONDS + timeout))
  while :; do
    url=$(grep -m 1 -E '^https?://' "$out_file" || true)
    if [ -n "$url" ]; then
      printf '%s\n' "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: bin/moq-emulator exited before printing its base URL" >&2
      cat "$err_file" >&2
      return 2
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name: bin/moq-emulator printed no base URL within" \
        "${timeout}s" >&2
      cat "$err_file" >&2
      return 1
    fi
    sleep 0.1
  done
}
