#!/usr/bin/env bash
# Build and install rockspec/lua-cloudflare-scm-1.rockspec with LuaRocks.
#
#   scripts/rock.sh install TREE   install into the tree TREE
#   scripts/rock.sh check          install into a temporary tree, then
#                                  require "cloudflare" and
#                                  "cloudflare.core" from that tree only
#
# Dependencies are not fetched (--deps-mode=none), so no step needs the
# network: the Debian packages from scripts/deps.sh provide them.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
rockspec=rockspec/lua-cloudflare-scm-1.rockspec

usage() {
  echo "usage: $0 install TREE | check" >&2
  exit 64
}

# Prints CURL_INCDIR=DIR when curl/curl.h is only in the multiarch include
# directory (Debian and Ubuntu), where LuaRocks 3.8 does not look for it.
curl_incdir_variable() {
  local multiarch
  multiarch=$(gcc -print-multiarch 2>/dev/null) || return 0
  if [ -n "$multiarch" ] && [ ! -e /usr/include/curl/curl.h ] &&
    [ -e "/usr/include/$multiarch/curl/curl.h" ]; then
    echo "CURL_INCDIR=/usr/include/$multiarch"
  fi
}

# Runs `luarocks make` in a copy of the sources, so that the objects it
# compiles next to each source file stay out of the work tree.
install_rock() {
  local tree=$1 source_dir variables
  variables=$(curl_incdir_variable)
  source_dir=$(mktemp -d "${TMPDIR:-/tmp}/cf-rock-src.XXXXXX")
  cp -R "$root/rockspec" "$root/csrc" "$root/lua" "$source_dir/"
  if [ -d "$root/bin" ]; then
    cp -R "$root/bin" "$source_dir/"
  fi
  local status=0
  (cd "$source_dir" &&
    luarocks --lua-version=5.4 make --tree "$tree" --deps-mode=none \
      "$rockspec" $variables) || status=$?
  rm -rf "$source_dir"
  return "$status"
}

# Loads both modules in a lua5.4 whose search paths start with the tree,
# and fails unless each module file comes from the tree.
check_tree() {
  local tree=$1
  local lua_dir="$tree/share/lua/5.4" lib_dir="$tree/lib/lua/5.4"
  (cd "$tree" &&
    env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT -u LUA_INIT_5_4 \
      LUA_PATH="$lua_dir/?.lua;$lua_dir/?/init.lua;;" \
      LUA_CPATH="$lib_dir/?.so;;" \
      TREE="$tree" \
      lua5.4 - <<'LUA'
local tree = os.getenv("TREE")
local checks = {
  { name = "cloudflare", path = package.path },
  { name = "cloudflare.core", path = package.cpath },
}
for _, check in ipairs(checks) do
  local file = assert(package.searchpath(check.name, check.path))
  if file:sub(1, #tree) ~= tree then
    error(check.name .. " resolves to " .. file .. ", outside " .. tree)
  end
  local module = require(check.name)
  assert(type(module) == "table", check.name .. " did not return a table")
  print(string.format("rock: require %q loads %s", check.name, file))
end
LUA
  )
}

command=${1:-}
case "$command" in
  install)
    [ $# -eq 2 ] || usage
    mkdir -p "$2"
    tree=$(cd "$2" && pwd)
    install_rock "$tree"
    echo "rock: installed into $tree"
    echo "rock: eval \"\$(luarocks --lua-version=5.4 path --tree $tree)\"" \
      "sets LUA_PATH and LUA_CPATH for it"
    ;;
  check)
    [ $# -eq 1 ] || usage
    tree=$(mktemp -d "${TMPDIR:-/tmp}/cf-rock-tree.XXXXXX")
    trap 'rm -rf "$tree"' EXIT
    install_rock "$tree"
    check_tree "$tree"
    ;;
  *) usage ;;
esac
