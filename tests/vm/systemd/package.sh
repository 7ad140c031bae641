# Sourced by root.sh -d, after put.sh: what dpkg -i and dpkg --purge of
# one package need in a root that has no base system.  Uses root.sh's
# $root (the tree being built) and $work (its scratch directory).

# put_dpkg DEB DEST: dpkg and what it runs, the maintainer scripts' tools,
# an empty package database, and DEB at DEST.
put_dpkg() {
	# dpkg runs dpkg-split (is it a part?), dpkg-deb (which runs tar for
	# the control member) and dpkg-query (-L, -s); it refuses to start
	# without ldconfig and start-stop-daemon on PATH.  sh, rm and diff are
	# busybox's.
	for b in /usr/bin/dpkg /usr/bin/dpkg-deb /usr/bin/dpkg-query \
		 /usr/bin/dpkg-split /usr/bin/tar /usr/sbin/ldconfig \
		 /usr/sbin/start-stop-daemon /usr/bin/perl; do
		put_bin "$b" || die "cannot copy $b and its libraries"
	done
	# debhelper's maintainer scripts enable, start, stop and purge the
	# units with init-system-helpers' perl scripts; perl-base has every
	# module they use.
	put /usr/bin/deb-systemd-helper
	put /usr/bin/deb-systemd-invoke
	mkdir -p "$root/usr/lib/x86_64-linux-gnu"
	cp -a /usr/lib/x86_64-linux-gnu/perl-base "$root/usr/lib/x86_64-linux-gnu/"

	# The libraries the package's binary links to, from the package
	# itself.  No package is registered: they are in the root, not in the
	# database, so the install needs --force-depends.
	mkdir "$work/deb"
	dpkg-deb -x "$1" "$work/deb"
	put_libs "$work/deb/usr/sbin/kvm-unsync-exporter" ||
		die "cannot copy the libraries of the package's binary"
	mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" \
		"$root/var/lib/dpkg/triggers" "$root/var/lib/dpkg/alternatives" \
		"$root/etc/dpkg/dpkg.cfg.d"
	: >"$root/var/lib/dpkg/status"
	: >"$root/var/lib/dpkg/available"
	put "$1" "$2"
}
