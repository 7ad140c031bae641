/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Dropping capabilities for good, one thread at a time.
 *
 * Linux keeps capabilities, the bounding set, the ambient set and
 * no_new_privs per thread, and a new thread starts with a copy of its
 * creator's.  So the daemon drops them where each thread needs it:
 *
 *   - the thread that starts the HTTP server drops everything first, so
 *     libmicrohttpd's thread, created from it, never holds CAP_BPF or
 *     CAP_SYS_ADMIN;
 *   - the main thread drops everything but --capabilities.keep once the
 *     probes are attached (possibly late: KVM may be loaded after start).
 *
 * "For good": permitted, effective, inheritable and ambient are cleared,
 * the bounding set is cleared (needs CAP_SETPCAP, dropped last), and
 * no_new_privs is set, so no execve can hand any capability back.
 */
#ifndef __CAPS_H
#define __CAPS_H

#include <stddef.h>
#include <stdint.h>

/* A set of capability numbers as a bit mask (the kernel has < 64). */
typedef uint64_t caps_mask;

/*
 * Parse a --capabilities.keep value: comma-separated names such as
 * CAP_BPF,cap_net_raw (case-insensitive; "" is the empty set).  Unknown
 * or malformed names return -EINVAL with a one-line message in err.
 */
int caps_parse_list(const char *s, caps_mask *out, char *err, size_t errlen);

/* "CAP_BPF,CAP_NET_RAW" ("none" for the empty set). */
void caps_format(caps_mask m, char *out, size_t outlen);

/*
 * Drop every capability of the calling thread except those in keep, which
 * stay permitted and effective (and in the bounding set).  Returns 0, or
 * -errno with a one-line reason in err (a kept capability the thread does
 * not hold, no CAP_SETPCAP to clear the bounding set, ...).
 */
int caps_drop_thread(caps_mask keep, char *err, size_t errlen);

/* The calling thread's effective set, as a mask. */
caps_mask caps_effective(void);

#endif /* __CAPS_H */
