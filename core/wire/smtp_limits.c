/*
 * smtp_limits.c: the LIMITS EHLO keyword (RFC 9422), client side; see
 * smtp_limits.h.
 *
 * A line is cut into tokens at blanks; a token is "name=value". Choices
 * the header leaves open:
 *   - Names are compared without regard to case (EHLO keywords and their
 *     parameters are, RFC 5321 2.4); a name holds letters, digits, "-"
 *     and "_" only, at most SMTP_LIMITS_NAME_MAX of them.
 *   - A value is digits only, no sign, no blank around "=". Leading zeros
 *     count toward SMTP_LIMITS_DIGITS, so no number of any length can
 *     make us loop or overflow.
 *   - A token without "=" (or with nothing before it) is skipped whole.
 */
#include "core/wire/smtp_limits.h"

#include <string.h>

static inline bool smtp_limits_blank(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

static inline bool smtp_limits_name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* ASCII only: the C library's tolower() depends on the locale. */
static inline unsigned char smtp_limits_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* Whether w[0..n) is the lower-case name (case-insensitive). */
static bool smtp_limits_is(const char *w, size_t n, const char *name)
{
	size_t k;

	if (strlen(name) != n)
		return false;
	for (k = 0; k < n; k++)
		if (smtp_limits_lower((unsigned char)w[k]) != (unsigned char)name[k])
			return false;
	return true;
}

/* The value v[0..n): 1 to SMTP_LIMITS_DIGITS digits, not 0; else 0. */
static uint32_t smtp_limits_value(const char *v, size_t n)
{
	uint32_t x = 0;

	if (n == 0 || n > SMTP_LIMITS_DIGITS)
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (v[k] < '0' || v[k] > '9')
			return 0;
		x = x * 10 + (uint32_t)(v[k] - '0');
	}
	return x;
}

/* The limit named w[0..n) in *lim, or NULL when we do not use it. */
static uint32_t *smtp_limits_slot(struct smtp_limits *lim, const char *w, size_t n)
{
	if (smtp_limits_is(w, n, "rcptmax"))
		return &lim->lm_rcptmax;
	if (smtp_limits_is(w, n, "mailmax"))
		return &lim->lm_mailmax;
	if (smtp_limits_is(w, n, "rcptdomainmax"))
		return &lim->lm_rcptdomainmax;
	return NULL;
}

/* One token t[0..n), no blanks in it: true when a known limit was taken. */
static bool smtp_limits_token(const char *t, size_t n, struct smtp_limits *lim)
{
	const char *eq = memchr(t, '=', n);
	size_t nlen;
	uint32_t *slot, v;

	if (eq == NULL)
		return false;
	nlen = (size_t)(eq - t);
	if (nlen == 0 || nlen > SMTP_LIMITS_NAME_MAX)
		return false;
	for (size_t k = 0; k < nlen; k++)
		if (!smtp_limits_name_char((unsigned char)t[k]))
			return false;
	slot = smtp_limits_slot(lim, t, nlen);
	if (slot == NULL)
		return false;
	v = smtp_limits_value(eq + 1, n - nlen - 1);
	if (v == 0)
		return false;
	if (*slot == 0 || v < *slot)
		*slot = v;
	return true;
}

unsigned smtp_limits_parse(const char *p, size_t n, struct smtp_limits *lim_r)
{
	const char *end = p + n;
	unsigned taken = 0;

	while (p < end) {
		const char *t;

		while (p < end && smtp_limits_blank((unsigned char)*p))
			p++;
		for (t = p; p < end && !smtp_limits_blank((unsigned char)*p); p++)
			;
		if (p > t && smtp_limits_token(t, (size_t)(p - t), lim_r))
			taken++;
	}
	return taken;
}

bool smtp_limits_ehlo(const struct smtp_reply *r, struct smtp_limits *lim_r)
{
	const char *p = r->text, *end = r->text + r->text_len, *eol;
	bool offered = false;

	memset(lim_r, 0, sizeof(*lim_r));
	if (r->code != 250)
		return false;
	eol = memchr(p, '\n', (size_t)(end - p));
	/* Each line after the greeting: keyword, then its parameters. */
	while (eol != NULL) {
		const char *w;

		p = eol + 1;
		eol = memchr(p, '\n', (size_t)(end - p));
		while (p < (eol ? eol : end) && smtp_limits_blank((unsigned char)*p))
			p++;
		for (w = p; p < (eol ? eol : end) && !smtp_limits_blank((unsigned char)*p); p++)
			;
		if (!smtp_limits_is(w, (size_t)(p - w), "limits"))
			continue;
		offered = true;
		smtp_limits_parse(p, (size_t)((eol ? eol : end) - p), lim_r);
	}
	return offered;
}
