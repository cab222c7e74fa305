/*
 * log: one line per event on standard error, written with a single
 * write(2) so lines from different workers never interleave.
 */
#ifndef RINGMTA_LOG_H
#define RINGMTA_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once at startup, before any thread starts. */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
