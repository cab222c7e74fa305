/*
 * bclass_reply.c: a stored reply or reason turned into what the bounce
 * class rules look at (bclass_reply_init, see bclass_rules.h). Pure.
 */
#include "core/bounce/bclass_rules.h"

#include <stdio.h>
#include <string.h>

static bool brep_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "x.y.z" at p (class 2, 4 or 5; 1-3 digits each): its length, or 0. */
static size_t brep_status_len(const char *p, const char *end)
{
	const char *s = p;

	if (end - p < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return 0;
	p += 2;
	for (int part = 0; part < 2; part++) {
		const char *d = p;

		while (p < end && brep_digit(*p) && p - d < 3)
			p++;
		if (p == d)
			return 0;
		if (part == 0) {
			if (p >= end || *p != '.')
				return 0;
			p++;
		}
	}
	if (p < end && (brep_digit(*p) || *p == '.'))
		return 0;
	return (size_t)(p - s);
}

/* "ddd" then ' ' or '-', at p (not inside a longer number): the code. */
static unsigned brep_code(const char *p, const char *end, const char *start)
{
	if (end - p < 4 || !brep_digit(p[0]) || !brep_digit(p[1]) || !brep_digit(p[2]) ||
	    (p[3] != ' ' && p[3] != '-') || (p > start && brep_digit(p[-1])))
		return 0;
	if (p[0] < '2' || p[0] > '5')
		return 0;
	return (unsigned)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
}

void bclass_reply_init(struct bclass_reply *r, const char *reply, const char *ecode,
		       bool failed, char *buf, size_t buflen)
{
	const char *s = reply ? reply : "", *end = s + strlen(s), *p;
	size_t n = 0, slen = 0;

	memset(r, 0, sizeof(*r));
	/* The reply's own code and status, at its start or after a reason
	 * ringmta wrote around it ("host ... said: 421 4.7.0 ..."); not in
	 * the host's name ("host mx-250-1.example[...]"). */
	p = s;
	if (strncmp(s, "host ", 5) == 0)
		p = s + 5 + strcspn(s + 5, " ");
	for (; p < end; p++) {
		unsigned code = brep_code(p, end, s);
		size_t l;

		if (code == 0)
			continue;
		r->br_code = code;
		l = brep_status_len(p + 4, end);
		if (l > 0 && l < sizeof(r->br_status) && p[4] == (char)('0' + code / 100)) {
			memcpy(r->br_status, p + 4, l);
			r->br_status[l] = '\0';
		}
		break;
	}
	if (r->br_status[0] == '\0' && ecode != NULL && ecode[0] != '\0' &&
	    (r->br_code == 0 || (unsigned)(ecode[0] - '0') == r->br_code / 100))
		snprintf(r->br_status, sizeof(r->br_status), "%s", ecode);
	if (r->br_code == 0) {
		if (r->br_status[0] == '4' || r->br_status[0] == '5')
			r->br_code = (unsigned)(r->br_status[0] - '0') * 100;
		else
			r->br_code = failed ? 500 : 400;
	}
	/* The text, without the status repeated on continuation lines. */
	slen = strlen(r->br_status);
	for (p = s; p < end && n + 1 < buflen; ) {
		if (slen > 0 && p > s && p[-1] == ' ' && (size_t)(end - p) > slen &&
		    memcmp(p, r->br_status, slen) == 0 && p[slen] == ' ' &&
		    memmem(s, (size_t)(p - s), r->br_status, slen) != NULL) {
			p += slen + 1;
			continue;
		}
		/* Likewise "ddd-" and "ddd " of continuation lines. */
		if (p > s && p[-1] == ' ' && brep_code(p, end, s) == r->br_code &&
		    memmem(s, (size_t)(p - s), p, 3) != NULL) {
			p += 4;
			continue;
		}
		buf[n++] = *p++;
	}
	if (buflen > 0)
		buf[n] = '\0';
	r->br_text = buf;
	r->br_len = n;
}
