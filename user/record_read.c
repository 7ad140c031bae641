// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A record read back and checked (record_read.h).  json-c, as record.c
 * writes it: its tokener tells a truncated document (json_tokener_continue
 * at the end of the input) from one that is not JSON at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* open_memstream */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "record.h"
#include "record_read.h"

static bool fail(struct record_doc *r, const char *fmt, ...)
{
	va_list ap;

	if (r->err[0])
		return false;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return false;
}

/* o[key] of type t, or NULL with "missing field PATH.KEY" recorded. */
static json_object *need(struct record_doc *r, json_object *o, const char *path,
			 const char *key, json_type t)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v) {
		fail(r, "missing field %s%s%s", path, *path ? "." : "", key);
		return NULL;
	}
	if (!json_object_is_type(v, t) &&
	    !(t == json_type_double && json_object_is_type(v, json_type_int))) {
		fail(r, "field %s%s%s is not a %s", path, *path ? "." : "", key,
		     json_type_to_name(t));
		return NULL;
	}
	return v;
}

static bool get_u64(struct record_doc *r, json_object *o, const char *path,
		    const char *key, __u64 *val)
{
	json_object *v = need(r, o, path, key, json_type_int);

	if (!v)
		return false;
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
		return fail(r, "field %s.%s is negative", path, key);
	*val = json_object_get_uint64(v);
	return true;
}

/*
 * A string field, its control characters (a newline, an escape) shown as
 * '?': compare prints these strings in its report and in its one-line
 * errors, and a file is anybody's input.
 */
static bool get_str(struct record_doc *r, json_object *o, const char *path,
		    const char *key, char *buf, size_t len)
{
	json_object *v = need(r, o, path, key, json_type_string);
	char *c;

	if (!v)
		return false;
	snprintf(buf, len, "%s", json_object_get_string(v));
	for (c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return true;
}

/* {"names[0]": u64, ...} at o[key] */
static bool get_named(struct record_doc *r, json_object *o, const char *path,
		      const char *key, const char *const *names, int n,
		      __u64 *out)
{
	json_object *v = need(r, o, path, key, json_type_object);
	char sub[160];
	int i;

	if (!v)
		return false;
	snprintf(sub, sizeof(sub), "%s.%s", path, key);
	for (i = 0; i < n; i++)
		if (!get_u64(r, v, sub, names[i], &out[i]))
			return false;
	return true;
}

/* exactly n u64s at o[key] */
static bool get_array(struct record_doc *r, json_object *o, const char *path,
		      const char *key, int n, __u64 *out)
{
	json_object *v = need(r, o, path, key, json_type_array), *e;
	int i;

	if (!v)
		return false;
	if ((int)json_object_array_length(v) != n)
		return fail(r, "field %s.%s has %zu entries, want %d", path, key,
			    json_object_array_length(v), n);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_int) ||
		    (json_object_get_int64(e) < 0 &&
		     json_object_get_uint64(e) == 0))
			return fail(r, "field %s.%s[%d] is not a count", path,
				    key, i);
		out[i] = json_object_get_uint64(e);
	}
	return true;
}

/*
 * One family's values into vals, the inverse of record.c's family_values():
 * a number without dims, {value: n} with one, {value0: {value1: n}} with
 * two.  The table says what each key holds, so a figure added to it is
 * read back without an edit here.
 */
static bool get_family(struct record_doc *r, json_object *o, const char *path,
		       const struct family *f, __u64 *vals)
{
	const struct family_dim *d0 = &f->dims[0], *d1 = &f->dims[1];
	char sub[160];
	json_object *v;
	int i;

	if (!d0->label)
		return get_u64(r, o, path, f->key, vals);
	if (!d1->label)
		return get_named(r, o, path, f->key, d0->values, d0->nr, vals);
	if (!(v = need(r, o, path, f->key, json_type_object)))
		return false;
	snprintf(sub, sizeof(sub), "%s.%s", path, f->key);
	for (i = 0; i < d0->nr; i++)
		if (!get_named(r, v, sub, d0->values[i], d1->values, d1->nr,
			       vals + i * d1->nr))
			return false;
	return true;
}

/* Every family of the table from src with a record key, into base. */
static bool get_families(struct record_doc *r, json_object *o, const char *path,
			 enum family_source src, void *base)
{
	const struct family *f;
	size_t i;

	for (i = 0; i < nr_agent_families; i++) {
		f = &agent_families[i];
		if (f->src == src && f->key &&
		    !get_family(r, o, path, f,
				(__u64 *)((char *)base + f->off)))
			return false;
	}
	return true;
}

static bool get_vm(struct record_doc *r, json_object *o, int i, struct record_doc_vm *v)
{
	json_object *c, *k;
	char path[48], sub[64];
	int s;

	snprintf(path, sizeof(path), "vms[%d]", i);
	if (!json_object_is_type(o, json_type_object))
		return fail(r, "field %s is not an object", path);
	if (!get_str(r, o, path, "name", v->name, sizeof(v->name)))
		return false;
	c = need(r, o, path, "counters", json_type_object);
	snprintf(sub, sizeof(sub), "%s.counters", path);
	if (!c || !get_families(r, c, sub, FROM_VM, &v->st))
		return false;
	if (!json_object_object_get_ex(o, "kvm", &k))
		return fail(r, "missing field %s.kvm", path);
	if (!k)
		return true;	/* null: KVM's stats were not read */
	if (!json_object_is_type(k, json_type_object))
		return fail(r, "field %s.kvm is not an object", path);
	snprintf(sub, sizeof(sub), "%s.kvm", path);
	if (!get_u64(r, k, sub, "vms", &v->kvm_vms))
		return false;
	for (s = 0; s < KVM_STAT_NR; s++)
		if (!get_u64(r, k, sub, kvm_stat_descs[s].name, &v->kvm[s]))
			return false;
	v->has_kvm = true;
	return true;
}

/* hooks[]: probe=mode, or probe=none when it did not attach */
static bool get_hooks(struct record_doc *r, json_object *d)
{
	json_object *a = need(r, d, "", "hooks", json_type_array), *h, *v;
	char path[32], probe[64], mode[16];
	size_t i, off = 0;

	if (!a)
		return false;
	for (i = 0; i < json_object_array_length(a); i++) {
		h = json_object_array_get_idx(a, i);
		snprintf(path, sizeof(path), "hooks[%zu]", i);
		if (!json_object_is_type(h, json_type_object))
			return fail(r, "field %s is not an object", path);
		if (!get_str(r, h, path, "probe", probe, sizeof(probe)) ||
		    !get_str(r, h, path, "mode", mode, sizeof(mode)) ||
		    !(v = need(r, h, path, "attached", json_type_boolean)))
			return false;
		if (off < sizeof(r->hooks))
			off += snprintf(r->hooks + off, sizeof(r->hooks) - off,
					"%s%s=%s", off ? " " : "", probe,
					json_object_get_boolean(v) ? mode : "none");
	}
	return true;
}

static bool get_doc(struct record_doc *r, json_object *d)
{
	json_object *o, *h, *dur, *vms;
	char schema[64];
	__u64 ver;
	int i;

	if (!json_object_is_type(d, json_type_object))
		return fail(r, "not a record (the document is not a JSON object)");
	if (!get_str(r, d, "", "schema", schema, sizeof(schema)))
		return false;
	if (strcmp(schema, RECORD_SCHEMA))
		return fail(r, "not a record (schema \"%s\", want \"%s\")",
			    schema, RECORD_SCHEMA);
	if (!get_u64(r, d, "", "schema_version", &ver))
		return false;
	if (ver != RECORD_SCHEMA_VERSION)
		return fail(r, "schema version %llu, this compare reads version %d: use the agent that wrote it",
			    (unsigned long long)ver, RECORD_SCHEMA_VERSION);
	if (!(o = need(r, d, "", "agent", json_type_object)) ||
	    !get_str(r, o, "agent", "version", r->version, sizeof(r->version)) ||
	    !(o = need(r, d, "", "kernel", json_type_object)) ||
	    !get_str(r, o, "kernel", "release", r->release, sizeof(r->release)) ||
	    !get_str(r, o, "kernel", "variant", r->variant, sizeof(r->variant)) ||
	    !(o = need(r, d, "", "time", json_type_object)) ||
	    !(dur = need(r, o, "time", "duration_seconds", json_type_double)))
		return false;
	r->duration = json_object_get_double(dur);
	if (!get_hooks(r, d))
		return false;
	if (!(o = need(r, d, "", "self", json_type_object)) ||
	    !get_families(r, o, "self", FROM_SELF, &r->self))
		return false;
	if (!(h = need(r, d, "", "hists", json_type_object)) ||
	    !get_named(r, h, "hists", "pvec_depth_sum", family_ctx_names,
		       CTX_MAX, r->h.pvec_depth_sum) ||
	    !(o = need(r, h, "hists", "pvec_depth", json_type_object)) ||
	    !get_array(r, o, "hists.pvec_depth", "sync", PVEC_BUCKETS,
		       r->h.pvec_depth[CTX_SYNC]) ||
	    !get_array(r, o, "hists.pvec_depth", "zap", PVEC_BUCKETS,
		       r->h.pvec_depth[CTX_ZAP]) ||
	    !(o = need(r, h, "hists", "sync_duration_ns", json_type_object)) ||
	    !get_array(r, o, "hists.sync_duration_ns", "slots", DURATION_SLOTS,
		       r->h.sync_duration) ||
	    !get_u64(r, o, "hists.sync_duration_ns", "sum_ns",
		     &r->h.sync_duration_sum_ns))
		return false;
	if (!(vms = need(r, d, "", "vms", json_type_array)))
		return false;
	r->nr_vms = json_object_array_length(vms);
	r->vms = calloc(r->nr_vms ? r->nr_vms : 1, sizeof(*r->vms));
	if (!r->vms)
		return fail(r, "out of memory");
	for (i = 0; i < r->nr_vms; i++)
		if (!get_vm(r, json_object_array_get_idx(vms, i), i,
			    &r->vms[i]))
			return false;
	return true;
}

bool record_read(struct record_doc *r, const char *path)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *doc = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f, *m;
	bool ok;

	r->path = path;
	f = fopen(path, "re");
	if (!f)
		return fail(r, "cannot open: %s", strerror(errno));
	m = open_memstream(&text, &len);
	if (m) {
		char buf[65536];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	}
	ok = !ferror(f);
	fclose(f);
	if (!m || !ok) {
		free(text);
		return fail(r, "cannot read: %s", strerror(errno));
	}
	if (!len) {
		free(text);
		return fail(r, "empty file: not a record");
	}
	tok = json_tokener_new();
	if (!tok) {
		free(text);
		return fail(r, "out of memory");
	}
	doc = json_tokener_parse_ex(tok, text, len);
	jerr = json_tokener_get_error(tok);
	if (!doc && jerr == json_tokener_continue)
		fail(r, "truncated: the JSON ends after %zu bytes, before the document does", len);
	else if (!doc)
		fail(r, "not JSON: %s at byte %zu", json_tokener_error_desc(jerr),
		     json_tokener_get_parse_end(tok));
	else if (json_tokener_get_parse_end(tok) < len &&
		 strspn(text + json_tokener_get_parse_end(tok), " \t\r\n") !=
		 len - json_tokener_get_parse_end(tok))
		fail(r, "not JSON: text after the document at byte %zu",
		     json_tokener_get_parse_end(tok));
	else
		get_doc(r, doc);
	json_object_put(doc);
	json_tokener_free(tok);
	free(text);
	return !r->err[0];
}


void record_doc_free(struct record_doc *r)
{
	free(r->vms);
	r->vms = NULL;
	r->nr_vms = 0;
}
