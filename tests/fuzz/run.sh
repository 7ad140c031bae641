#!/bin/bash
# Build every libFuzzer harness of the daemon and fuzz each for a bounded
# time; prints one line per harness and then "N passed, N failed", which
# tests/run.sh adds up.  A harness that does not build, or that finds a
# crash, a hang, a leak or a sanitizer report, is a failure.
#
# Usage: tests/fuzz/run.sh [NAME...]      (default: every harness)
#
# Harnesses are the files fuzz_NAME.c in tests/fuzz/ and tests/unit/fuzz/.
# Each is linked with the daemon's user/*.c (all but main.c and the files
# that need the BPF skeleton), built with clang, -fsanitize=fuzzer,address,
# undefined, into build/fuzz/.  Its seed corpus is DIR/corpus/NAME/ if that
# exists, its dictionary DIR/corpus/NAME.dict.  New inputs go to
# build/fuzz/corpus/NAME/, crash inputs to build/fuzz/artifacts/: never
# into the repository.
#
# Environment: KUE_FUZZ_TIME   seconds per harness (default 30)
#              KUE_FUZZ_CC     compiler (default clang)
#              KUE_FUZZ_OUT    output directory (default build/fuzz)
set -u
cd "$(dirname "$0")/../.."

T=${KUE_FUZZ_TIME:-30}
CC=${KUE_FUZZ_CC:-clang}
OUT=${KUE_FUZZ_OUT:-build/fuzz}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Iuser -Ibpf"
CFLAGS="$CFLAGS -DKUE_VERSION=\"$(cat VERSION 2>/dev/null || echo 0.0.0)\""

pass=0 fail=0
ok() { echo "fuzz $1: ok ($2)"; pass=$((pass + 1)); }
bad() { echo "fuzz $1: FAILED ($2)"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# The libraries the daemon links with, as the Makefile says.
LDLIBS=$(printf 'print-%%:\n\t@echo $($*)\n' |
	 make -s --no-print-directory -f Makefile -f - print-LDLIBS 2>/dev/null)
[ -n "$LDLIBS" ] || LDLIBS="-lbpf -lelf -lz -lmicrohttpd -lpthread"

harnesses=()
for f in tests/fuzz/fuzz_*.c tests/unit/fuzz/fuzz_*.c; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .c)
	name=${name#fuzz_}
	if [ $# -gt 0 ]; then
		case " $* " in *" $name "*) ;; *) continue ;; esac
	fi
	harnesses+=("$f")
done
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz: no harness found"
	fail=1
	finish
fi

if ! command -v "$CC" >/dev/null; then
	bad all "$CC not installed"
	finish
fi

# The daemon's code once, instrumented for coverage and the sanitizers.
mkdir -p "$OUT/obj" "$OUT/artifacts" "$OUT/logs"
lib=$OUT/libkue.a
rm -f "$lib"
objs=()
for src in user/*.c; do
	[ "$src" = user/main.c ] && continue
	grep -q 'skel\.h' "$src" && continue
	o=$OUT/obj/$(basename "$src" .c).o
	# A file that does not compile is left out: the harnesses that need
	# it then fail to link, and say so; the others still run.
	if $CC $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$o" \
		>"$OUT/logs/build-$(basename "$src" .c).log" 2>&1; then
		objs+=("$o")
	else
		echo "fuzz: $src does not compile (see $OUT/logs/build-$(basename "$src" .c).log)"
	fi
done
[ ${#objs[@]} -gt 0 ] && ar rcs "$lib" "${objs[@]}"

for h in "${harnesses[@]}"; do
	dir=$(dirname "$h")
	name=$(basename "$h" .c)
	name=${name#fuzz_}
	bin=$OUT/fuzz-$name
	log=$OUT/logs/$name.log
	# shellcheck disable=SC2086
	if ! $CC $CFLAGS $SAN -fsanitize=fuzzer -I"$dir" "$h" "$lib" \
		$LDLIBS -ldl -o "$bin" >"$log" 2>&1; then
		cat "$log"
		bad "$name" "does not build"
		continue
	fi
	work=$OUT/corpus/$name
	mkdir -p "$work"
	seeds=()
	[ -d "$dir/corpus/$name" ] && seeds+=("$dir/corpus/$name")
	opts=(-max_total_time="$T" -timeout=10 -rss_limit_mb=2048
	      -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-")
	[ -f "$dir/corpus/$name.dict" ] && opts+=(-dict="$dir/corpus/$name.dict")
	"$bin" "${opts[@]}" "$work" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		ok "$name" "${runs:-?} runs in ${T}s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l)"
	else
		tail -n 40 "$log"
		bad "$name" "exit $rc; log $log; inputs in $OUT/artifacts/"
	fi
done
finish
