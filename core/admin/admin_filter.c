/*
 * admin_filter.c: see admin_filter.h. Values are copied into the filter
 * with their lengths checked; nothing here allocates.
 */
#include "core/admin/admin_filter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bounce/bclass.h"
#include "queue/queue.h"

void admin_filter_init(struct admin_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->af_class = -1;
	f->af_limit = ADMIN_FILTER_LIMIT_DEFAULT;
}

int admin_filter_duration(const char *s, uint64_t *secs_r)
{
	uint64_t n = 0, mul = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0': case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -1;
	}
	if (*p != '\0' && p[1] != '\0')
		return -1;
	/* Ten years is more than any queue keeps a message. */
	if (n > 3650ull * 86400u / mul)
		return -1;
	*secs_r = n * mul;
	return 0;
}

/* Copy an address or domain: printable, no blanks, no '<' '>' besides the
 * null sender's "<>". */
static int admin_filter_text(char *out, size_t outlen, const char *name, const char *v,
			     bool domain, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || n >= outlen) {
		snprintf(err, errlen, "%s: %s", name, n == 0 ? "empty" : "too long");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"' ||
		    (domain && c == '@')) {
			snprintf(err, errlen, "%s: not %s", name, domain ? "a domain" : "an address");
			return -1;
		}
	}
	memcpy(out, v, n + 1);
	return 0;
}

static int admin_filter_states(struct admin_filter *f, const char *v, char *err, size_t errlen)
{
	static const struct { const char *n; unsigned st; } names[] = {
		{ "ready", ADMIN_ST_READY }, { "scheduled", ADMIN_ST_SCHEDULED },
		{ "deferred", ADMIN_ST_SCHEDULED }, { "held", ADMIN_ST_HELD },
		{ "inflight", ADMIN_ST_INFLIGHT },
	};
	const char *p = v;

	f->af_states = 0;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		unsigned st = 0;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].n) == n && strncmp(names[i].n, p, n) == 0)
				st = names[i].st;
		if (st == 0) {
			snprintf(err, errlen, "state: '%.*s' is not ready, scheduled, held or"
				 " inflight", (int)(n > 40 ? 40 : n), p);
			return -1;
		}
		f->af_states |= st;
		if (e == NULL)
			return 0;
		p = e + 1;
	}
}

int admin_filter_set(struct admin_filter *f, const char *name, const char *value, char *err,
		     size_t errlen)
{
	uint64_t u;

	if (value == NULL)
		value = "";
	if (strcmp(name, "domain") == 0) {
		if (admin_filter_text(f->af_domain, sizeof(f->af_domain), name, value, true, err,
				      errlen) < 0)
			return -1;
	} else if (strcmp(name, "sender") == 0) {
		/* "<>" is the null sender; otherwise an address or "@domain". */
		if (strcmp(value, "<>") == 0) {
			strcpy(f->af_sender, "<>");
		} else if (admin_filter_text(f->af_sender, sizeof(f->af_sender) - 1, name, value,
					     false, err, errlen) < 0) {
			return -1;
		}
	} else if (strcmp(name, "recipient") == 0) {
		if (admin_filter_text(f->af_recipient, sizeof(f->af_recipient), name, value, false,
				      err, errlen) < 0)
			return -1;
	} else if (strcmp(name, "min_age") == 0 || strcmp(name, "max_age") == 0) {
		if (admin_filter_duration(value, &u) < 0) {
			snprintf(err, errlen, "%s: not a duration (seconds, or a number with"
				 " s, m, h, d or w)", name);
			return -1;
		}
		if (name[1] == 'i') {
			f->af_min_age_s = u;
		} else {
			f->af_max_age_s = u;
			f->af_has_max_age = true;
		}
	} else if (strcmp(name, "state") == 0) {
		if (admin_filter_states(f, value, err, errlen) < 0)
			return -1;
	} else if (strcmp(name, "class") == 0) {
		int c = bclass_parse(value, strlen(value));

		if (c <= 0) {
			snprintf(err, errlen, "class: not a bounce class name");
			return -1;
		}
		f->af_class = c;
	} else if (strcmp(name, "limit") == 0) {
		char *end;

		errno = 0;
		u = strtoull(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 || u == 0 ||
		    u > ADMIN_FILTER_LIMIT_MAX) {
			snprintf(err, errlen, "limit: a number from 1 to %u", ADMIN_FILTER_LIMIT_MAX);
			return -1;
		}
		f->af_limit = (unsigned)u;
		return 0;
	} else if (strcmp(name, "cursor") == 0) {
		if (queue_id_parse(value, &u) < 0 || u == 0) {
			snprintf(err, errlen, "cursor: not a queue id (16 hex digits)");
			return -1;
		}
		f->af_cursor = u;
		return 0;
	} else {
		return 1;
	}
	f->af_selects = true;
	return 0;
}

unsigned admin_filter_state(const struct qrecord *r, uint64_t now_us, bool inflight)
{
	if (r->flags & QRECORD_F_HELD)
		return ADMIN_ST_HELD | (inflight ? ADMIN_ST_INFLIGHT : 0);
	if (inflight)
		return ADMIN_ST_INFLIGHT;
	return r->next_attempt <= now_us ? ADMIN_ST_READY : ADMIN_ST_SCHEDULED;
}

static bool admin_filter_domain_is(const char *addr, size_t len, const char *domain)
{
	const char *at = memrchr(addr, '@', len);
	size_t dl = strlen(domain);

	return at != NULL && (size_t)(addr + len - at - 1) == dl &&
	       strncasecmp(at + 1, domain, dl) == 0;
}

static bool admin_filter_addr_is(const char *addr, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(addr, want, len) == 0;
}

bool admin_filter_match(const struct admin_filter *f, uint64_t id, const struct qrecord *r,
			uint64_t now_us, bool inflight)
{
	uint64_t age = now_us > r->arrival ? (now_us - r->arrival) / 1000000u : 0;
	bool dom = f->af_domain[0] == '\0', rcpt = f->af_recipient[0] == '\0';
	bool cls = f->af_class < 0;
	struct qrcpt rc;
	size_t off = 0;

	(void)id;
	if (age < f->af_min_age_s || (f->af_has_max_age && age > f->af_max_age_s))
		return false;
	if (f->af_states != 0 && (admin_filter_state(r, now_us, inflight) & f->af_states) == 0)
		return false;
	if (f->af_sender[0] != '\0') {
		if (strcmp(f->af_sender, "<>") == 0) {
			if (r->sender_len != 0)
				return false;
		} else if (f->af_sender[0] == '@') {
			if (!admin_filter_domain_is(r->sender, r->sender_len, f->af_sender + 1))
				return false;
		} else if (!admin_filter_addr_is(r->sender, r->sender_len, f->af_sender)) {
			return false;
		}
	}
	while ((!dom || !rcpt || !cls) && qrecord_rcpt_next(r, &off, &rc)) {
		if (!rcpt && admin_filter_addr_is(rc.addr, rc.addr_len, f->af_recipient))
			rcpt = true;
		if (rc.state != QRCPT_PENDING)
			continue;
		if (!dom && admin_filter_domain_is(rc.addr, rc.addr_len, f->af_domain))
			dom = true;
		if (!cls && rc.bclass == (unsigned)f->af_class)
			cls = true;
	}
	return dom && rcpt && cls;
}
