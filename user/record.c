// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The record of a run (docs/record.md), built with json-c: Debian's
 * libjson-c-dev escapes names and strings correctly, and compare.c reads
 * the same documents back with it.
 *
 * Counters are written as unsigned 64-bit integers (json-c keeps them
 * exact); they are the sums over CPUs the scrape publishes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include "record.h"

static void put_u64(json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static json_object *u64_array(const __u64 *v, int n)
{
	json_object *a = json_object_new_array_ext(n);
	int i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_uint64(v[i]));
	return a;
}

/* {"name0": v[0], "name1": v[1], ...} */
static json_object *named(const char *const *names, const __u64 *v, int n)
{
	json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < n; i++)
		put_u64(o, names[i], v[i]);
	return o;
}

/*
 * One family's values at vals as the record holds them: a number without
 * dims, {value: n} with one, {value0: {value1: n}} with two (dims[0]
 * outer, as the metric's labels and the struct's arrays go).
 */
static json_object *family_values(const struct family *f, const __u64 *vals)
{
	const struct family_dim *d0 = &f->dims[0], *d1 = &f->dims[1];
	json_object *o;
	int i;

	if (!d0->label)
		return json_object_new_uint64(vals[0]);
	if (!d1->label)
		return named(d0->values, vals, d0->nr);
	o = json_object_new_object();
	for (i = 0; i < d0->nr; i++)
		json_object_object_add(o, d0->values[i],
				       named(d1->values, vals + i * d1->nr,
					     d1->nr));
	return o;
}

/* {key: values} of every family of the table from src with a record key. */
static json_object *from_families(enum family_source src, const void *base)
{
	json_object *o = json_object_new_object();
	const struct family *f;
	size_t i;

	for (i = 0; i < nr_agent_families; i++) {
		f = &agent_families[i];
		if (f->src != src || !f->key)
			continue;
		json_object_object_add(o, f->key, family_values(f,
			(const __u64 *)((const char *)base + f->off)));
	}
	return o;
}

static json_object *kvm_of(const struct record_vm *v)
{
	json_object *o;
	int i;

	if (!v->has_kvm)
		return NULL;	/* JSON null: not read */
	o = json_object_new_object();
	put_u64(o, "vms", v->kvm.nr_vms);
	for (i = 0; i < KVM_STAT_NR; i++)
		put_u64(o, kvm_stat_descs[i].name, v->kvm.val[i]);
	return o;
}

static json_object *vms(const struct record *r)
{
	json_object *a = json_object_new_array_ext(r->nr_vms), *o;
	int i;

	for (i = 0; i < r->nr_vms; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "name",
				       json_object_new_string(r->vms[i].name));
		put_u64(o, "pid", r->vms[i].pid);
		json_object_object_add(o, "counters",
				       from_families(FROM_VM,
						     &r->vms[i].stats));
		json_object_object_add(o, "kvm", kvm_of(&r->vms[i]));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *hists(const struct hists *h)
{
	json_object *o = json_object_new_object(), *depth, *dur;
	int c;

	depth = json_object_new_object();
	for (c = 0; c < CTX_MAX; c++)
		json_object_object_add(depth, family_ctx_names[c],
				       u64_array(h->pvec_depth[c],
						 PVEC_BUCKETS));
	json_object_object_add(o, "pvec_depth", depth);
	json_object_object_add(o, "pvec_depth_sum",
			       named(family_ctx_names, h->pvec_depth_sum,
				     CTX_MAX));
	dur = json_object_new_object();
	json_object_object_add(dur, "slots",
			       u64_array(h->sync_duration, DURATION_SLOTS));
	put_u64(dur, "sum_ns", h->sync_duration_sum_ns);
	json_object_object_add(o, "sync_duration_ns", dur);
	return o;
}

static json_object *hooks(const struct agent_info *info)
{
	json_object *a = json_object_new_array(), *o;
	int i;

	for (i = 0; i < info->nr_probes; i++) {
		const struct probe_status *p = &info->probes[i];

		o = json_object_new_object();
		json_object_object_add(o, "probe",
				       json_object_new_string(p->probe));
		json_object_object_add(o, "mode",
				       json_object_new_string(p->mode));
		json_object_object_add(o, "attached",
				       json_object_new_boolean(p->attached));
		json_object_object_add(o, "reason",
				       json_object_new_string(p->reason));
		json_object_array_add(a, o);
	}
	return a;
}

/* How each clear site was counted; null where not known (no KVM yet). */
static json_object *clears_source(const struct agent_info *info)
{
	json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < SITE_MAX; i++)
		json_object_object_add(o, family_site_names[i],
			info->clears_source[i] ?
			json_object_new_string(info->clears_source[i]) : NULL);
	return o;
}

/* RFC 3339, UTC, to the millisecond. */
static json_object *utc(const struct timespec *t)
{
	char buf[48], ms[16];
	struct tm tm;

	gmtime_r(&t->tv_sec, &tm);
	strftime(buf, sizeof(buf) - sizeof(ms), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ms, sizeof(ms), ".%03dZ",
		 (int)(t->tv_nsec / 1000000 % 1000));
	strcat(buf, ms);
	return json_object_new_string(buf);
}

static json_object *document(const struct record *r)
{
	json_object *o = json_object_new_object(), *sub;
	char why[512];

	json_object_object_add(o, "schema",
			       json_object_new_string(RECORD_SCHEMA));
	json_object_object_add(o, "schema_version",
			       json_object_new_int(RECORD_SCHEMA_VERSION));
	sub = json_object_new_object();
	json_object_object_add(sub, "version",
			       json_object_new_string(r->info->version));
	json_object_object_add(o, "agent", sub);
	sub = json_object_new_object();
	json_object_object_add(sub, "release",
			       json_object_new_string(r->info->kernel_release));
	json_object_object_add(sub, "variant",
			       json_object_new_string(r->info->variant));
	json_object_object_add(o, "kernel", sub);
	json_object_object_add(o, "hooks", hooks(r->info));
	json_object_object_add(o, "clears_source", clears_source(r->info));
	sub = json_object_new_object();
	json_object_object_add(sub, "start", utc(&r->start));
	json_object_object_add(sub, "end", utc(&r->end));
	json_object_object_add(sub, "duration_seconds",
			       json_object_new_double(r->duration_s));
	json_object_object_add(o, "time", sub);
	sub = json_object_new_object();
	json_object_object_add(sub, "source", json_object_new_string(
		r->kvm_stats_root ? r->kvm_stats_root : KVM_STATS_ROOT));
	if (r->kvm_stats_err) {
		struct kvm_stats_src src = { .root = r->kvm_stats_root ?
					     r->kvm_stats_root : KVM_STATS_ROOT };

		json_object_object_add(sub, "error", json_object_new_string(
			kvm_stats_strerror(&src, r->kvm_stats_err, why,
					   sizeof(why))));
	} else {
		json_object_object_add(sub, "error", NULL);
	}
	json_object_object_add(o, "kvm_stats", sub);
	if (r->maps) {
		sub = json_object_new_object();
		json_object_object_add(sub, "source",
				       json_object_new_string(r->maps));
		json_object_object_add(sub, "pin_dir", r->pin_dir ?
				       json_object_new_string(r->pin_dir) : NULL);
		json_object_object_add(o, "maps", sub);
	}
	json_object_object_add(o, "vms", vms(r));
	json_object_object_add(o, "hists", hists(&r->hists));
	json_object_object_add(o, "self", from_families(FROM_SELF, &r->self));
	return o;
}

/* All of text to fd; 0 or -errno. */
static int write_all(int fd, const char *text, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		text += n;
		len -= n;
	}
	return 0;
}

/* The temporary file beside path: its name in *tmp, its fd, or -errno. */
static int make_beside(const char *path, char **tmp)
{
	int fd;

	if (asprintf(tmp, "%s.tmpXXXXXX", path) < 0) {
		*tmp = NULL;
		return -ENOMEM;
	}
	fd = mkstemp(*tmp);
	return fd < 0 ? -errno : fd;
}

/*
 * A new or regular file is replaced: can a file be made beside it (and
 * so renamed over it)?  Made and removed at once, so that nothing is left
 * if the run is killed.
 */
static int check_beside(struct record_target *t, char *err, size_t errlen)
{
	char *tmp;
	int fd = make_beside(t->path, &tmp);

	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	} else {
		snprintf(err, errlen, "--record: cannot write %s: no new file can be made in its directory: %s",
			 t->path, strerror(-fd));
	}
	free(tmp);
	return fd < 0 ? fd : 0;
}

/* Why a target that is not a regular file could not be opened. */
static int through_error(struct record_target *t, int e, char *err,
			 size_t errlen)
{
	if (e == -EISDIR)
		snprintf(err, errlen, "--record: %s is a directory: give a file's name",
			 t->path);
	else
		snprintf(err, errlen, "--record: %s is not a regular file, so it is written through, not replaced, and it cannot be opened for writing: %s",
			 t->path, e == -ENXIO ?
			 "no process reads that FIFO (or it is a socket)" :
			 strerror(-e));
	return e;
}

/*
 * /dev/stdout of a shell's "> file" is a regular file through a symlink:
 * the agent's own stdout (or stderr), where the record goes on after what
 * it already printed there.  Else the file opened is cut and written.
 */
static void through_regular(struct record_target *t, const struct stat *st)
{
	struct stat std;
	int i, fd;

	for (i = STDOUT_FILENO; i <= STDERR_FILENO; i++) {
		if (fstat(i, &std) || std.st_dev != st->st_dev ||
		    std.st_ino != st->st_ino)
			continue;
		fd = fcntl(i, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0) {
			close(t->fd);
			t->fd = fd;
			return;
		}
	}
	t->cut = true;
}

/*
 * Anything but a regular file (a device, a FIFO, a symlink) is never
 * replaced: it is opened now, as it is (no O_CREAT, no O_TRUNC; O_NONBLOCK
 * so that a FIFO without a reader fails now instead of hanging), and
 * written through at the end.  A block device is refused: a record
 * written over a disk is never what was meant.
 */
static int open_through(struct record_target *t, char *err, size_t errlen)
{
	struct stat st;
	int fl;

	t->fd = open(t->path, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (t->fd < 0)
		return through_error(t, -errno, err, errlen);
	if (fstat(t->fd, &st) || (fl = fcntl(t->fd, F_GETFL)) < 0 ||
	    fcntl(t->fd, F_SETFL, fl & ~O_NONBLOCK))
		return through_error(t, -errno, err, errlen);
	if (S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "--record: %s is a block device: a record would overwrite it; give a file's name",
			 t->path);
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode))
		through_regular(t, &st);
	return 0;
}

int record_target_open(struct record_target *t, const char *path,
		       char *err, size_t errlen)
{
	struct stat st;
	int e;

	*t = (struct record_target){ .path = path, .fd = -1 };
	if (errlen)
		err[0] = '\0';
	/* lstat: a symlink is written through, never renamed over */
	if (lstat(path, &st) == 0)
		e = S_ISREG(st.st_mode) ? check_beside(t, err, errlen) :
					   open_through(t, err, errlen);
	else if (errno == ENOENT)
		e = check_beside(t, err, errlen);
	else
		e = -errno;
	if (e && !err[0])
		snprintf(err, errlen, "--record: cannot write %s: %s", path,
			 strerror(-e));
	if (e)
		record_target_close(t);
	return e;
}

bool record_target_through(const struct record_target *t)
{
	return t->fd >= 0;
}

void record_target_close(struct record_target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* A temporary file beside path, fsync, rename over it. */
static int write_replace(const char *path, const char *text, size_t len)
{
	char *tmp;
	int fd, ret;

	fd = make_beside(path, &tmp);
	if (fd < 0) {
		free(tmp);
		return fd;
	}
	ret = write_all(fd, text, len) ?: write_all(fd, "\n", 1);
	if (!ret && fsync(fd))
		ret = -errno;
	/* mkstemp makes 0600; a record is no secret */
	if (!ret && fchmod(fd, 0644))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}

static int write_through(struct record_target *t, const char *text, size_t len)
{
	if (t->cut && ftruncate(t->fd, 0))
		return -errno;
	return write_all(t->fd, text, len) ?: write_all(t->fd, "\n", 1);
}

int record_target_write(struct record_target *t, const struct record *r,
			char *err, size_t errlen)
{
	json_object *doc = document(r);
	const char *text;
	int ret;

	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		ret = -ENOMEM;
	else if (t->fd >= 0)
		ret = write_through(t, text, strlen(text));
	else
		ret = write_replace(t->path, text, strlen(text));
	if (ret)
		snprintf(err, errlen, "--record: cannot write %s: %s", t->path,
			 strerror(-ret));
	json_object_put(doc);
	return ret;
}

int record_write(const char *path, const struct record *r,
		 char *err, size_t errlen)
{
	struct record_target t;
	int ret;

	ret = record_target_open(&t, path, err, errlen);
	if (!ret)
		ret = record_target_write(&t, r, err, errlen);
	record_target_close(&t);
	return ret;
}
