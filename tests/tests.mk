# Included by the top Makefile.
include tests/vm/workload/Makefile

.PHONY: test demo compare
test: all $(KVMWALK)
	@bash tests/run.sh

demo: all $(KVMWALK)
	@python3 tests/vm/demo.py

# Stock vs patched kernel, side by side: build/compare/report.md
compare: all $(KVMWALK)
	@python3 tests/vm/compare_kernels.py
