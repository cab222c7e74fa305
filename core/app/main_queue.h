/*
 * main_queue: "ringmta queue ..." split in two: the verbs that open the
 * queue's LMDB files directly (main_queue.c: --offline, and count, check,
 * compact, shaping) and those that ask the running daemon through its
 * admin API (main_queue_api.c: the default for summary, list, show, hold,
 * release, delete, bounce and flush).
 */
#ifndef RINGMTA_MAIN_QUEUE_H
#define RINGMTA_MAIN_QUEUE_H

#include <stdbool.h>

#include "core/config/config.h"

#define MAIN_QUEUE_ARGS_MAX 1024u
#define MAIN_QUEUE_FILTERS_MAX 8u

/* The command line after "queue"; the strings are argv's. */
struct main_qopts {
	const char *verb;
	const char *args[MAIN_QUEUE_ARGS_MAX];	/* ids (or nothing) */
	unsigned nargs;
	bool offline, json, all, body;
	const char *api;		/* --api URL; NULL: from admin_listen */
	const char *token_file;		/* --token-file; NULL: admin_token_file */
	const char *reason, *by, *top, *limit, *cursor;
	const char *fname[MAIN_QUEUE_FILTERS_MAX];	/* filter names (API form) */
	const char *fvalue[MAIN_QUEUE_FILTERS_MAX];
	unsigned nf;
};

/* main_queue_api(): the daemon did not answer (nothing listens). */
#define MAIN_QUEUE_NO_DAEMON (-1)

/* Run o's verb through the admin API: the exit code (0, 1 failed, 2
 * usage), or MAIN_QUEUE_NO_DAEMON after printing nothing. */
int main_queue_api(const struct config *cfg, const struct main_qopts *o);
/* The API's URL for o and cfg into buf; -1 (with a message printed) when
 * there is none. */
int main_queue_api_url(const struct config *cfg, const struct main_qopts *o, char *buf,
		       size_t len);

#endif
