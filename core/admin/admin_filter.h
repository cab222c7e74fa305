/*
 * admin_filter: which queued messages an admin request means: the filter
 * of GET /api/v1/queue/messages (query arguments) and of the POST actions
 * (the same names as JSON members), parsed from name/value text, and the
 * test of one stored record against it. No I/O; any thread.
 *
 * Names: domain (a pending recipient's domain), sender (the address, "<>"
 * for the null sender, or "@domain" for any sender at that domain),
 * recipient (any recipient's address), min_age, max_age (seconds, or a
 * number with s, m, h, d or w), state (ready, scheduled, held, inflight;
 * several separated by commas), class (a bounce class name: a recipient's
 * last class), limit (1 to ADMIN_FILTER_LIMIT_MAX), cursor (the last queue
 * id of the previous page). Addresses and domains compare without regard
 * to ASCII case.
 */
#ifndef RINGMTA_ADMIN_FILTER_H
#define RINGMTA_ADMIN_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/qrecord.h"

#define ADMIN_FILTER_LIMIT_DEFAULT 100u
#define ADMIN_FILTER_LIMIT_MAX 10000u
#define ADMIN_FILTER_ADDR_MAX 320u

enum admin_state {
	ADMIN_ST_READY = 0x01,		/* due now, not held, not in flight */
	ADMIN_ST_SCHEDULED = 0x02,	/* due later, not held, not in flight */
	ADMIN_ST_HELD = 0x04,
	ADMIN_ST_INFLIGHT = 0x08,	/* being delivered now */
};

struct admin_filter {
	char af_domain[256];
	char af_sender[ADMIN_FILTER_ADDR_MAX + 2];
	char af_recipient[ADMIN_FILTER_ADDR_MAX + 1];
	uint64_t af_min_age_s;
	uint64_t af_max_age_s;		/* 0: no maximum */
	bool af_has_max_age;
	unsigned af_states;		/* ADMIN_ST_*; 0: any */
	int af_class;			/* enum bclass; -1: any */
	unsigned af_limit;
	uint64_t af_cursor;		/* list after this id; 0: from the start */
	bool af_selects;		/* some criterion that selects is set
					 * (limit and cursor do not count) */
};

void admin_filter_init(struct admin_filter *f);

/*
 * Set one criterion from text. 0; 1 when name is not a filter name (the
 * caller decides whether that is an error); -1 with err naming the
 * argument and what is wrong with the value.
 */
int admin_filter_set(struct admin_filter *f, const char *name, const char *value, char *err,
		     size_t errlen);

/* A duration "90", "90s", "5m", "2h", "1d", "1w" in seconds; -1 if bad. */
int admin_filter_duration(const char *s, uint64_t *secs_r);

/* Which of the states message r (id) is in at now_us. */
unsigned admin_filter_state(const struct qrecord *r, uint64_t now_us, bool inflight);

/* Whether message id with record r matches f (the cursor and limit are
 * the caller's). inflight: whether delivery has it now. */
bool admin_filter_match(const struct admin_filter *f, uint64_t id, const struct qrecord *r,
			uint64_t now_us, bool inflight);

#endif
