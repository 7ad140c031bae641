// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A fixed window of LOG_LIMIT_LINES lines per LOG_LIMIT_WINDOW_S seconds. */
#include "log_limit.h"

bool log_limit_allow(struct log_limit *l, time_t now, unsigned long *dropped)
{
	*dropped = 0;
	if (now - l->window >= LOG_LIMIT_WINDOW_S || now < l->window) {
		*dropped = l->suppressed;
		l->window = now;
		l->lines = 0;
		l->suppressed = 0;
	}
	if (l->lines >= LOG_LIMIT_LINES) {
		l->suppressed++;
		return false;
	}
	l->lines++;
	return true;
}
