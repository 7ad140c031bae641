# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Unit tests of the daemon's user-space code.  Included from the top
# Makefile; paths are relative to the repository root.
#
#   make unit-test           build into build/unit/ and run
#   make unit-test T=metrics one suite by name (T=a,b: several; the
#                            names: build/unit/unit-tests -l)
#   make unit-test SAN=1     same, with AddressSanitizer and UBSan
#   make unit-test CC=clang
#   make unit-fuzz           libFuzzer targets: the /proc parsers, the web
#                            config and Authorization parsers (clang)
#
# The last line of the run is "N passed, N failed"; the target fails when
# any check failed.  Everything here is prefixed UNIT_ so it cannot clash
# with the top Makefile's variables.

# CC ?= gcc, done so it works: make always defines CC (as "cc"), so "?="
# never applies.  Use gcc in place of make's built-in default only, never
# over a CC the user or the including Makefile set, and keep the choice in
# UNIT_CC so this fragment does not change CC for the rest of the build.
ifeq ($(origin CC),default)
UNIT_CC := gcc
else
UNIT_CC := $(CC)
endif

UNIT_OUT := build/unit
UNIT_DIR := tests/unit

UNIT_CFLAGS := -std=c11 -g -O1 -Wall -Wextra -Iuser -I$(UNIT_DIR)
# strcmp() wrapped: test_compare counts the comparisons compare makes.
UNIT_LDFLAGS := -Wl,--wrap=strcmp
UNIT_LDLIBS := -lbpf -lz -ldeflate -lmicrohttpd -lgnutls -lyaml -lcrypt -lcap -ljson-c -lpthread
ifeq ($(SAN),1)
UNIT_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	       -fno-sanitize-recover=undefined
UNIT_LDFLAGS += -fsanitize=address,undefined
endif

UNIT_SRCS := user/collect.c user/scrape.c user/families.c user/metrics.c \
	     user/prom_text.c user/http.c user/http_auth.c user/http_dispatch.c \
	     user/http_gzip.c user/log_limit.c user/auth_pool.c \
	     user/tls_reload.c user/listen_address.c user/listen_socket.c \
	     user/vm_names.c user/vm_table.c user/web_config.c \
	     user/web_config_tls.c user/basic_auth.c user/caps.c \
	     user/conn_guard.c user/kvm_stats.c user/record.c user/record_read.c \
	     user/compare.c user/top.c user/duration_hist.c user/events.c \
	     user/trace.c user/live_seen.c
UNIT_TESTS := $(wildcard $(UNIT_DIR)/*.c)
UNIT_OBJS := $(patsubst user/%.c,$(UNIT_OUT)/user/%.o,$(UNIT_SRCS)) \
	     $(patsubst $(UNIT_DIR)/%.c,$(UNIT_OUT)/tests/%.o,$(UNIT_TESTS))
UNIT_BIN := $(UNIT_OUT)/unit-tests

# Rebuild everything when the flags change (SAN=1 after SAN=0, CC=...).
UNIT_STAMP := $(UNIT_OUT)/flags.stamp
UNIT_FLAGS_NOW := $(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_LDFLAGS)

.PHONY: unit-test unit-build unit-fuzz unit-clean FORCE_UNIT_FLAGS

unit-test: $(UNIT_BIN)
	$(UNIT_BIN) $(T)

unit-build: $(UNIT_BIN)

unit-clean:
	rm -rf $(UNIT_OUT)

$(UNIT_STAMP): FORCE_UNIT_FLAGS
	@mkdir -p $(@D)
	@echo '$(UNIT_FLAGS_NOW)' | cmp -s - $@ || \
		echo '$(UNIT_FLAGS_NOW)' > $@

$(UNIT_BIN): $(UNIT_OBJS) $(UNIT_STAMP)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_LDFLAGS) -o $@ $(UNIT_OBJS) $(UNIT_LDLIBS)

$(UNIT_OUT)/user/%.o: user/%.c $(wildcard user/*.h) bpf/unsync.h \
		      $(UNIT_STAMP)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<

$(UNIT_OUT)/tests/%.o: $(UNIT_DIR)/%.c $(wildcard $(UNIT_DIR)/*.h) \
		       $(wildcard user/*.h) bpf/unsync.h $(UNIT_STAMP)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) -c -o $@ $<

# libFuzzer needs clang whatever CC is.  Run it with, for example:
#   build/unit/fuzz-vm-names -max_total_time=60
UNIT_FUZZ_CC ?= clang
UNIT_FUZZ_BIN := $(UNIT_OUT)/fuzz-vm-names
# build/unit/fuzz-web-config tests/unit/fuzz/corpus/web_config -max_total_time=60
UNIT_FUZZ_WEB_BIN := $(UNIT_OUT)/fuzz-web-config

unit-fuzz: $(UNIT_FUZZ_BIN) $(UNIT_FUZZ_WEB_BIN)

UNIT_FUZZ_WEB_SRCS := user/web_config.c user/web_config_tls.c \
		      user/basic_auth.c

$(UNIT_FUZZ_WEB_BIN): $(UNIT_DIR)/fuzz/fuzz_web_config.c $(UNIT_FUZZ_WEB_SRCS) \
		      user/web_config.h user/web_config_internal.h
	@mkdir -p $(@D)
	$(UNIT_FUZZ_CC) -std=gnu11 -g -O1 -Wall -Wextra -Iuser \
		-fsanitize=fuzzer,address,undefined -o $@ \
		$(UNIT_DIR)/fuzz/fuzz_web_config.c $(UNIT_FUZZ_WEB_SRCS) \
		-lyaml -lgnutls -lcrypt

$(UNIT_FUZZ_BIN): $(UNIT_DIR)/fuzz/fuzz_vm_names.c user/vm_names.c \
		  user/prom_text.c user/vm_names.h user/prom_text.h
	@mkdir -p $(@D)
	$(UNIT_FUZZ_CC) -std=c11 -g -O1 -Wall -Wextra -Iuser \
		-fsanitize=fuzzer,address,undefined -o $@ \
		$(UNIT_DIR)/fuzz/fuzz_vm_names.c user/vm_names.c user/prom_text.c
