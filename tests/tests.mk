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

# What the probes cost the walk against the floor and bpftrace, one lab
# run: build/bench/overhead.md (bench/overhead.py: BENCH_REPEAT, BENCH_ROUNDS)
.PHONY: bench
bench: all $(KVMWALK) $(FLOOR)
	@python3 bench/overhead.py
