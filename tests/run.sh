#!/bin/bash
# make test: every suite, then one total line.  A suite that fails to run
# at all counts as a failure, never as zero tests.
set -u
cd "$(dirname "$0")/.."

# Each suite appends "passed failed skipped" to $results and its time to
# $timings, so the suites of a lab lane running in the background (below)
# count like the others.  What failed, repeated at the end: CI keeps only
# the tail of the output.
results=$(mktemp) timings=$(mktemp) failures=$(mktemp) lane_log=$(mktemp)
trap 'rm -f "$results" "$timings" "$failures" "$lane_log"' EXIT
note_failure() {	# suite-name log
	{
		echo "$1:"
		# Python's unittest names each failed test; other suites do not,
		# so their last lines say what went wrong.
		grep -E '^(FAIL|ERROR): ' "$2" | head -n 20 | sed 's/^/  /'
		grep -qE '^(FAIL|ERROR): ' "$2" || tail -n 5 "$2" | sed 's/^/  /'
	} >>"$failures"
}
suite() {
	local name=$1 log start=$SECONDS
	shift
	echo "=== $name"
	log=$(mktemp)
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	# where CI's time goes (its budget is README's), one line a suite
	echo "--- $name: $((SECONDS - start)) s"
	echo "$((SECONDS - start)) s  $name" >>"$timings"
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "$name: no result line (exit $rc): counted as 1 failure"
		echo "0 1 0" >>"$results"
		note_failure "$name" "$log"
		rm -f "$log"
		return
	fi
	local p f s
	p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	echo "$p $f ${s:-0}" >>"$results"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$name: exited $rc: counted as 1 failure"
		echo "0 1 0" >>"$results"
	fi
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		note_failure "$name" "$log"
	fi
	rm -f "$log"
}

suite "unit (C)" make -s unit-test
# The kernels' own source, for the model's source checks (tests/model/
# kernels.py): about 150 MB each, fetched once; 3-4 MB kept in the cache.
# Without it those checks skip and say so.
for s in "" trixie sid trixie-backports; do
	tests/model/kernel_source.sh ${s:+-s $s} >/dev/null ||
		echo "kernel_source.sh ${s:--host}: failed: the model's source checks for it will skip"
done
suite "model" python3 tests/pyrun.py tests/model/test_model.py tests/model/test_model_patched.py \
	tests/model/test_model_nested.py tests/model/test_model_kernels.py
suite "bare machine" python3 tests/pyrun.py tests/bare/test_startup.py tests/bare/test_ops.py \
	tests/bare/test_web.py tests/bare/test_alerts.py tests/bare/test_pin_lock.py \
	tests/bare/test_http_wire.py tests/bare/test_tree.py tests/bare/test_devtools.py \
	tests/bare/test_slow_clients.py
# make install, the man page, the dashboard, recording rules, the .deb
suite "install, package" python3 tests/pyrun.py tests/bare/test_install.py
# Reliability: every libFuzzer harness for KUE_FUZZ_TIME s (30), the unit
# tests and a soak with the ASan+UBSan build (build/san), valgrind too.
suite "fuzz" bash tests/fuzz/run.sh
suite "unit (C, ASan+UBSan)" make -s unit-test SAN=1 UNIT_OUT=build/san/unit
suite "bare soak" bash -c 'make -s OUTPUT=build/san SAN=1 >/dev/null &&
	exec python3 tests/pyrun.py tests/bare/test_soak.py'
lab_lane_a() {
	# The patched lab kernel, built before the lanes.  The stock-config
	# twin is only needed for make compare, so CI builds the patched one
	# alone.
	suite "patched kernel (boots, no splats, syncs everything)" \
		env KUE_KERNEL_FLAVOURS=patched python3 tests/pyrun.py tests/kernel/test_patched.py
	suite "lab (agent vs model: Debian's kernel, patched kernel)" \
		python3 tests/pyrun.py tests/vm/test_lab.py tests/vm/test_ops_lab.py \
		tests/vm/test_kvmstats_lab.py tests/vm/test_devtools_lab.py tests/vm/test_names_lab.py \
		tests/vm/test_devtools_kvm_lab.py
	# Nested guests on an npt=1 host: model vs kernel, then the agent.
	suite "lab (nested guests, kvm_amd npt=1 nested=1)" \
		python3 tests/pyrun.py tests/vm/test_nested_lab.py
	# A real Linux guest (QEMU in the lab VM, Debian's kernel, fork/exec
	# churn) on 6.1 and sid: the agent against the kernel's own counts.
	suite "lab (a Linux guest under QEMU: agent vs the kernel's counts)" \
		python3 tests/pyrun.py tests/vm/test_guest_lab.py
}

lab_lane_b() {
	suite "lab soak, ring-buffer overflow" python3 tests/pyrun.py \
		tests/vm/test_soak_lab.py tests/vm/test_overflow_lab.py
	# Debian 13's and sid's kernels (fetched once, cached): the same shapes.
	suite "lab (newer kernels: trixie's 6.12, sid's newest; 6.1 derived)" \
		python3 tests/pyrun.py tests/vm/test_kernels_lab.py
	suite "lab (ASan+UBSan agent)" python3 tests/pyrun.py tests/vm/test_san_lab.py
	# Prometheus scrapes the lab: the dashboard's panels, a fleet's
	# central store fed by remote write (Debian's prometheus).
	suite "lab (Prometheus: dashboard panels, remote write)" \
		python3 tests/pyrun.py tests/vm/test_prometheus_lab.py
	# The units as deploy/ ships them, then the .deb (dpkg -i, purge).
	suite "lab (deploy/ units and the .deb under systemd as PID 1)" \
		python3 tests/pyrun.py tests/vm/test_systemd_lab.py \
		tests/vm/test_package_lab.py
}

if [ "${KUE_SKIP_LAB:-0}" = 1 ]; then
	echo "=== lab: skipped (KUE_SKIP_LAB=1)"
	echo "0 0 1" >>"$results"
else
	suite "model vs kernel (no BPF)" python3 tests/pyrun.py tests/vm/test_selfcheck.py
	# Before the lanes, in a row: Debian 13's and sid's kernels fetched,
	# the patched lab kernel built (cold: 20-30 min of both cores), each
	# into the cache once, so no lane waits on or races another for them.
	for s in trixie sid; do
		tests/vm/kernel.sh -s $s >/dev/null ||
			echo "kernel.sh -s $s: failed: its lab tests will say so"
	done
	tests/kernel/build.sh patched >/dev/null ||
		echo "build.sh patched: failed: the patched-kernel suites will say so"
	# The lab VMs are QEMU with one emulated CPU, one host core each: two
	# lanes of suites run side by side, about 10 minutes each instead of 20
	# in a row (one warm run's suite times add up to 597 s for lane A and
	# 625 s for lane B).  Lane B's output is printed after lane A's, whole.  Each
	# suite keeps its own build files and VM logs (per-test temporary
	# directories), and the kernels and initramfs bases are put in the
	# cache atomically.  KUE_LAB_LANES=1 runs them in a row.
	lab_lane_b >"$lane_log" 2>&1 &
	lane_b=$!
	[ "${KUE_LAB_LANES:-2}" = 1 ] && wait $lane_b
	lab_lane_a
	wait $lane_b
	cat "$lane_log"
fi

echo
echo "time per suite (lab lanes A and B side by side): ${SECONDS} s in all"
sed 's/^/  /' "$timings"
if [ -s "$failures" ]; then
	echo "failed:"
	cat "$failures"
fi
read -r total_pass total_fail total_skip < <(awk '
	{ p += $1; f += $2; s += $3 } END { print p + 0, f + 0, s + 0 }' "$results")
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
