// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* VM names from QEMU command lines, and /proc readers (see vm_names.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* POSIX calls (open, strdup) under -std=c11 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "vm_names.h"

/* Bounded output: keeps at most size - 1 bytes and a NUL. */
struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void out_put(struct out *o, char c)
{
	if (o->buf && o->len + 1 < o->size)
		o->buf[o->len++] = c;
}

static void out_end(struct out *o)
{
	if (o->buf && o->size)
		o->buf[o->len] = '\0';
}

/*
 * One QemuOpts value from p, stopping at a single ',' (",," is a literal
 * comma) or at end.  Returns where it stopped.
 */
static const char *opt_value(const char *p, const char *end, struct out *o)
{
	while (p < end) {
		if (*p == ',') {
			if (end - p < 2 || p[1] != ',')
				break;
			p++;	/* ",," -> ',' */
		}
		out_put(o, *p++);
	}
	out_end(o);
	return p;
}

/*
 * The guest= value of one -name argument, QemuOpts style: elements split
 * by ','; an element without '=' is the implied "guest" only when it comes
 * first, later it is a boolean flag.  Returns true if guest was set.
 */
static bool qemu_opts_guest(const char *s, size_t n, char *name, size_t size)
{
	const char *p = s, *end = s + n;
	struct out o = { name, size, 0 };
	struct out skip = { NULL, 0, 0 };
	bool first = true, found = false;
	size_t klen;

	while (p < end) {
		for (klen = 0; p + klen < end; klen++)
			if (p[klen] == '=' || p[klen] == ',')
				break;
		if (p + klen == end || p[klen] == ',') {
			if (first) {
				o.len = 0;
				p = opt_value(p, end, &o);
				found = true;
			} else {
				p += klen;	/* flag: "foo" means foo=on */
			}
		} else if (klen == 5 && !memcmp(p, "guest", 5)) {
			o.len = 0;
			p = opt_value(p + klen + 1, end, &o);
			found = true;
		} else {
			p = opt_value(p + klen + 1, end, &skip);
		}
		first = false;
		if (p < end)
			p++;	/* the ',' that ended the element */
	}
	return found;
}

static bool is_name_option(const char *arg, size_t len)
{
	/* QEMU treats "--foo" as "-foo", and never splits on '=' */
	return (len == 5 && !memcmp(arg, "-name", 5)) ||
	       (len == 6 && !memcmp(arg, "--name", 6));
}

/* Next argument of a NUL-separated argv: sets *len, returns its end. */
static const char *next_arg(const char *p, const char *end, size_t *len)
{
	const char *nul = memchr(p, '\0', (size_t)(end - p));

	*len = (size_t)((nul ? nul : end) - p);
	return nul ? nul + 1 : end;
}

size_t vm_name_from_cmdline(const char *argv, size_t len, char *name,
			    size_t size)
{
	const char *p = argv, *end = argv + len, *arg;
	char tmp[VM_NAME_MAX];
	bool found = false;
	size_t alen;

	if (!name || !size)
		return 0;
	name[0] = '\0';
	if (!argv || !len)
		return 0;
	p = next_arg(p, end, &alen);	/* argv[0] is the program */
	while (p < end) {
		arg = p;
		p = next_arg(p, end, &alen);
		if (!is_name_option(arg, alen) || p >= end)
			continue;
		arg = p;
		p = next_arg(p, end, &alen);
		if (qemu_opts_guest(arg, alen, tmp, sizeof(tmp))) {
			snprintf(name, size, "%s", tmp);
			found = true;
		}
	}
	return found ? strlen(name) : 0;
}

size_t vm_name_from_comm(const char *buf, size_t len, char *name,
			 size_t size)
{
	struct out o = { name, size, 0 };
	size_t i;

	if (!name || !size)
		return 0;
	for (i = 0; buf && i < len && buf[i] != '\n' && buf[i] != '\0'; i++)
		out_put(&o, buf[i]);
	out_end(&o);
	return o.len;
}

enum vm_name_source vm_name_from_kernel(const struct vm_name *kn, char *name,
					size_t size)
{
	size_t n = strnlen(kn->name_opt, sizeof(kn->name_opt));
	char tmp[VM_NAME_MAX];

	if (!name || !size)
		return VM_NAME_UNKNOWN;
	name[0] = '\0';
	if (n && qemu_opts_guest(kn->name_opt, n, tmp, sizeof(tmp)) && tmp[0]) {
		snprintf(name, size, "%s", tmp);
		return VM_NAME_QEMU;
	}
	if (vm_name_from_comm(kn->comm, strnlen(kn->comm, sizeof(kn->comm)),
			      name, size))
		return VM_NAME_COMM;
	return VM_NAME_UNKNOWN;
}

/*
 * Read up to max bytes of a /proc file into a NUL-terminated heap buffer.
 * Returns the byte count or -errno; ESRCH (the task died after open) is
 * reported as ENOENT, like a missing file.
 */
static long read_proc_file(const char *path, size_t max, char **out)
{
	size_t len = 0, cap = 0, want;
	char *buf = NULL, *p;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	while (len < max) {
		if (len + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			p = realloc(buf, cap);
			if (!p) {
				err = -ENOMEM;
				break;
			}
			buf = p;
		}
		want = cap - 1 - len;
		if (want > max - len)
			want = max - len;
		n = read(fd, buf + len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno == ESRCH ? -ENOENT : -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!err && !buf && !(buf = malloc(1)))
		err = -ENOMEM;
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	return (long)len;
}

static long read_pid_file(const char *proc_root, __u32 pid, const char *file,
			  size_t max, char **out)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/%u/%s", proc_root, pid, file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return read_proc_file(path, max, out);
}

enum vm_name_source vm_name_read(const char *proc_root, __u32 pid,
				 char *name, size_t size)
{
	char *buf;
	long n;
	size_t got;

	if (!name || !size)
		return VM_NAME_UNKNOWN;
	n = read_pid_file(proc_root, pid, "cmdline", VM_CMDLINE_MAX, &buf);
	if (n >= 0) {
		got = vm_name_from_cmdline(buf, (size_t)n, name, size);
		free(buf);
		if (got)
			return VM_NAME_QEMU;
	}
	n = read_pid_file(proc_root, pid, "comm", 64, &buf);
	if (n >= 0) {
		got = vm_name_from_comm(buf, (size_t)n, name, size);
		free(buf);
		if (got)
			return VM_NAME_COMM;
	}
	snprintf(name, size, "unknown");
	return VM_NAME_UNKNOWN;
}

int proc_parse_starttime(const char *buf, size_t len,
			 unsigned long long *start)
{
	const char *p = NULL, *end = buf + len;
	unsigned long long v = 0;
	size_t i;
	int field;

	/* comm may hold ')' and spaces: the fields start after the last ')' */
	for (i = len; i > 0; i--) {
		if (buf[i - 1] == ')') {
			p = buf + i;
			break;
		}
	}
	if (!p)
		return -EINVAL;
	/* after ')': " state ppid ..." -- starttime is field 22, state is 3 */
	for (field = 2; field < 22; field++) {
		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		if (field + 1 < 22)
			while (p < end && *p != ' ')
				p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return -EINVAL;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - (unsigned)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*start = v;
	return 0;
}

int proc_pid_starttime(const char *proc_root, __u32 pid,
		       unsigned long long *start)
{
	char *buf;
	long n;
	int err;

	n = read_pid_file(proc_root, pid, "stat", 4096, &buf);
	if (n < 0)
		return (int)n;
	err = proc_parse_starttime(buf, (size_t)n, start);
	free(buf);
	return err;
}
