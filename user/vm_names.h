/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Who is this VMM process: the VM's name the way QEMU users know it, and the
 * /proc facts the VM table needs (is it alive, when did it start).
 *
 * Parsing works on buffers so it can be unit-tested and fuzzed; the /proc
 * readers are thin and take the proc root ("/proc", or a fake tree in tests)
 * as a parameter.
 */
#ifndef __VM_NAMES_H
#define __VM_NAMES_H

#include <stddef.h>
#include <linux/types.h>
#include "../bpf/unsync.h"

#define VM_NAME_MAX	128		/* bytes kept of a name, NUL included */
#define VM_CMDLINE_MAX	(256 * 1024)	/* bytes read of /proc/PID/cmdline */

enum vm_name_source {
	VM_NAME_QEMU,		/* -name guest=NAME (or -name NAME) */
	VM_NAME_COMM,		/* /proc/PID/comm */
	VM_NAME_UNKNOWN,	/* "unknown" */
};

/*
 * The guest name from a NUL-separated argv, as in /proc/PID/cmdline (the
 * last argument need not end in NUL).  Follows QEMU's own parsing:
 *  - the option is "-name" or "--name" followed by its value in the next
 *    argument; QEMU rejects "-name=VALUE", so that is not a name;
 *  - the value is a QemuOpts list: "guest=NAME,debug-threads=on", or
 *    "NAME,process=...": only the first element may omit "guest=";
 *  - ",," inside a value stands for one ',';
 *  - repeated -name options merge, the last guest= wins.
 * Writes the name NUL-terminated, truncated to size - 1 bytes, and returns
 * its length; returns 0 (name = "") if there is no non-empty guest name.
 */
size_t vm_name_from_cmdline(const char *argv, size_t len, char *name,
			    size_t size);

/* The task name from /proc/PID/comm contents (up to the newline). */
size_t vm_name_from_comm(const char *buf, size_t len, char *name,
			 size_t size);

/*
 * The name the BPF side kept for a VM (bpf/unsync.h, struct vm_name): the
 * guest name of its -name value (QemuOpts, as vm_name_from_cmdline() takes
 * it), else its comm; VM_NAME_UNKNOWN (name = "") if neither.  Reads only
 * up to the NUL of each field, or its end.
 */
enum vm_name_source vm_name_from_kernel(const struct vm_name *kn, char *name,
					size_t size);

/*
 * Name process pid under proc_root: the QEMU guest name, else its comm,
 * else "unknown".  Never fails; says where the name came from.
 */
enum vm_name_source vm_name_read(const char *proc_root, __u32 pid,
				 char *name, size_t size);

/* Field 22 (starttime, clock ticks after boot) of a /proc/PID/stat line. */
int proc_parse_starttime(const char *buf, size_t len,
			 unsigned long long *start);

/*
 * Start time of process pid under proc_root.  Returns 0, -ENOENT if the
 * process no longer exists, or another -errno.  The start time tells a
 * process from a later one that reused its pid.
 */
int proc_pid_starttime(const char *proc_root, __u32 pid,
		       unsigned long long *start);

#endif /* __VM_NAMES_H */
