# Included by the top Makefile.
include tests/vm/workload/Makefile

.PHONY: test demo
test: all $(KVMWALK)
	@bash tests/run.sh

demo: all $(KVMWALK)
	@python3 tests/vm/demo.py
