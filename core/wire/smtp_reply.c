/*
 * smtp_reply.c: the client-side SMTP reply parser and the EHLO keyword
 * reader; see smtp_reply.h.
 *
 * The parser walks the input one octet at a time (replies are short and
 * arrive one per command) and keeps only the current line's position,
 * its first four octets and the reply being filled. Nothing points into
 * the caller's buffer once a call returns.
 *
 * Choices the header leaves open:
 *   - A line's length is the octets before its CRLF or LF: code,
 *     separator and text. It may be SMTP_REPLY_LINE_MAX; one more is
 *     E_TOO_LONG, reported as soon as that octet arrives, so a server
 *     that never ends a line cannot make us buffer or wait for it.
 *   - A CR not followed by LF is text. In the code or separator position
 *     it is E_SYNTAX like any other octet that does not belong there.
 *   - A NUL in the text is stored as '?', so text_len == strlen(text).
 *   - A reply of more than 65535 lines is E_TOO_LONG (nlines would wrap).
 *   - After an error *used_r is the offset just past the octet that
 *     caused it (for a bad line end, past that LF).
 *   - The enhanced code is looked for in every line's first 11 octets of
 *     text, kept in rp_cur.ecode while the line is read, and checked when
 *     the last line ends; a reply whose joined text was truncated still
 *     gets the last line's code.
 */
#include "core/wire/smtp_reply.h"

#include <string.h>

enum smtp_reply_state {
	SMTP_REPLY_ST_LINE = 0,	/* in a line, rp_line_len octets so far */
	SMTP_REPLY_ST_CR,	/* in a line, a CR was seen and is held back */
};

/* How many text octets of each line are kept for the enhanced code:
 * "5.123.456" and the octet after it fit. */
#define SMTP_REPLY_ECODE_SCAN (sizeof(((struct smtp_reply *)0)->ecode) - 1)

static void smtp_reply_reset(struct smtp_reply_parser *p)
{
	p->rp_cur.code = 0;
	p->rp_cur.ecode[0] = '\0';
	p->rp_cur.nlines = 0;
	p->rp_cur.text_len = 0;
	p->rp_cur.text[0] = '\0';
	p->rp_line_len = 0;
	p->rp_line_code = 0;
	p->rp_state = SMTP_REPLY_ST_LINE;
}

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
	smtp_reply_reset(p);
}

static inline bool smtp_reply_is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static inline void smtp_reply_text_add(struct smtp_reply *r, char ch)
{
	if (r->text_len < SMTP_REPLY_TEXT_MAX - 1)
		r->text[r->text_len++] = ch;
}

/* Take one octet of a line (not its line end). 0 or an error code. */
static int smtp_reply_octet(struct smtp_reply_parser *p, unsigned char ch)
{
	uint32_t pos;

	if (p->rp_line_len >= SMTP_REPLY_LINE_MAX)
		return SMTP_REPLY_E_TOO_LONG;
	pos = p->rp_line_len++;
	if (pos < 3) {
		/* 2xx-5xx, second digit 0-5 (RFC 5321 4.2.1). */
		if (!smtp_reply_is_digit(ch) || (pos == 0 && (ch < '2' || ch > '5')) ||
		    (pos == 1 && ch > '5'))
			return SMTP_REPLY_E_SYNTAX;
		p->rp_head[pos] = (char)ch;
		if (pos == 2) {
			p->rp_line_code = (uint16_t)((p->rp_head[0] - '0') * 100 +
						     (p->rp_head[1] - '0') * 10 + (ch - '0'));
			if (p->rp_cur.nlines > 0 && p->rp_line_code != p->rp_cur.code)
				return SMTP_REPLY_E_SYNTAX;
		}
		return 0;
	}
	if (pos == 3) {
		if (ch != '-' && ch != ' ')
			return SMTP_REPLY_E_SYNTAX;
		p->rp_head[3] = (char)ch;
		return 0;
	}
	if (ch == '\0')
		ch = '?';
	pos -= 4;
	if (pos < SMTP_REPLY_ECODE_SCAN)
		p->rp_cur.ecode[pos] = (char)ch;
	smtp_reply_text_add(&p->rp_cur, (char)ch);
	return 0;
}

/* Keep ecode (the first octets of the last line) only if it starts with
 * an RFC 3463 code of the reply's class followed by a space or the end. */
static void smtp_reply_ecode_finish(struct smtp_reply *r)
{
	char *e = r->ecode;
	size_t k = 2;

	if ((e[0] != '2' && e[0] != '4' && e[0] != '5') || e[0] - '0' != r->code / 100 ||
	    e[1] != '.')
		goto none;
	for (int part = 0; part < 2; part++) {
		size_t start = k;

		while (smtp_reply_is_digit((unsigned char)e[k]) && k - start < 3)
			k++;
		if (k == start || smtp_reply_is_digit((unsigned char)e[k]))
			goto none;
		if (part == 0) {
			if (e[k] != '.')
				goto none;
			k++;
		}
	}
	if (e[k] != ' ' && e[k] != '\0')
		goto none;
	e[k] = '\0';
	return;
none:
	e[0] = '\0';
}

/* A line ended: 0 when more lines follow, DONE, or an error code. */
static int smtp_reply_eol(struct smtp_reply_parser *p)
{
	struct smtp_reply *r = &p->rp_cur;
	uint32_t text = p->rp_line_len > 4 ? p->rp_line_len - 4 : 0;
	bool last;

	if (p->rp_line_len < 3)
		return SMTP_REPLY_E_SYNTAX;
	if (r->nlines == UINT16_MAX)
		return SMTP_REPLY_E_TOO_LONG;
	last = p->rp_line_len == 3 || p->rp_head[3] == ' ';
	r->ecode[text < SMTP_REPLY_ECODE_SCAN ? text : SMTP_REPLY_ECODE_SCAN] = '\0';
	if (r->nlines == 0)
		r->code = p->rp_line_code;
	r->nlines++;
	p->rp_line_len = 0;
	if (!last) {
		smtp_reply_text_add(r, '\n');
		return 0;
	}
	r->text[r->text_len] = '\0';
	smtp_reply_ecode_finish(r);
	return SMTP_REPLY_DONE;
}

static void smtp_reply_copy(const struct smtp_reply *from, struct smtp_reply *to)
{
	to->code = from->code;
	memcpy(to->ecode, from->ecode, sizeof(to->ecode));
	to->nlines = from->nlines;
	to->text_len = from->text_len;
	memcpy(to->text, from->text, (size_t)from->text_len + 1);
}

int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len,
		    size_t *used_r, struct smtp_reply *r_r)
{
	int ret;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (p->rp_state == SMTP_REPLY_ST_CR) {
			p->rp_state = SMTP_REPLY_ST_LINE;
			if (ch != '\n' && (ret = smtp_reply_octet(p, '\r')) < 0) {
				*used_r = i + 1;
				return ret;
			}
		}
		if (ch == '\r') {
			p->rp_state = SMTP_REPLY_ST_CR;
			continue;
		}
		ret = ch == '\n' ? smtp_reply_eol(p) : smtp_reply_octet(p, ch);
		if (ret == 0)
			continue;
		*used_r = i + 1;
		if (ret == SMTP_REPLY_DONE) {
			smtp_reply_copy(&p->rp_cur, r_r);
			smtp_reply_reset(p);
		}
		return ret;
	}
	*used_r = len;
	return SMTP_REPLY_MORE;
}

/* ASCII only: the C library's tolower() depends on the locale. */
static inline unsigned char smtp_reply_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

static const struct smtp_reply_ext {
	char name[20];		/* lower case */
	uint8_t len;
	uint32_t flag;
} smtp_reply_exts[] = {
	{ "pipelining", 10, SMTP_EXT_PIPELINING },
	{ "size", 4, SMTP_EXT_SIZE },
	{ "8bitmime", 8, SMTP_EXT_8BITMIME },
	{ "smtputf8", 8, SMTP_EXT_SMTPUTF8 },
	{ "chunking", 8, SMTP_EXT_CHUNKING },
	{ "starttls", 8, SMTP_EXT_STARTTLS },
	{ "enhancedstatuscodes", 19, SMTP_EXT_ENHANCED },
	{ "dsn", 3, SMTP_EXT_DSN },
	{ "auth", 4, SMTP_EXT_AUTH },
};

static inline bool smtp_reply_is_blank(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

static const struct smtp_reply_ext *smtp_reply_ext_find(const char *w, size_t n)
{
	for (size_t i = 0; i < sizeof(smtp_reply_exts) / sizeof(smtp_reply_exts[0]); i++) {
		const struct smtp_reply_ext *e = &smtp_reply_exts[i];
		size_t k = 0;

		if (e->len != n)
			continue;
		while (k < n && smtp_reply_lower((unsigned char)w[k]) == (unsigned char)e->name[k])
			k++;
		if (k == n)
			return e;
	}
	return NULL;
}

/* The mechanisms of an AUTH line, [p, end): the ones the client speaks. */
static uint32_t smtp_reply_auth_mechs(const char *p, const char *end)
{
	static const struct smtp_reply_ext mechs[] = {
		{ "plain", 5, SMTP_EXT_AUTH_PLAIN },
		{ "login", 5, SMTP_EXT_AUTH_LOGIN },
	};
	uint32_t flags = 0;

	while (p < end) {
		const char *w;

		while (p < end && smtp_reply_is_blank((unsigned char)*p))
			p++;
		for (w = p; p < end && !smtp_reply_is_blank((unsigned char)*p); p++)
			;
		for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
			size_t k = 0;

			if ((size_t)(p - w) != mechs[i].len)
				continue;
			while (k < mechs[i].len &&
			       smtp_reply_lower((unsigned char)w[k]) == (unsigned char)mechs[i].name[k])
				k++;
			if (k == mechs[i].len)
				flags |= mechs[i].flag;
		}
	}
	return flags;
}

/* RFC 1870: "SIZE" [SP 1*DIGIT]. 0 when the value is absent, not a
 * number or does not fit (all of which mean "no limit we can use"). */
static uint64_t smtp_reply_size_value(const char *p, const char *end)
{
	uint64_t v = 0;

	while (p < end && smtp_reply_is_blank((unsigned char)*p))
		p++;
	for (; p < end && smtp_reply_is_digit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (p < end && !smtp_reply_is_blank((unsigned char)*p))
		return 0;
	return v;
}

uint32_t smtp_reply_ehlo(const struct smtp_reply *r, uint64_t *size_r)
{
	const char *p = r->text, *end = r->text + r->text_len, *eol;
	uint32_t flags = 0;

	if (size_r != NULL)
		*size_r = 0;
	if (r->code != 250)
		return 0;
	/* The first line is the server's greeting, not a keyword. */
	eol = memchr(p, '\n', (size_t)(end - p));
	if (eol == NULL)
		return 0;
	for (p = eol + 1; p < end; p = eol + 1) {
		const struct smtp_reply_ext *e;
		const char *w;

		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		while (p < eol && smtp_reply_is_blank((unsigned char)*p))
			p++;
		for (w = p; p < eol && !smtp_reply_is_blank((unsigned char)*p); p++)
			;
		/* "AUTH=LOGIN PLAIN": what servers said before RFC 2554 was final. */
		if (p - w > 5 && w[4] == '=' && (e = smtp_reply_ext_find(w, 4)) != NULL &&
		    e->flag == SMTP_EXT_AUTH) {
			flags |= SMTP_EXT_AUTH | smtp_reply_auth_mechs(w + 5, eol);
			continue;
		}
		e = smtp_reply_ext_find(w, (size_t)(p - w));
		if (e == NULL)
			continue;
		flags |= e->flag;
		if (e->flag == SMTP_EXT_AUTH)
			flags |= smtp_reply_auth_mechs(p, eol);
		if (e->flag == SMTP_EXT_SIZE && size_r != NULL)
			*size_r = smtp_reply_size_value(p, eol);
	}
	return flags;
}
