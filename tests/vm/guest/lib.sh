# Sourced by the scenarios that boot the Linux guest (tests/vm/labguest.py
# installs it as /lib/kue-guest.sh): QEMU runs inside the lab VM on its KVM
# (shadow paging, kvm_amd npt=0), the guest is Debian's own kernel with the
# busybox initramfs of tests/vm/guest/init.sh.

T=/sys/kernel/tracing

# run_guest NAME FORKS OUT: boot the guest as QEMU VM "NAME" (-name
# guest=NAME), FORKS forks in it, QEMU's output in OUT and its exit code
# appended as "rc=N".  QEMU's pid goes to /tmp/qemu.pid.  With
# GUEST_TRACE_PID=1 QEMU's pid is the only one in tracefs's set_event_pid
# (with options/event-fork its threads join it): the trace holds QEMU's
# events only.  The trace marker gets "kue-guest: start" just before QEMU
# is exec'd and "kue-guest: end" once it has exited: with trace_clock mono
# the time between them is QEMU's whole run, in the lab's clock.
run_guest() {
	GUEST_NAME=$1 GUEST_FORKS=$2 sh -c '
		echo $$ >/tmp/qemu.pid
		[ "${GUEST_TRACE_PID:-0}" = 0 ] || echo $$ >'$T'/set_event_pid
		echo "kue-guest: start" >'$T'/trace_marker
		exec qemu-system-x86_64 -L /usr/share/qemu -accel kvm -M microvm \
			-cpu qemu64 -m 192 -nodefaults -no-user-config -nographic \
			-serial stdio -no-reboot -kernel /guest/vmlinuz \
			-initrd /guest/initrd.gz -name "guest=$GUEST_NAME" \
			-append "console=ttyS0 quiet panic=-1 kue.forks=$GUEST_FORKS"' \
		>"$3" 2>&1 </dev/null
	_rg_rc=$?
	echo "kue-guest: end" >$T/trace_marker
	echo "rc=$_rg_rc" >>"$3"
}

# guest_ok OUT: QEMU exited 0 after the guest ran every fork.
guest_ok() {
	grep -q '^rc=0$' "$1" && grep -q '^guest: forked [0-9]* failed=0' "$1"
}

# guest_time: ns between the last run's start and end marks in the trace
# (trace_clock mono: -icount's instruction clock under make bench).
guest_time() {
	grep 'kue-guest: \(start\|end\)' $T/trace |
		sed 's/.* \([0-9]*\)\.\([0-9]*\): .*kue-guest: \([a-z]*\).*/\3 \1\2/' |
		awk '$1 == "start" { s = $2 } $1 == "end" { e = $2 }
			END { if (s != "" && e != "") printf "%.0f\n", (e - s) * 1000 }'
}
