-- Print a TCP port on 127.0.0.1 that is free now. The kernel picks it when
-- the socket binds port 0. Another process may still take it before the
-- caller binds it, so callers should expect a rare bind failure.
local socket = require "socket"

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
server:close()
print(port)
