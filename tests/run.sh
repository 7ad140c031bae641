#!/bin/bash
# make test: every suite, then one total line.  A suite that fails to run
# at all counts as a failure, never as zero tests.
set -u
cd "$(dirname "$0")/.."

total_pass=0 total_fail=0 total_skip=0 timings=()
# What failed, repeated at the end: CI keeps only the tail of the output.
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
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
	timings+=("$((SECONDS - start)) s  $name")
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "$name: no result line (exit $rc): counted as 1 failure"
		total_fail=$((total_fail + 1))
		note_failure "$name" "$log"
		rm -f "$log"
		return
	fi
	local p f s
	p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "$name: exited $rc: counted as 1 failure"
		total_fail=$((total_fail + 1))
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
for s in "" trixie sid; do
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
if [ "${KUE_SKIP_LAB:-0}" = 1 ]; then
	echo "=== lab: skipped (KUE_SKIP_LAB=1)"
	total_skip=$((total_skip + 1))
else
	suite "model vs kernel (no BPF)" python3 tests/pyrun.py tests/vm/test_selfcheck.py
	# The patched lab kernel: built once (cold: 20-30 min on 2 cores) and
	# cached outside the repo.  The stock-config twin is only needed for
	# make compare, so CI builds the patched one alone.
	suite "patched kernel (boots, no splats, syncs everything)" \
		env KUE_KERNEL_FLAVOURS=patched python3 tests/pyrun.py tests/kernel/test_patched.py
	suite "lab (agent vs model: Debian's kernel, patched kernel)" \
		python3 tests/pyrun.py tests/vm/test_lab.py tests/vm/test_ops_lab.py \
		tests/vm/test_kvmstats_lab.py tests/vm/test_devtools_lab.py \
		tests/vm/test_devtools_kvm_lab.py
	# Debian 13's and sid's kernels (fetched once, cached): the same shapes.
	suite "lab (newer kernels: trixie's 6.12, sid's newest; 6.1 derived)" \
		python3 tests/pyrun.py tests/vm/test_kernels_lab.py
	# Nested guests on an npt=1 host: model vs kernel, then the agent.
	suite "lab (nested guests, kvm_amd npt=1 nested=1)" \
		python3 tests/pyrun.py tests/vm/test_nested_lab.py
	# Prometheus scrapes the lab: the dashboard's panels, a fleet's
	# central store fed by remote write (Debian's prometheus).
	suite "lab (Prometheus: dashboard panels, remote write)" \
		python3 tests/pyrun.py tests/vm/test_prometheus_lab.py
	# The units as deploy/ ships them, then the .deb (dpkg -i, purge).
	suite "lab (deploy/ units and the .deb under systemd as PID 1)" \
		python3 tests/pyrun.py tests/vm/test_systemd_lab.py \
		tests/vm/test_package_lab.py
	suite "lab soak, ring-buffer overflow" python3 tests/pyrun.py \
		tests/vm/test_soak_lab.py tests/vm/test_overflow_lab.py
	suite "lab (ASan+UBSan agent)" python3 tests/pyrun.py tests/vm/test_san_lab.py
fi

echo
echo "time per suite:"
printf '  %s\n' "${timings[@]}"
if [ -s "$failures" ]; then
	echo "failed:"
	cat "$failures"
fi
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
