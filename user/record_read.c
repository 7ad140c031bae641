// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A record read back and checked (record_read.h).  json-c, as record.c
 * writes it: its tokener tells a truncated document (json_tokener_continue
 * at the end of the input) from one that is not JSON at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_CLOEXEC, isfinite() under -std=c11 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
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

/*
 * A count json-c could not hold: an integer literal of 2^64 or more, made
 * a double by mark_big() so that it is not read as 2^64 - 1.
 */
static bool too_big(json_object *v)
{
	return json_object_is_type(v, json_type_double) &&
	       json_object_get_double(v) >= 18446744073709551616.0;
}

static bool get_u64(struct record_doc *r, json_object *o, const char *path,
		    const char *key, __u64 *val)
{
	const char *dot = *path ? "." : "";
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) && too_big(v))
		return fail(r, "field %s%s%s is 2^64 or more: a count is an unsigned 64-bit integer",
			    path, dot, key);
	if (!(v = need(r, o, path, key, json_type_int)))
		return false;
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
		return fail(r, "field %s%s%s is negative", path, dot, key);
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
		if (too_big(e))
			return fail(r, "field %s.%s[%d] is 2^64 or more: a count is an unsigned 64-bit integer",
				    path, key, i);
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

/* d[i] += s[i] for n counts; false if one passes 2^64 - 1. */
static bool add_counts(__u64 *d, const __u64 *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (__builtin_add_overflow(d[i], s[i], &d[i]))
			return false;
	return true;
}

/*
 * compare totals VMs (those of one name, and all of them): counts that
 * sum past 2^64 - 1 would wrap to a false figure.  When the sums of all
 * the VMs fit, those of any of them do.
 */
static bool sums_fit(struct record_doc *r)
{
	struct record_doc_vm sum = { 0 };
	const struct record_doc_vm *v;
	int i;

	for (i = 0; i < r->nr_vms; i++) {
		v = &r->vms[i];
		if (!add_counts((__u64 *)&sum.st, (const __u64 *)&v->st,
				sizeof(v->st) / sizeof(__u64)) ||
		    !add_counts(&sum.kvm_vms, &v->kvm_vms, 1) ||
		    !add_counts(sum.kvm, v->kvm, KVM_STAT_NR))
			return fail(r, "vms[%d]: its counts and those of the VMs before it sum to 2^64 or more: too big to total",
				    i);
	}
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

/* What a document that is not an object is, for the error. */
static const char *what_json(json_object *d)
{
	switch (json_object_get_type(d)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return json_object_get_boolean(d) ? "true" : "false";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_string:
		return "a string";
	case json_type_array:
		return "an array";
	default:
		return "something else";
	}
}

static bool get_doc(struct record_doc *r, json_object *d)
{
	json_object *o, *h, *dur, *vms;
	char schema[64];
	__u64 ver;
	int i;

	if (!json_object_is_type(d, json_type_object))
		return fail(r, "not a record (the document is %s, not a JSON object)",
			    what_json(d));
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
	if (!isfinite(r->duration) || r->duration < 0)
		return fail(r, "field time.duration_seconds is %g: want a number of seconds, 0 or more",
			    r->duration);
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
	return sums_fit(r);
}

static const char *file_kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO" :
	       S_ISSOCK(m) ? "a socket" : "not a file";
}

/*
 * The whole of path into *text (NUL-terminated), bounded: a record is a
 * regular file of at most RECORD_READ_MAX bytes, so that /dev/zero, a FIFO
 * or a huge file is one line at once, not memory or time without end.
 * O_NONBLOCK: opening a FIFO does not wait for a writer.  Read to one
 * byte past its size: a file that grows meanwhile is not taken cut.
 */
static bool read_text(struct record_doc *r, const char *path, char **text,
		      size_t *len)
{
	struct stat st;
	size_t max = 0;
	ssize_t n;
	int fd;

	*text = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fail(r, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st)) {
		fail(r, "cannot read: %s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		fail(r, "%s, not a regular file: not a record",
		     file_kind(st.st_mode));
	} else if (st.st_size > RECORD_READ_MAX) {
		fail(r, "%lld bytes, more than a record can be (%d MiB): not a record",
		     (long long)st.st_size, RECORD_READ_MAX >> 20);
	} else if (!(*text = malloc((max = st.st_size) + 2))) {
		fail(r, "out of memory");
	}
	while (*text && !r->err[0] && *len <= max) {
		n = read(fd, *text + *len, max + 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail(r, "cannot read: %s", strerror(errno));
		if (n <= 0)
			break;
		*len += n;
	}
	close(fd);
	if (!r->err[0] && *len > max)
		fail(r, "cannot read: the file grew while it was read");
	if (r->err[0]) {
		free(*text);
		*text = NULL;
		return false;
	}
	(*text)[*len] = '\0';
	return true;
}

/* Digits d[0..n) (no sign) past 2^64 - 1, what json-c would clamp. */
static bool past_u64(const char *d, size_t n)
{
	while (n > 1 && *d == '0') {
		d++;
		n--;
	}
	return n > 20 || (n == 20 && memcmp(d, "18446744073709551615", 20) > 0);
}

/* Past the string that starts at text[i] (a quote), escapes skipped. */
static size_t string_end(const char *text, size_t len, size_t i)
{
	for (i++; i < len && text[i] != '"'; i++)
		if (text[i] == '\\')
			i++;
	return i < len ? i + 1 : len;
}

/* Past the number at text[i]; *plain: digits only (an integer). */
static size_t number_end(const char *text, size_t len, size_t i, bool *plain)
{
	for (*plain = true; i < len && text[i] &&
	     strchr("0123456789.eE+-", text[i]); i++)
		*plain &= text[i] >= '0' && text[i] <= '9';
	return i;
}

/*
 * json-c reads an integer literal of 2^64 or more as 2^64 - 1, a count a
 * record can hold.  Count such literals (outside strings); with out, copy
 * text there with ".0" after each, a double that get_u64() then names as
 * too big instead of reading a false count.  (-N is read as negative
 * anyway, and refused.)
 */
static size_t mark_big(const char *text, size_t len, char *out)
{
	size_t i = 0, s, nr = 0;
	bool big, plain;

	while (i < len) {
		s = i;
		big = false;
		if (text[i] == '"') {
			i = string_end(text, len, i);
		} else if (text[i] >= '0' && text[i] <= '9') {
			i = number_end(text, len, i, &plain);
			big = plain && (!s || text[s - 1] != '-') &&
			      past_u64(text + s, i - s);
		} else {
			i++;
		}
		if (out)
			memcpy(out + s + 2 * nr, text + s, i - s);
		if (big && out)
			memcpy(out + i + 2 * nr, ".0", 2);
		nr += big;
	}
	if (out)
		out[len + 2 * nr] = '\0';
	return nr;
}

/*
 * Parse text: the document, or NULL with the problem recorded.  A JSON
 * null is a document too (*null set).  json-c cannot tell whether a number
 * at the very end goes on: the NUL after the text tells it the input ends.
 */
static json_object *parse(struct record_doc *r, const char *text, size_t len,
			  bool *null)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error jerr;
	json_object *doc;
	size_t end;

	*null = false;
	if (!tok) {
		fail(r, "out of memory");
		return NULL;
	}
	doc = json_tokener_parse_ex(tok, text, len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!doc && jerr == json_tokener_continue) {
		doc = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (jerr != json_tokener_success)
			jerr = json_tokener_continue;
	}
	if (!doc && jerr == json_tokener_continue && strspn(text, " \t\r\n") == len)
		fail(r, "blank file (white space only): not a record");
	else if (!doc && jerr == json_tokener_continue)
		fail(r, "truncated: the JSON ends after %zu bytes, before the document does", len);
	else if (!doc && jerr != json_tokener_success)
		fail(r, "not JSON: %s at byte %zu", json_tokener_error_desc(jerr),
		     end);
	else if (end < len && strspn(text + end, " \t\r\n") != len - end)
		fail(r, "not JSON: text after the document at byte %zu", end);
	else
		*null = !doc;
	if (r->err[0]) {
		json_object_put(doc);
		doc = NULL;
	}
	json_tokener_free(tok);
	return doc;
}

bool record_read(struct record_doc *r, const char *path)
{
	json_object *doc = NULL;
	char *text, *marked = NULL;
	size_t len, nr;
	bool null;

	r->path = path;
	if (!read_text(r, path, &text, &len))
		return false;
	if (!len) {
		free(text);
		return fail(r, "empty file: not a record");
	}
	doc = parse(r, text, len, &null);
	/* parsed again with big numbers marked: errors name bytes of the file */
	nr = doc ? mark_big(text, len, NULL) : 0;
	if (nr) {
		json_object_put(doc);
		doc = NULL;
		marked = malloc(len + 2 * nr + 1);
		if (!marked)
			fail(r, "out of memory");
		else
			mark_big(text, len, marked);
		if (marked)
			doc = parse(r, marked, len + 2 * nr, &null);
	}
	if (doc || null)
		get_doc(r, doc);
	json_object_put(doc);
	free(marked);
	free(text);
	return !r->err[0];
}


void record_doc_free(struct record_doc *r)
{
	free(r->vms);
	r->vms = NULL;
	r->nr_vms = 0;
}
