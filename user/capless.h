/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A thread that holds no capability, to create the threads that face the
 * network: a new thread starts with its creator's capabilities, so the
 * HTTP server's threads never hold CAP_BPF or CAP_SYS_ADMIN, whatever the
 * main thread still holds (waiting for KVM) or keeps (--capabilities.keep).
 */
#ifndef __CAPLESS_H
#define __CAPLESS_H

/* Start it and wait until it has dropped everything: 0, or -1 (said why). */
int capless_start(void);
/* fn(arg) on the capless thread; its result, or -1 if there is none. */
int run_capless(int (*fn)(void *arg), void *arg);
void capless_stop(void);

#endif /* __CAPLESS_H */
