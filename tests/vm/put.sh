# Sourced by initramfs.sh and systemd/root.sh: copy files into the tree
# being built at $root, following symlinks, so the VM gets real files.

# put SRC [DEST]: SRC at DEST under $root (default: at its own path).
put() {
	mkdir -p "$root$(dirname "${2:-$1}")"
	cp -L "$1" "$root${2:-$1}"
}

# put_bin SRC [DEST]: a binary, and for a dynamic ELF binary every library
# ldd names and the dynamic loader (put_libs).  Returns 1 if ldd cannot
# find a library.
put_bin() {
	put "$1" "${2:-$1}" || return 1
	put_libs "$1"
}

# put_libs SRC: every library ldd names for SRC and the dynamic loader, at
# the paths ldd prints, not SRC itself.  Returns 1 if ldd cannot find one.
put_libs() {
	# ldd fails on static binaries and scripts: then there is nothing to add.
	_pb_libs=$(ldd "$1" 2>/dev/null) || return 0
	if echo "$_pb_libs" | grep -q 'not found'; then
		return 1
	fi
	echo "$_pb_libs" | while read -r a b c _; do
		case $a in
		/*) lib=$a ;;                  # the loader, by absolute path
		*) [ "$b" = "=>" ] || continue
		   case $c in /*) lib=$c ;; *) continue ;; esac ;;
		esac
		[ -e "$root$lib" ] || put "$lib" || exit 1
	done
}
