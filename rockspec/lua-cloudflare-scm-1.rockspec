rockspec_format = "3.0"
package = "lua-cloudflare"
version = "scm-1"

source = {
  url = "git+https://github.com/lua-cloudflare/lua-cloudflare.git",
}

description = {
  summary = "Client for Cloudflare's MoQ relays API, with a C core",
  detailed = [[
lua-cloudflare creates, lists, updates and deletes Cloudflare MoQ (Media
over QUIC) relays and rotates their tokens. A C module built on libcurl
does the HTTP transport and the JSON conversion; a Lua module on top of
it provides the client, its models and its errors.
]],
  homepage = "https://github.com/lua-cloudflare/lua-cloudflare",
  license = "MIT",
  labels = { "cloudflare", "moq", "http", "curl" },
}

dependencies = {
  "lua >= 5.1",
}

external_dependencies = {
  CURL = {
    header = "curl/curl.h",
    library = "curl",
  },
}

build = {
  type = "builtin",
  modules = {
    ["cloudflare"] = "lua/cloudflare/init.lua",
    ["cloudflare.batch"] = "lua/cloudflare/batch.lua",
    ["cloudflare.cli"] = "lua/cloudflare/cli.lua",
    ["cloudflare.client"] = "lua/cloudflare/client.lua",
    ["cloudflare.ensure"] = "lua/cloudflare/ensure.lua",
    ["cloudflare.errors"] = "lua/cloudflare/errors.lua",
    ["cloudflare.log"] = "lua/cloudflare/log.lua",
    ["cloudflare.models"] = "lua/cloudflare/models.lua",
    ["cloudflare.paginate"] = "lua/cloudflare/paginate.lua",
    ["cloudflare.policy"] = "lua/cloudflare/policy.lua",
    ["cloudflare.relays"] = "lua/cloudflare/relays.lua",
    ["cloudflare.repl"] = "lua/cloudflare/repl.lua",
    ["cloudflare.time"] = "lua/cloudflare/time.lua",
    ["cloudflare.validate"] = "lua/cloudflare/validate.lua",
    -- NOTE: the builtin backend takes no compiler flags per module, so
    -- this build does not get -fvisibility=hidden as `make build` does.
    ["cloudflare.core"] = {
      sources = {
        "csrc/clock.c",
        "csrc/compat.c",
        "csrc/core.c",
        "csrc/http.c",
        "csrc/json.c",
        "csrc/multi.c",
      },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      libraries = { "curl" },
    },
  },
  install = {
    bin = {
      ["cf-moq"] = "bin/cf-moq",
      ["cf-repl"] = "bin/cf-repl",
    },
  },
}
