# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# kvm-unsync-exporter: BPF objects with clang's BPF target, a skeleton from
# bpftool, the daemon against Debian's libbpf and libmicrohttpd.
#
#   make            build build/kvm-unsync-exporter
#   make test       unit tests, bare-machine start-up test, VM lab
#   make check      the fast subset (unit, model, quick bare tests): ~2 min
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

# CPPFLAGS, CFLAGS and LDFLAGS from the environment or the command line
# (debian/rules passes dpkg-buildflags' hardening: -D_FORTIFY_SOURCE=2,
# -fstack-protector-strong, -z relro -z now) are used as given; the build's
# own flags go before them ("override": also when they come from the
# command line), so a packager's -O or -std has the last word.
CFLAGS ?= -g -O2
override CFLAGS := -Wall -Wextra -std=gnu11 -I$(OUTPUT) -Ibpf -Iuser \
	-DKUE_VERSION=\"$(VERSION)\" $(CFLAGS)
LDLIBS := -lbpf -lelf -lz -ldeflate -lmicrohttpd -lgnutls -lyaml -lcrypt -lcap -lsystemd -ljson-c -lpthread

ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
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
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(APP): $(USER_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

-include tests/unit/unit.mk
-include bench/bench.mk
-include tests/tests.mk

# --- install, uninstall -------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSTEMDUNITDIR=...]: the
# binary in sbin, the units (ExecStart= pointed at that binary) where
# systemd looks for them under PREFIX, the man page, and under
# share/kvm-unsync-exporter the Prometheus rules, the Grafana dashboard and
# an example web config.  debian/rules uses it with PREFIX=/usr.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/kvm-unsync-exporter
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install
UNITS := kvm-unsync-exporter.service kvm-unsync-exporter.socket
RULES := kvm-unsync-exporter.rules.yml kvm-unsync-exporter.recording.yml

.PHONY: install uninstall
install: $(APP)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR)/prometheus \
		$(DESTDIR)$(DATADIR)/grafana
	$(Q)$(INSTALL) -m 0755 $(APP) $(DESTDIR)$(SBINDIR)/kvm-unsync-exporter
	$(Q)for u in $(UNITS); do \
		sed 's|/usr/local/sbin/kvm-unsync-exporter|$(SBINDIR)/kvm-unsync-exporter|' \
			deploy/$$u >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done
	$(Q)$(INSTALL) -m 0644 docs/kvm-unsync-exporter.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 0644 $(addprefix deploy/prometheus/,$(RULES)) \
		$(DESTDIR)$(DATADIR)/prometheus/
	$(Q)$(INSTALL) -m 0644 deploy/grafana/kvm-unsync-exporter.json \
		$(DESTDIR)$(DATADIR)/grafana/
	$(Q)$(INSTALL) -m 0644 deploy/web-config.example.yml $(DESTDIR)$(DATADIR)/

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/kvm-unsync-exporter \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS)) \
		$(DESTDIR)$(MANDIR)/man8/kvm-unsync-exporter.8 \
		$(addprefix $(DESTDIR)$(DATADIR)/prometheus/,$(RULES)) \
		$(DESTDIR)$(DATADIR)/grafana/kvm-unsync-exporter.json \
		$(DESTDIR)$(DATADIR)/web-config.example.yml
	$(Q)rmdir $(DESTDIR)$(DATADIR)/prometheus $(DESTDIR)$(DATADIR)/grafana \
		$(DESTDIR)$(DATADIR) 2>/dev/null || true
# --- end of install, uninstall -------------------------------------------

# What to run before every commit: no VM, no root-only kernel features.
CHECK_PY := tests/model/test_model.py tests/model/test_model_patched.py \
	    tests/model/test_model_nested.py tests/model/test_model_kernels.py \
	    tests/bare/test_startup.py tests/bare/test_ops.py \
	    tests/bare/test_web.py tests/bare/test_alerts.py tests/bare/test_pin_lock.py \
	    tests/bare/test_http_wire.py tests/bare/test_tree.py tests/bare/test_devtools.py

check: all unit-test $(BENCH_RENDER)
	$(Q)python3 tests/pyrun.py $(CHECK_PY)

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT)
