// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Per-thread capability drop on libcap (see caps.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/capability.h>
#include "caps.h"

#define MASK_BITS	64

static int nr_caps(void)
{
	/* what the running kernel knows, never more than the mask holds */
	int n = (int)cap_max_bits();

	return n > 0 && n <= MASK_BITS ? n : CAP_LAST_CAP + 1;
}

int caps_parse_list(const char *s, caps_mask *out, char *err, size_t errlen)
{
	char name[64];
	const char *p = s, *comma;
	cap_value_t v;
	size_t len, i;

	*out = 0;
	if (!s || !*s)
		return 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len >= sizeof(name)) {
			snprintf(err, errlen,
				 "--capabilities.keep: '%s' is not a comma-separated list of capability names such as CAP_BPF",
				 s);
			return -EINVAL;
		}
		for (i = 0; i < len; i++)
			name[i] = (char)tolower((unsigned char)p[i]);
		name[len] = '\0';
		/* names only: libcap would also take a bare number */
		if (strncmp(name, "cap_", 4) ||
		    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len ||
		    cap_from_name(name, &v) ||
		    v < 0 || v >= MASK_BITS) {
			snprintf(err, errlen,
				 "--capabilities.keep: unknown capability '%.*s' (see capabilities(7): CAP_NET_RAW, ...)",
				 (int)len, p);
			return -EINVAL;
		}
		*out |= (caps_mask)1 << v;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

void caps_format(caps_mask m, char *out, size_t outlen)
{
	size_t n = 0;
	char *name;
	int v, i;

	if (!outlen)
		return;
	out[0] = '\0';
	if (!m) {
		snprintf(out, outlen, "none");
		return;
	}
	for (v = 0; v < MASK_BITS; v++) {
		if (!(m & ((caps_mask)1 << v)))
			continue;
		name = cap_to_name(v);
		if (n < outlen)
			n += snprintf(out + n, outlen - n, "%s", n ? "," : "");
		for (i = 0; name && name[i] && n + 1 < outlen; i++)
			out[n++] = (char)toupper((unsigned char)name[i]);
		if (n < outlen)
			out[n] = '\0';
		cap_free(name);
	}
	out[outlen - 1] = '\0';
}

static caps_mask mask_of(cap_t c, cap_flag_t flag)
{
	cap_flag_value_t f;
	caps_mask m = 0;
	int v, n = nr_caps();

	for (v = 0; v < n; v++)
		if (!cap_get_flag(c, v, flag, &f) && f == CAP_SET)
			m |= (caps_mask)1 << v;
	return m;
}

caps_mask caps_effective(void)
{
	cap_t c = cap_get_proc();
	caps_mask m;

	if (!c)
		return 0;
	m = mask_of(c, CAP_EFFECTIVE);
	cap_free(c);
	return m;
}

static void cap_name(int v, char *out, size_t outlen)
{
	caps_format((caps_mask)1 << v, out, outlen);
}

int caps_drop_thread(caps_mask keep, char *err, size_t errlen)
{
	caps_mask have, missing;
	char name[64];
	cap_t c;
	int v, n = nr_caps(), e;

	c = cap_get_proc();
	if (!c) {
		e = -errno;
		snprintf(err, errlen, "cannot read capabilities: %s",
			 strerror(errno));
		return e;
	}
	have = mask_of(c, CAP_PERMITTED);
	cap_free(c);
	missing = keep & ~have;
	if (missing) {
		for (v = 0; !(missing & ((caps_mask)1 << v)); v++)
			;
		cap_name(v, name, sizeof(name));
		snprintf(err, errlen,
			 "--capabilities.keep: cannot keep %s: the process does not hold it",
			 name);
		return -EPERM;
	}

	/* No execve may grant anything from now on (setuid, file caps). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		e = -errno;
		snprintf(err, errlen, "cannot set no_new_privs: %s",
			 strerror(errno));
		return e;
	}
	/* EINVAL: a kernel without ambient capabilities has none to clear */
	if (cap_reset_ambient() && errno != EINVAL) {
		e = -errno;
		snprintf(err, errlen, "cannot clear the ambient set: %s",
			 strerror(errno));
		return e;
	}
	/* The bounding set: needs CAP_SETPCAP, which goes with the rest. */
	for (v = 0; v < n; v++) {
		if (cap_get_bound(v) != 1)
			continue;
		if (keep & ((caps_mask)1 << v))
			continue;
		if (cap_drop_bound(v)) {
			e = -errno;
			cap_name(v, name, sizeof(name));
			snprintf(err, errlen,
				 "cannot drop %s from the bounding set: %s%s", name,
				 strerror(errno),
				 errno == EPERM ? " (CAP_SETPCAP is needed to clear it)" : "");
			return e;
		}
	}

	c = cap_init();
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (v = 0; v < n; v++) {
		cap_value_t cv = v;

		if (!(keep & ((caps_mask)1 << v)))
			continue;
		if (cap_set_flag(c, CAP_PERMITTED, 1, &cv, CAP_SET) ||
		    cap_set_flag(c, CAP_EFFECTIVE, 1, &cv, CAP_SET)) {
			cap_free(c);
			snprintf(err, errlen, "cannot build the capability set");
			return -EINVAL;
		}
	}
	if (cap_set_proc(c)) {
		e = -errno;
		cap_free(c);
		snprintf(err, errlen, "cannot drop capabilities: %s",
			 strerror(errno));
		return e;
	}
	cap_free(c);

	/* Trust, but check: what the kernel now says this thread holds. */
	c = cap_get_proc();
	if (!c || mask_of(c, CAP_PERMITTED) != keep ||
	    mask_of(c, CAP_EFFECTIVE) != keep ||
	    mask_of(c, CAP_INHERITABLE) != 0) {
		if (c)
			cap_free(c);
		snprintf(err, errlen, "capabilities still held after the drop");
		return -EPERM;
	}
	cap_free(c);
	for (v = 0; v < n; v++)
		if (cap_get_bound(v) == 1 && !(keep & ((caps_mask)1 << v))) {
			snprintf(err, errlen, "bounding set not cleared");
			return -EPERM;
		}
	return 0;
}
