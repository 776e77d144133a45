# `make repl`: build the core, start bin/moq-emulator on a free loopback
# port and open bin/cf-repl against it. scripts/repl.sh stops the
# emulator when the prompt exits.

.PHONY: repl

repl: build
	scripts/repl.sh
