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

# What the probes cost the walk, one lab run: build/bench/overhead.md
# (BENCH_REPEAT runs per mode, default 3; BENCH_ROUNDS syncs per run, 20)
.PHONY: bench
bench: all $(KVMWALK)
	@python3 bench/overhead.py
