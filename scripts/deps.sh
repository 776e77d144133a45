#!/usr/bin/env bash
# Install the Debian packages that a task needs: build, demo, test or
# valgrind. As root it installs what is missing. Otherwise it prints the
# apt-get command to run and exits 2.
set -euo pipefail

build_packages=(gcc make pkg-config libc6-dev lua5.4 liblua5.4-dev
  libcurl4-openssl-dev)
run_packages=(lua-cjson lua-socket)
emulator_packages=(nginx-light libnginx-mod-http-lua curl)
# gcc brings binutils (nm) and the AddressSanitizer and
# UndefinedBehaviorSanitizer runtimes (libasan8, libubsan1 on Debian 12).
# liblua5.1-0-dev and libluajit2-5.1-dev check that the core compiles for
# OpenResty; libluajit-5.1-dev would replace nginx's LuaJIT, so it is not
# used.
# clang and libclang-rt-14-dev build the libFuzzer targets. lua-sec
# provides ssl.https for the emulator's TLS spec.
test_packages=(lua-busted lua-check luarocks openssl lua-sec lua-ldoc
  liblua5.1-0-dev libluajit2-5.1-dev clang libclang-rt-14-dev)

usage() {
  echo "usage: $0 [build|demo|test|valgrind]" >&2
  exit 64
}

task=${1:-test}
case "$task" in
  build) wanted=("${build_packages[@]}") ;;
  demo)
    wanted=("${build_packages[@]}" "${run_packages[@]}"
      "${emulator_packages[@]}")
    ;;
  test)
    wanted=("${build_packages[@]}" "${run_packages[@]}"
      "${emulator_packages[@]}" "${test_packages[@]}")
    ;;
  valgrind)
    wanted=("${build_packages[@]}" "${run_packages[@]}"
      "${emulator_packages[@]}" "${test_packages[@]}" valgrind)
    ;;
  *) usage ;;
esac

# A package counts as present only when dpkg reports it fully installed.
is_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) ||
    return 1
  [ "$status" = installed ]
}

missing=()
for package in "${wanted[@]}"; do
  if [[ " ${missing[*]} " == *" $package "* ]]; then
    continue
  fi
  if ! is_installed "$package"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages. Install them with:" >&2
  echo "sudo apt-get install -y ${missing[*]}"
  exit 2
fi

echo "Installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
