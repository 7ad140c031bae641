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

int record_write(const char *path, const struct record *r,
		 char *err, size_t errlen)
{
	json_object *doc = document(r);
	const char *text;
	char *tmp = NULL;
	size_t len, off = 0;
	ssize_t n;
	int fd, ret = 0;

	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		snprintf(err, errlen, "--record: out of memory");
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "--record: cannot create a file beside %s: %s",
			 path, strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		off += n;
	}
	if (!ret && (write(fd, "\n", 1) != 1 || fsync(fd)))
		ret = -errno ? -errno : -EIO;
	/* mkstemp makes 0600; a record is no secret */
	if (!ret && fchmod(fd, 0644))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "--record: cannot write %s: %s", path,
			 strerror(-ret));
		unlink(tmp);
	}
out:
	free(tmp);
	json_object_put(doc);
	return ret;
}
