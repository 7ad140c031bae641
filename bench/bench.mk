# Included by the top Makefile: what `make bench` runs besides the agent.
# build/floor attaches do-nothing programs on the agent's hooks (the floor
# the agent's cost is measured against).

FLOOR := $(OUTPUT)/floor

$(OUTPUT)/floor.bpf.o: bench/floor.bpf.c vmlinux/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp
	$(Q)rm -f $@.tmp

$(OUTPUT)/bench:
	$(Q)mkdir -p $@

$(OUTPUT)/bench/floor.o: bench/floor.c $(OUTPUT)/floor.skel.h | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(FLOOR): $(OUTPUT)/bench/floor.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(LDFLAGS) $^ -lbpf -lelf -lz -o $@

.PHONY: floor
floor: $(FLOOR)
