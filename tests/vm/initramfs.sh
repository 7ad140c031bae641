#!/bin/sh
# Build the VM lab's initramfs: busybox, the KVM modules, a scenario script
# and any extra binaries with their shared libraries.
#
# Usage: initramfs.sh -o OUT.gz -s SCENARIO [-m MODULES_DIR | -k] [-n]
#                     [-e NAME=VALUE]... [-f SRC:DEST]... [BINARY]...
#
#   -o OUT.gz      the gzip'd newc archive to write
#   -s SCENARIO    shell script that becomes /scenario (run by busybox sh)
#   -m DIR         unpacked lib/modules/<release> (default: from kernel.sh,
#                  or $KUE_KERNEL_MODULES)
#   -k             for a kernel with KVM built in (tests/kernel/build.sh):
#                  no modules; load-kvm only checks that /dev/kvm exists
#                  (shadow paging comes from kvm_amd.npt=0 on the kernel
#                  command line, which lab.py passes)
#   -n             do not load KVM at boot; the scenario runs `load-kvm`
#                  (or insmod by hand from /lib/modules/kvm) when it wants
#   -e NAME=VALUE  exported to the scenario (through /etc/kue.env)
#   -f SRC:DEST    copy a data file to DEST inside the VM
#   BINARY         copied to /bin/<name>; for a dynamic ELF binary, every
#                  library ldd names and the dynamic loader come along, at
#                  the paths ldd prints
#
# The archive is two gzip members, which the kernel unpacks one after the
# other: a base (busybox, modules, /init) cached under $KUE_CACHE and keyed
# by its inputs, and a small per-run member with the scenario and binaries.
# So a rebuild per test run costs one gzip of the binaries, nothing more.
#
# Inside the VM, /init mounts proc, sysfs, devtmpfs, debugfs, tracefs and
# bpffs, brings up lo, loads irqbypass, ccp, kvm and kvm-amd npt=0 (unless -n
# or kue.kvm=0 on the kernel command line), then kue-run-scenario runs
# /scenario, prints the kernel log between "=== BEGIN dmesg ===" and
# "=== END dmesg ===", then
#   === KUE SCENARIO EXIT rc=<code> tainted=<mask> ===
# before poweroff -f.  lab.py parses that line.  With -e KUE_PID1=PROGRAM
# /init execs PROGRAM instead, which must see to the same in the end.

set -eu

die() {
	echo "initramfs.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^# The archive/{/^# The archive/d;s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}

out='' scenario='' modules=${KUE_KERNEL_MODULES:-} load_kvm=1 builtin=0
envs='' files=''
while getopts o:s:m:kne:f:h opt; do
	case $opt in
	o) out=$OPTARG ;;
	s) scenario=$OPTARG ;;
	m) modules=$OPTARG ;;
	k) builtin=1 ;;
	n) load_kvm=0 ;;
	e) case $OPTARG in
	   [A-Za-z_]*=*) envs="$envs$OPTARG
" ;;
	   *) die "-e wants NAME=VALUE, got '$OPTARG'" ;;
	   esac ;;
	f) case $OPTARG in
	   ?*:/?*) files="$files$OPTARG
" ;;
	   *) die "-f wants SRC:/ABSOLUTE/DEST, got '$OPTARG'" ;;
	   esac ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$out" ] || die "missing -o OUT.gz"
[ -n "$scenario" ] || die "missing -s SCENARIO"
[ -r "$scenario" ] || die "cannot read scenario $scenario"

here=$(cd "$(dirname "$0")" && pwd)
if [ "$builtin" = 1 ]; then
	modules=
elif [ -z "$modules" ]; then
	eval "$("$here/kernel.sh")"
	modules=$KUE_KERNEL_MODULES
fi
[ "$builtin" = 1 ] || [ -d "$modules" ] || die "no modules directory $modules"

busybox=${KUE_BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
# A dynamic busybox would need its libraries and would fail with no
# message at all as /init: insist on the static one.
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; install busybox-static"
fi

cache=${KUE_CACHE:-${HOME:?HOME is not set}/.cache/kvm-unsync-exporter}/initramfs
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/kue-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# newc archive of the current directory, owned by root whoever builds it.
pack() {
	find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet
}

# The KVM modules, in load order.  Debian ships them as plain .ko today;
# other builds compress them, and busybox insmod cannot read xz or zstd.
KMODS="irqbypass ccp kvm kvm-amd"

find_module() {
	find "$modules/kernel" -name "$1.ko" -o -name "$1.ko.xz" \
		-o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -n 1
}

copy_module() {
	case $1 in
	*.ko) cp "$1" "$2" ;;
	*.xz) xz -dc "$1" >"$2" ;;
	*.zst) zstd -qdc "$1" >"$2" ;;
	*.gz) gzip -dc "$1" >"$2" ;;
	esac
}

# --- base member: cached, keyed by everything that goes into it ----------
modpaths=
[ "$builtin" = 1 ] || for m in $KMODS; do
	p=$(find_module "$m")
	[ -n "$p" ] || die "module $m not found under $modules/kernel"
	modpaths="$modpaths $p"
done
# shellcheck disable=SC2086
key=$( { cat "$0"; echo "builtin=$builtin"; ls -lL "$busybox" $modpaths; } | sha256sum | cut -c1-16)
base=$cache/base-$key.cpio.gz

if [ ! -s "$base" ]; then
	root=$work/base
	mkdir -p "$root/bin" "$root/dev" "$root/etc" "$root/proc" "$root/sys" \
		"$root/tmp" "$root/root" "$root/lib/modules/kvm"
	cp "$busybox" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	for p in $modpaths; do
		name=${p##*/}
		copy_module "$p" "$root/lib/modules/kvm/${name%%.ko*}.ko"
	done

	if [ "$builtin" = 1 ]; then
		cat >"$root/bin/load-kvm" <<'EOF'
#!/bin/sh
# load-kvm: KVM is built into this kernel, with its parameters on the
# kernel command line (kvm_amd.npt=0): nothing to load, only check.
[ $# -eq 0 ] || echo "load-kvm: KVM is built in, parameters ignored: $*"
[ -c /dev/kvm ] || { echo "load-kvm: no /dev/kvm (KVM is built in: did kvm_amd initialise? see dmesg)"; exit 1; }
EOF
	else
		cat >"$root/bin/load-kvm" <<'EOF'
#!/bin/sh
# load-kvm [KVM_AMD_PARAMS...]: insmod the KVM modules (the image has no
# modules.dep, so modprobe cannot), kvm-amd with npt=0 unless told otherwise.
d=/lib/modules/kvm
for m in irqbypass ccp kvm; do
	grep -q "^$m " /proc/modules || insmod "$d/$m.ko" || exit 1
done
if ! grep -q "^kvm_amd " /proc/modules; then
	[ $# -gt 0 ] || set -- ${KUE_KVM_AMD_PARAMS:-npt=0}
	insmod "$d/kvm-amd.ko" "$@" || exit 1
fi
[ -c /dev/kvm ] || { echo "load-kvm: no /dev/kvm after loading kvm-amd"; exit 1; }
EOF
	fi

	cat >"$root/init" <<'EOF'
#!/bin/sh
# The lab's /init: set the machine up, run /scenario, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# From now on stdio is devtmpfs's console node, like any program expects.
exec </dev/console >/dev/console 2>&1
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
ip link set lo up
set -a
[ -r /etc/kue.env ] && . /etc/kue.env
set +a
case " $(cat /proc/cmdline) " in
*" kue.kvm=0 "*) KUE_LOAD_KVM=0 ;;
esac
if [ "${KUE_LOAD_KVM:-1}" = 1 ]; then
	load-kvm || echo "init: loading KVM failed"
fi
echo "=== KUE SCENARIO START ==="
# KUE_PID1 (-e): a program that takes over as PID 1 (tests/vm/systemd/
# boot.sh makes systemd init) and runs kue-run-scenario itself.
[ -z "${KUE_PID1:-}" ] || exec "$KUE_PID1"
exec kue-run-scenario
EOF
	cat >"$root/bin/kue-run-scenario" <<'EOF'
#!/bin/sh
# Run /scenario, report, power off.
sh /scenario
rc=$?
# The kernel's own log, for tests that look for warnings and lockdep splats.
echo "=== BEGIN dmesg ==="
dmesg
echo "=== END dmesg ==="
echo "=== KUE SCENARIO EXIT rc=$rc tainted=$(cat /proc/sys/kernel/tainted) ==="
poweroff -f
EOF
	chmod 755 "$root/init" "$root/bin/load-kvm" "$root/bin/kue-run-scenario"
	(cd "$root" && pack) >"$work/base.cpio"

	# /dev/console must be in the archive: the kernel opens it for init
	# before anything is mounted.  cpio cannot make a device node that is
	# not on disk and mknod needs root, so write that newc entry by hand:
	# magic, 13 hex fields (ino mode uid gid nlink mtime filesize devmajor
	# devminor rdevmajor rdevminor namesize check), name, NUL, pad to 4.
	{
		printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s' \
			1 $((0020600)) 0 0 1 0 0 0 0 5 1 12 0 'dev/console'
		printf '\0\0\0'
		printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s' \
			0 0 0 0 1 0 0 0 0 0 0 11 0 'TRAILER!!!'
		printf '\0\0\0\0'
	} >"$work/console.cpio"
	cat "$work/base.cpio" "$work/console.cpio" | gzip -6 >"$work/base.cpio.gz"
	mv "$work/base.cpio.gz" "$base"
	# Old bases (other kernels, older scripts) are dead weight.
	find "$cache" -name 'base-*.cpio.gz' ! -name "${base##*/}" -mtime +7 -delete 2>/dev/null || true
fi

# --- per-run member: scenario, binaries, libraries, files, environment ----
root=$work/run
mkdir -p "$root/bin" "$root/etc"
cp "$scenario" "$root/scenario"
chmod 755 "$root/scenario"

# put, put_bin
. "$here/put.sh"

for bin in "$@"; do
	[ -f "$bin" ] || die "no such binary $bin"
	put_bin "$bin" "/bin/${bin##*/}" ||
		die "$bin: cannot copy it, or ldd reports missing libraries"
	chmod 755 "$root/bin/${bin##*/}"
done

printf '%s' "$files" | while IFS= read -r spec; do
	[ -n "$spec" ] || continue
	src=${spec%%:/*} dest=/${spec#*:/}
	[ -r "$src" ] || die "cannot read $src"
	put "$src" "$dest"
done

{
	echo "KUE_LOAD_KVM=$load_kvm"
	printf '%s' "$envs" | while IFS= read -r kv; do
		[ -n "$kv" ] || continue
		# Single-quote the value so the scenario sees it verbatim.
		printf "%s='%s'\n" "${kv%%=*}" "$(printf '%s' "${kv#*=}" | sed "s/'/'\\\\''/g")"
	done
} >"$root/etc/kue.env"

(cd "$root" && pack) | gzip -1 >"$work/run.cpio.gz"
mkdir -p "$(dirname "$out")"
cat "$base" "$work/run.cpio.gz" >"$out.tmp.$$"
mv "$out.tmp.$$" "$out"
