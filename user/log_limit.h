/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A bound on how many lines a noisy source may log: a client opening and
 * dropping connections as fast as it can must not turn the agent's stderr
 * (the journal, or a pipe nobody reads) into the bottleneck of its HTTP
 * thread.
 */
#ifndef __LOG_LIMIT_H
#define __LOG_LIMIT_H

#include <stdbool.h>
#include <time.h>

#define LOG_LIMIT_LINES		10	/* per window */
#define LOG_LIMIT_WINDOW_S	10

struct log_limit {
	time_t window;			/* start of the current window */
	unsigned int lines;		/* logged in it */
	unsigned long suppressed;	/* dropped in it */
};

/*
 * May a line be logged at `now`?  When a new window starts after lines
 * were dropped, *dropped says how many (to be logged first); else 0.
 */
bool log_limit_allow(struct log_limit *l, time_t now,
		     unsigned long *dropped);

#endif /* __LOG_LIMIT_H */
