# `make docs`: the HTML API reference, built by LDoc (Debian package
# lua-ldoc) from the doc comments of lua/cloudflare/*.lua into doc/.
# config.ld holds the LDoc options.

LDOC ?= ldoc

.PHONY: docs

docs:
	@command -v $(LDOC) >/dev/null || { \
	  echo "make: $(LDOC) not found; install the Debian package" \
	    "lua-ldoc (apt-get install lua-ldoc)" >&2; exit 1; }
	rm -rf doc
	$(LDOC) .
