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
# run: build/bench/overhead.md (bench/overhead.py: BENCH_REPEAT, BENCH_ROUNDS);
# then what they cost a real Linux guest's whole run, another lab run:
# build/bench/guest.md (bench/guest.py: BENCH_GUEST_REPEAT, BENCH_GUEST_FORKS)
.PHONY: bench
bench: all $(KVMWALK) $(FLOOR)
	@python3 bench/overhead.py
	@python3 bench/guest.py

# The daemon beside Debian's node_exporter on this machine (RSS, render and
# scrape times, CPU per scrape): build/bench/daemon.md
.PHONY: bench-daemon
BENCH_RENDER := $(OUTPUT)/bench/render_bench
BENCH_RENDER_SRCS := bench/render_bench.c user/metrics.c user/families.c \
		     user/prom_text.c user/collect.c user/http_gzip.c

$(BENCH_RENDER): $(BENCH_RENDER_SRCS) $(wildcard user/*.h) bpf/unsync.h
	$(call msg,BINARY,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $(BENCH_RENDER_SRCS) -lbpf -lz -ldeflate

# The agent's serving path with every probe said attached, over a running
# agent's pinned maps: the full page a KVM host serves, scraped here
BENCH_SERVE := $(OUTPUT)/bench/serve_bench
$(BENCH_SERVE): bench/serve_bench.c $(filter-out $(OUTPUT)/user/main.o,$(USER_OBJS))
	$(call msg,BINARY,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Iuser $(LDFLAGS) $^ $(LDLIBS) -o $@

bench-daemon: all $(BENCH_RENDER) $(BENCH_SERVE)
	@python3 bench/daemon.py
