// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "pins.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/*
 * dir is a BPF filesystem's root itself (its parent is on another
 * device): the agent would pin beside, and unpin, whatever is there.
 */
static bool is_bpffs_root(const char *dir)
{
	char up[sizeof(((struct pins *)0)->dir) + 4];
	struct statfs fs;
	struct stat a, b;

	snprintf(up, sizeof(up), "%s/..", dir);
	return !statfs(dir, &fs) && fs.f_type == BPF_FS_MAGIC &&
	       !stat(dir, &a) && !stat(up, &b) && a.st_dev != b.st_dev;
}

static int check_bpffs(const char *dir, char *err, size_t errlen)
{
	char parent[sizeof(((struct pins *)0)->dir)];
	struct statfs st;
	const char *up;

	int len = (int)strlen(dir);

	if (is_bpffs_root(dir)) {
		while (len > 1 && dir[len - 1] == '/')
			len--;
		snprintf(err, errlen,
			 "--pin-dir %s is the BPF filesystem's root: pass a directory in it (e.g. %.*s/kvm_unsync)",
			 dir, len, dir);
		return -EISDIR;
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	up = dirname(parent);
	if (statfs(up, &st)) {
		if (errno == ENOENT)
			snprintf(err, errlen,
				 "cannot create --pin-dir %s: %s does not exist: create it on a BPF filesystem or pick another --pin-dir",
				 dir, up);
		else
			snprintf(err, errlen, "cannot check --pin-dir %s: %s: %s",
				 dir, up, strerror(errno));
		return -ENOENT;
	}
	if (st.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen,
			 "%s is not on a BPF filesystem: mount it (mount -t bpf bpf /sys/fs/bpf) or pick another --pin-dir",
			 dir);
		return -ENOTDIR;
	}
	return 0;
}

int pins_open(struct pins *p, const char *dir, char *err, size_t errlen)
{
	int err_;

	memset(p, 0, sizeof(*p));
	p->lock_fd = -1;
	if (snprintf(p->dir, sizeof(p->dir), "%s", dir) >= (int)sizeof(p->dir)) {
		snprintf(err, errlen, "--pin-dir is too long");
		return -ENAMETOOLONG;
	}
	err_ = check_bpffs(dir, err, errlen);
	if (err_)
		return err_;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err_ = -errno;
		snprintf(err, errlen, "cannot create pin directory %s: %s",
			 dir, strerror(errno));
		return err_;
	}
	p->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->lock_fd < 0) {
		err_ = -errno;
		snprintf(err, errlen, "cannot open pin directory %s: %s", dir,
			 strerror(errno));
		return err_;
	}
	/* Two agents must never share (and later unpin) the same maps. */
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	err_ = -errno;
	if (errno == ENOSYS) {
		/*
		 * A kernel built without CONFIG_FILE_LOCKING has no flock()
		 * at all (sys_ni: -ENOSYS).  Refusing to start there would
		 * leave such hosts with no agent for a guard that only
		 * matters when an operator starts two on one directory, so
		 * run unguarded and say so.
		 */
		fprintf(stderr,
			"warning: cannot lock pin directory %s: the kernel has no file locking (CONFIG_FILE_LOCKING): a second agent on it would not be refused\n",
			dir);
		return 0;
	}
	if (errno == EWOULDBLOCK)
		snprintf(err, errlen,
			 "pin directory %s is in use by another kvm-unsync-exporter: stop it or pass another --pin-dir",
			 dir);
	else
		snprintf(err, errlen,
			 "cannot lock pin directory %s: %s: pass another --pin-dir",
			 dir, strerror(errno));
	close(p->lock_fd);
	p->lock_fd = -1;
	return err_;
}

int pins_add(struct pins *p, struct bpf_map *map, char *err, size_t errlen)
{
	char path[512];
	int ret;

	if (p->nr >= (int)(sizeof(p->maps) / sizeof(p->maps[0])))
		return -E2BIG;
	snprintf(path, sizeof(path), "%s/%s", p->dir, bpf_map__name(map));
	/*
	 * We hold the directory lock, so a pin already there was left by an
	 * earlier agent (--keep-pins, or a crash): replace it.
	 */
	unlink(path);
	ret = bpf_map__pin(map, path);
	if (ret) {
		snprintf(err, errlen, "cannot pin map at %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	p->maps[p->nr++] = map;
	return 0;
}

void pins_close(struct pins *p, bool keep)
{
	int i;

	if (!keep) {
		for (i = 0; i < p->nr; i++)
			bpf_map__unpin(p->maps[i], NULL);
		if (p->lock_fd >= 0)
			rmdir(p->dir);
	}
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	p->lock_fd = -1;
	p->nr = 0;
}

int pins_in_use(const char *dir)
{
	int fd, ret = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else if (errno == EWOULDBLOCK)
		ret = 1;
	else if (errno != ENOSYS)
		ret = -errno;
	close(fd);
	return ret;
}

int pins_open_readonly(const char *dir, const char *const *names, int *fds,
		       int nr, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	char path[512];
	int i, e;

	for (i = 0; i < nr; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fds[i] = bpf_obj_get_opts(path, &opts);
		if (fds[i] >= 0)
			continue;
		e = -errno;
		if (e == -ENOENT)
			snprintf(err, errlen,
				 "the agent running on %s has not pinned %s yet (KVM not loaded?): try again once it serves with maps pinned",
				 dir, names[i]);
		else
			snprintf(err, errlen, "cannot open pinned map %s: %s",
				 path, strerror(-e));
		while (i--)
			close(fds[i]);
		return e;
	}
	return 0;
}
