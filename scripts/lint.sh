#!/usr/bin/env bash
# Run luacheck on every Lua file of the project, with .luacheckrc.
set -euo pipefail

cd "$(dirname "$0")/.."

targets=()
for directory in lua spec examples emulator scripts; do
  if [ -d "$directory" ]; then
    targets+=("$directory")
  fi
done

# bin/ also contains shell scripts, so only the files that are Lua by
# their extension or their #! line are checked.
for file in bin/*; do
  [ -f "$file" ] || continue
  if [[ "$file" == *.lua ]] || head -n 1 "$file" | grep -qE '^#!.*lua'; then
    targets+=("$file")
  fi
done

luacheck --codes --no-color --quiet "${targets[@]}"
