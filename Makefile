# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# kvm-unsync-exporter: BPF objects with clang's BPF target, a skeleton from
# bpftool, the daemon against Debian's libbpf and libmicrohttpd.
#
#   make            build build/kvm-unsync-exporter
#   make test       unit tests, bare-machine start-up test, VM lab
#   make check      the fast subset (unit, model, quick bare tests): < 1 min
#   make demo       boot the lab with the agent and a mix of workloads
#   make V=1        show the commands

OUTPUT ?= build
CLANG ?= clang
CC ?= gcc
BPFTOOL ?= bpftool
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ARCH := $(shell uname -m | sed 's/x86_64/x86/')

# clang -target bpf does not search the host's multiarch include dirs
# (asm/types.h lives there on Debian): ask clang where they are and add them
# after the BPF target's own, as libbpf-bootstrap does.
CLANG_BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall \
	-Ivmlinux -Ibpf $(CLANG_BPF_SYS_INCLUDES)

CFLAGS ?= -g -O2
CFLAGS += -Wall -Wextra -std=gnu11 -I$(OUTPUT) -Ibpf -Iuser \
	-DKUE_VERSION=\"$(VERSION)\"
LDLIBS := -lbpf -lelf -lz -lmicrohttpd -lgnutls -lyaml -lcrypt -lcap -lsystemd -lpthread

ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))
APP := $(OUTPUT)/kvm-unsync-exporter

.PHONY: all clean test unit-test bare-test lab-test demo check-deps check
.DELETE_ON_ERROR:

all: $(APP)

$(OUTPUT) $(OUTPUT)/user:
	$(Q)mkdir -p $@

$(OUTPUT)/unsync.bpf.o: bpf/unsync.bpf.c bpf/unsync.h vmlinux/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/probe.bpf.o: bpf/probe.bpf.c vmlinux/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(USER_OBJS): $(OUTPUT)/unsync.skel.h $(OUTPUT)/probe.skel.h $(wildcard user/*.h) bpf/unsync.h | $(OUTPUT)/user

$(OUTPUT)/user/%.o: user/%.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(APP): $(USER_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

-include tests/unit/unit.mk
-include tests/tests.mk

# What to run before every commit: no VM, no root-only kernel features.
CHECK_PY := tests/model/test_model.py tests/model/test_model_patched.py \
	    tests/bare/test_startup.py tests/bare/test_ops.py \
	    tests/bare/test_web.py tests/bare/test_alerts.py

check: all unit-test
	$(Q)python3 tests/pyrun.py $(CHECK_PY)

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT)
