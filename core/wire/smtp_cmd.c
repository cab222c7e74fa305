/*
 * smtp_cmd.c: the SMTP command-line parser; see smtp_cmd.h.
 *
 * One table row per verb names the function that checks its arguments.
 * Every result is a slice of the caller's line; nothing is copied out and
 * nothing is allocated. The parser only checks structure and encoding
 * (8-bit octets must be well-formed UTF-8; a HELO name has no control
 * characters): whether an 8-bit address is acceptable (SMTPUTF8) or a
 * HELO name is plausible is the session's policy, not ours.
 *
 * Where RFC 5321 is stricter than deployed clients, we follow Postfix:
 * one space is tolerated after "FROM:" / "TO:", trailing blanks are
 * ignored, and dots in an unquoted local part are not checked for
 * placement ("first.last.@example.jp" exists in the wild).
 */
#include "core/wire/smtp_cmd.h"
#include "core/base/utf8.h"
#include "core/base/xtext.h"

#include <arpa/inet.h>
#include <string.h>

/* A read cursor over the argument text; p never passes end. */
struct smtp_cmd_cur {
	const char *p;
	const char *end;
};

typedef int smtp_cmd_args_fn(struct smtp_cmd *cmd, const struct smtp_limits *lim);

struct smtp_cmd_def {
	char name[9];
	uint8_t len;
	enum smtp_verb verb;
	smtp_cmd_args_fn *args;
};

/* ASCII only: the C library's tolower() depends on the locale. */
static inline unsigned char smtp_cmd_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

static bool smtp_cmd_caseeq(const char *p, size_t len, const char *word, size_t wlen)
{
	if (len != wlen)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (smtp_cmd_lower((unsigned char)p[i]) != smtp_cmd_lower((unsigned char)word[i]))
			return false;
	}
	return true;
}

static inline bool smtp_cmd_is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static inline bool smtp_cmd_is_alnum(unsigned char ch)
{
	unsigned char l = smtp_cmd_lower(ch);

	return smtp_cmd_is_digit(ch) || (l >= 'a' && l <= 'z');
}

/* RFC 5322 atext, plus UTF-8 octets (RFC 6531 widens atext to them). */
static bool smtp_cmd_is_atext(unsigned char ch)
{
	if (smtp_cmd_is_alnum(ch) || ch >= 0x80)
		return true;
	return ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* A domain-label octet: letter, digit, hyphen, underscore (seen in real
 * host names) or a UTF-8 octet of an internationalised name. */
static inline bool smtp_cmd_is_label(unsigned char ch)
{
	return smtp_cmd_is_alnum(ch) || ch == '-' || ch == '_' || ch >= 0x80;
}

/* RFC 5321 esmtp-value: any visible character but "=", and UTF-8. */
static inline bool smtp_cmd_is_value(unsigned char ch)
{
	return (ch >= 33 && ch <= 126 && ch != '=') || ch >= 0x80;
}

static inline struct smtp_slice smtp_cmd_slice(const char *p, const char *end)
{
	return (struct smtp_slice){ p, (uint32_t)(end - p) };
}

/* An address that stops early: at the end of the line the closing '>' is
 * missing (a syntax error), elsewhere a character is out of place. */
static inline int smtp_cmd_addr_err(const struct smtp_cmd_cur *c)
{
	return c->p == c->end ? SMTP_CMD_E_SYNTAX : SMTP_CMD_E_ADDR;
}

/*
 * Parse a decimal number of at most max. Returns false for no digits or
 * for a value over max; on success c is past the digits.
 */
static bool smtp_cmd_number(struct smtp_cmd_cur *c, uint64_t max, uint64_t *val_r)
{
	const char *start = c->p;
	uint64_t v = 0;

	while (c->p < c->end && smtp_cmd_is_digit((unsigned char)*c->p)) {
		unsigned d = (unsigned)(*c->p - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
		c->p++;
	}
	*val_r = v;
	return c->p != start;
}

/* Snum "." Snum "." Snum "." Snum, each 0..255. */
static bool smtp_cmd_ipv4(const char *p, const char *end)
{
	struct smtp_cmd_cur c = { p, end };

	for (int part = 0; part < 4; part++) {
		const char *start = c.p;
		uint64_t v;

		if (part > 0) {
			if (c.p == c.end || *c.p != '.')
				return false;
			c.p++;
			start = c.p;
		}
		if (!smtp_cmd_number(&c, 255, &v) || c.p - start > 3)
			return false;
	}
	return c.p == c.end;
}

/* The text after "IPv6:"; inet_pton() knows every RFC 4291 form, but wants
 * a C string, so the few octets are copied to the stack. */
static bool smtp_cmd_ipv6(const char *p, const char *end)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];
	size_t len = (size_t)(end - p);

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1;
}

/* "[" (IPv4 / "IPv6:" IPv6) "]"; c is at '['. */
static int smtp_cmd_literal(struct smtp_cmd_cur *c)
{
	const char *open = c->p + 1;
	const char *close = memchr(open, ']', (size_t)(c->end - open));
	bool ok;

	if (close == NULL) {
		c->p = c->end;
		return SMTP_CMD_E_SYNTAX;
	}
	if (close - open > 5 && smtp_cmd_caseeq(open, 5, "IPv6:", 5))
		ok = smtp_cmd_ipv6(open + 5, close);
	else
		ok = smtp_cmd_ipv4(open, close);
	if (!ok)
		return SMTP_CMD_E_ADDR;
	c->p = close + 1;
	return SMTP_CMD_OK;
}

/* A domain name (labels separated by single dots) or an address literal,
 * checked against lim->domain. */
static int smtp_cmd_domain(struct smtp_cmd_cur *c, const struct smtp_limits *lim)
{
	const char *start = c->p;

	if (c->p < c->end && *c->p == '[') {
		int err = smtp_cmd_literal(c);

		if (err)
			return err;
	} else {
		for (;;) {
			const char *label = c->p;

			while (c->p < c->end && smtp_cmd_is_label((unsigned char)*c->p))
				c->p++;
			if (c->p == label)
				return smtp_cmd_addr_err(c);
			if (c->p == c->end || *c->p != '.')
				break;
			c->p++;
		}
	}
	if ((size_t)(c->p - start) > lim->domain)
		return SMTP_CMD_E_DOMAIN_LEN;
	return SMTP_CMD_OK;
}

/* A quoted-string local part; c is at the opening quote. */
static int smtp_cmd_quoted(struct smtp_cmd_cur *c)
{
	c->p++;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p++;

		if (ch == '"')
			return SMTP_CMD_OK;
		if (ch == '\\') {
			if (c->p == c->end)
				break;
			ch = (unsigned char)*c->p++;
		}
		/* qtextSMTP and quoted-pairSMTP: printable ASCII or UTF-8. */
		if (ch < 32 || ch == 127)
			return SMTP_CMD_E_ADDR;
	}
	return SMTP_CMD_E_SYNTAX;
}

static int smtp_cmd_local(struct smtp_cmd_cur *c, const struct smtp_limits *lim)
{
	const char *start = c->p;

	if (c->p < c->end && *c->p == '"') {
		int err = smtp_cmd_quoted(c);

		if (err)
			return err;
	} else {
		while (c->p < c->end &&
		       (*c->p == '.' || smtp_cmd_is_atext((unsigned char)*c->p)))
			c->p++;
		if (c->p == start)
			return smtp_cmd_addr_err(c);
	}
	if ((size_t)(c->p - start) > lim->local_part)
		return SMTP_CMD_E_LOCAL_LEN;
	return SMTP_CMD_OK;
}

/* Local-part "@" Domain, or the bare "postmaster" where it is allowed
 * (RFC 5321 4.5.1: RCPT TO:<Postmaster> must always work). */
static int smtp_cmd_mailbox(struct smtp_cmd_cur *c, const struct smtp_limits *lim,
			    bool postmaster_ok)
{
	const char *start = c->p;
	int err = smtp_cmd_local(c, lim);

	if (err)
		return err;
	if (c->p < c->end && *c->p == '@') {
		c->p++;
		return smtp_cmd_domain(c, lim);
	}
	if (postmaster_ok && smtp_cmd_caseeq(start, (size_t)(c->p - start), "postmaster", 10))
		return SMTP_CMD_OK;
	return smtp_cmd_addr_err(c);
}

/* A source route "@a,@b:" (RFC 5321 A-d-l), obsolete but still legal: it
 * is checked and skipped. c is at the first '@'. */
static int smtp_cmd_route(struct smtp_cmd_cur *c, const struct smtp_limits *lim)
{
	for (;;) {
		int err;

		if (c->p == c->end || *c->p != '@')
			return smtp_cmd_addr_err(c);
		c->p++;
		err = smtp_cmd_domain(c, lim);
		if (err)
			return err;
		if (c->p == c->end)
			return SMTP_CMD_E_SYNTAX;
		if (*c->p == ':') {
			c->p++;
			return SMTP_CMD_OK;
		}
		if (*c->p != ',')
			return SMTP_CMD_E_ADDR;
		c->p++;
	}
}

bool smtp_cmd_utf8_valid(const char *p, size_t len)
{
	return utf8_valid(p, len);
}

/*
 * "<" [A-d-l ":"] Mailbox ">" or, if null_ok, "<>". On success c is past
 * the '>' and *path_r is the mailbox without the route.
 */
static int smtp_cmd_path(struct smtp_cmd_cur *c, const struct smtp_limits *lim,
			 bool is_mail, struct smtp_slice *path_r)
{
	const char *open = c->p;
	const char *mbox;
	int err;

	if (c->p == c->end || *c->p != '<')
		return SMTP_CMD_E_SYNTAX;
	c->p++;
	if (c->p < c->end && *c->p == '>') {
		/* The null reverse-path is for bounces; no one sends to it. */
		if (!is_mail)
			return SMTP_CMD_E_ADDR;
		c->p++;
		*path_r = smtp_cmd_slice(c->p - 1, c->p - 1);
		return SMTP_CMD_OK;
	}
	if (c->p < c->end && *c->p == '@') {
		err = smtp_cmd_route(c, lim);
		if (err)
			return err;
	}
	mbox = c->p;
	err = smtp_cmd_mailbox(c, lim, !is_mail);
	if (err)
		return err;
	if (c->p == c->end)
		return SMTP_CMD_E_SYNTAX;
	if (*c->p != '>')
		return SMTP_CMD_E_ADDR;
	c->p++;
	if ((size_t)(c->p - open) > lim->path)
		return SMTP_CMD_E_PATH_LEN;
	/* atext and labels take any octet >= 0x80: it must be UTF-8. */
	if (!smtp_cmd_utf8_valid(open, (size_t)(c->p - open)))
		return SMTP_CMD_E_UTF8;
	*path_r = smtp_cmd_slice(mbox, c->p - 1);
	return SMTP_CMD_OK;
}

enum smtp_cmd_param_id {
	SMTP_CMD_P_SIZE,
	SMTP_CMD_P_BODY,
	SMTP_CMD_P_SMTPUTF8,
	SMTP_CMD_P_AUTH,
	SMTP_CMD_P_RET,
	SMTP_CMD_P_ENVID,
	SMTP_CMD_P_NOTIFY,
	SMTP_CMD_P_ORCPT,
};

/* The parameters we know; AUTH=, which we do not act on, is accepted so
 * that clients which always send it are not refused. */
static const struct smtp_cmd_param_def {
	char name[9];
	uint8_t len;
	uint8_t id;		/* enum smtp_cmd_param_id */
	bool mail;		/* MAIL parameter, else RCPT */
	bool value;		/* "=value" required, else forbidden */
} smtp_cmd_params[] = {
	{ "SIZE", 4, SMTP_CMD_P_SIZE, true, true },
	{ "BODY", 4, SMTP_CMD_P_BODY, true, true },
	{ "SMTPUTF8", 8, SMTP_CMD_P_SMTPUTF8, true, false },
	{ "AUTH", 4, SMTP_CMD_P_AUTH, true, true },
	{ "RET", 3, SMTP_CMD_P_RET, true, true },
	{ "ENVID", 5, SMTP_CMD_P_ENVID, true, true },
	{ "NOTIFY", 6, SMTP_CMD_P_NOTIFY, false, true },
	{ "ORCPT", 5, SMTP_CMD_P_ORCPT, false, true },
};

static const struct smtp_cmd_param_def *
smtp_cmd_param_find(struct smtp_slice key, bool is_mail)
{
	for (size_t i = 0; i < sizeof(smtp_cmd_params) / sizeof(smtp_cmd_params[0]); i++) {
		const struct smtp_cmd_param_def *def = &smtp_cmd_params[i];

		if (def->mail == is_mail && smtp_cmd_caseeq(key.p, key.len, def->name, def->len))
			return def;
	}
	return NULL;
}

/* NOTIFY= "NEVER" or a comma-separated list of SUCCESS, FAILURE, DELAY
 * (RFC 3461 4.1), any case; NEVER goes with nothing else. */
static int smtp_cmd_notify(struct smtp_cmd *cmd, struct smtp_slice value)
{
	static const struct { char name[8]; uint8_t len, bit; } words[] = {
		{ "NEVER", 5, SMTP_DSN_NOTIFY_NEVER },
		{ "SUCCESS", 7, SMTP_DSN_NOTIFY_SUCCESS },
		{ "FAILURE", 7, SMTP_DSN_NOTIFY_FAILURE },
		{ "DELAY", 5, SMTP_DSN_NOTIFY_DELAY },
	};
	const char *p = value.p, *end = value.p + value.len;
	uint8_t bits = 0;

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *wend = comma ? comma : end;
		uint8_t bit = 0;

		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (smtp_cmd_caseeq(p, (size_t)(wend - p), words[i].name, words[i].len))
				bit = words[i].bit;
		if (bit == 0)
			return SMTP_CMD_E_DSN;
		bits |= bit;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if ((bits & SMTP_DSN_NOTIFY_NEVER) && bits != SMTP_DSN_NOTIFY_NEVER)
		return SMTP_CMD_E_DSN;
	cmd->dsn_notify = bits;
	return SMTP_CMD_OK;
}

/* ORCPT= addr-type ";" xtext (RFC 3461 4.2): addr-type an atom, the
 * address not empty; at most SMTP_DSN_ORCPT_MAX octets. 8-bit octets
 * only for the "utf-8" type (RFC 6533), as well-formed UTF-8. */
static int smtp_cmd_orcpt(struct smtp_cmd *cmd, struct smtp_slice value)
{
	const char *semi = memchr(value.p, ';', value.len);
	size_t tlen, alen;
	bool utf8;

	if (value.len > SMTP_DSN_ORCPT_MAX || semi == NULL || semi == value.p)
		return SMTP_CMD_E_DSN;
	tlen = (size_t)(semi - value.p);
	alen = value.len - tlen - 1;
	for (size_t i = 0; i < tlen; i++)
		if (!smtp_cmd_is_atext((unsigned char)value.p[i]) ||
		    (unsigned char)value.p[i] >= 0x80)
			return SMTP_CMD_E_DSN;
	utf8 = smtp_cmd_caseeq(value.p, tlen, "utf-8", 5);
	if (alen == 0 || !xtext_valid(semi + 1, alen, utf8) ||
	    (utf8 && !smtp_cmd_utf8_valid(semi + 1, alen)))
		return SMTP_CMD_E_DSN;
	cmd->orcpt = value;
	return SMTP_CMD_OK;
}

/* Act on one known parameter; value.p is NULL when no "=" was given. */
static int smtp_cmd_param_apply(struct smtp_cmd *cmd, const struct smtp_cmd_param_def *def,
				struct smtp_slice value)
{
	struct smtp_cmd_cur c;

	switch (def->id) {
	case SMTP_CMD_P_SIZE:
		c = (struct smtp_cmd_cur){ value.p, value.p + value.len };
		if (!smtp_cmd_number(&c, UINT64_MAX, &cmd->size) || c.p != c.end)
			return SMTP_CMD_E_SYNTAX;
		cmd->has_size = true;
		return SMTP_CMD_OK;
	case SMTP_CMD_P_BODY:
		if (smtp_cmd_caseeq(value.p, value.len, "7BIT", 4))
			cmd->body = SMTP_BODY_7BIT;
		else if (smtp_cmd_caseeq(value.p, value.len, "8BITMIME", 8))
			cmd->body = SMTP_BODY_8BITMIME;
		else
			return SMTP_CMD_E_PARAM;	/* e.g. BINARYMIME: not offered */
		return SMTP_CMD_OK;
	case SMTP_CMD_P_SMTPUTF8:
		cmd->smtputf8 = true;
		return SMTP_CMD_OK;
	case SMTP_CMD_P_RET:
		if (smtp_cmd_caseeq(value.p, value.len, "FULL", 4))
			cmd->dsn_ret = SMTP_DSN_RET_FULL;
		else if (smtp_cmd_caseeq(value.p, value.len, "HDRS", 4))
			cmd->dsn_ret = SMTP_DSN_RET_HDRS;
		else
			return SMTP_CMD_E_DSN;
		return SMTP_CMD_OK;
	case SMTP_CMD_P_ENVID:
		/* RFC 3461 4.4: printable ASCII, at most 100 characters. */
		if (value.len > SMTP_DSN_ENVID_MAX || !xtext_valid(value.p, value.len, false))
			return SMTP_CMD_E_DSN;
		cmd->envid = value;
		return SMTP_CMD_OK;
	case SMTP_CMD_P_NOTIFY:
		return smtp_cmd_notify(cmd, value);
	case SMTP_CMD_P_ORCPT:
		return smtp_cmd_orcpt(cmd, value);
	default:
		return SMTP_CMD_OK;
	}
}

/*
 * The parameters after a path: one or more spaces, then esmtp-keyword
 * ["=" esmtp-value], repeated. c is at the first space. A known keyword
 * given twice is a syntax error (RFC 1869 4.2).
 */
static int smtp_cmd_params_parse(struct smtp_cmd *cmd, struct smtp_cmd_cur *c, bool is_mail)
{
	unsigned seen = 0;

	while (c->p < c->end) {
		const struct smtp_cmd_param_def *def;
		struct smtp_slice key, value = { NULL, 0 };
		const char *start;
		int err;

		if (*c->p != ' ')
			return SMTP_CMD_E_SYNTAX;
		while (c->p < c->end && *c->p == ' ')
			c->p++;
		start = c->p;
		while (c->p < c->end && (smtp_cmd_is_alnum((unsigned char)*c->p) || *c->p == '-'))
			c->p++;
		if (c->p == start || *start == '-')
			return SMTP_CMD_E_SYNTAX;
		key = smtp_cmd_slice(start, c->p);
		if (c->p < c->end && *c->p == '=') {
			start = ++c->p;
			while (c->p < c->end && smtp_cmd_is_value((unsigned char)*c->p))
				c->p++;
			if (c->p == start)
				return SMTP_CMD_E_SYNTAX;
			value = smtp_cmd_slice(start, c->p);
		}
		if (c->p < c->end && *c->p != ' ')
			return SMTP_CMD_E_SYNTAX;

		def = smtp_cmd_param_find(key, is_mail);
		if (def == NULL)
			return SMTP_CMD_E_PARAM;
		if (def->value != (value.p != NULL) || (seen & (1u << def->id)))
			return SMTP_CMD_E_SYNTAX;
		seen |= 1u << def->id;
		err = smtp_cmd_param_apply(cmd, def, value);
		if (err)
			return err;
	}
	return SMTP_CMD_OK;
}

/* MAIL and RCPT after the verb: "FROM:" or "TO:", a path, parameters. */
static int smtp_cmd_args_path(struct smtp_cmd *cmd, const struct smtp_limits *lim,
			      const char *prefix, size_t plen, bool is_mail)
{
	struct smtp_cmd_cur c = { cmd->arg.p, cmd->arg.p + cmd->arg.len };
	int err;

	if (cmd->arg.len < plen || !smtp_cmd_caseeq(c.p, plen, prefix, plen))
		return SMTP_CMD_E_SYNTAX;
	c.p += plen;
	/* "MAIL FROM: <a@b>" is common enough that Postfix allows it. */
	if (c.p < c.end && *c.p == ' ')
		c.p++;
	err = smtp_cmd_path(&c, lim, is_mail, &cmd->path);
	if (err)
		return err;
	return smtp_cmd_params_parse(cmd, &c, is_mail);
}

static int smtp_cmd_args_mail(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	return smtp_cmd_args_path(cmd, lim, "FROM:", 5, true);
}

static int smtp_cmd_args_rcpt(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	return smtp_cmd_args_path(cmd, lim, "TO:", 3, false);
}

/* HELO/EHLO: the first word is the client's name; anything after it is
 * ignored, as every MTA does. The name goes into logs and the Received
 * header: no control characters (C0, DEL, C1), UTF-8 only. */
static int smtp_cmd_args_helo(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	const char *sp;
	const struct smtp_slice *d = &cmd->domain;

	(void)lim;
	if (cmd->arg.len == 0)
		return SMTP_CMD_E_SYNTAX;
	sp = memchr(cmd->arg.p, ' ', cmd->arg.len);
	cmd->domain = smtp_cmd_slice(cmd->arg.p, sp ? sp : cmd->arg.p + cmd->arg.len);
	for (uint32_t i = 0; i < d->len; i++) {
		unsigned char ch = (unsigned char)d->p[i];

		if (ch < 0x20 || ch == 0x7f ||
		    (ch == 0xc2 && i + 1 < d->len && (unsigned char)d->p[i + 1] < 0xa0))
			return SMTP_CMD_E_HELO;
	}
	if (!smtp_cmd_utf8_valid(d->p, d->len))
		return SMTP_CMD_E_HELO;
	return SMTP_CMD_OK;
}

/* BDAT chunk-size [SP "LAST"]. The size must fit an off_t, so at most
 * 2^63 - 1. */
static int smtp_cmd_args_bdat(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	struct smtp_cmd_cur c = { cmd->arg.p, cmd->arg.p + cmd->arg.len };

	(void)lim;
	if (!smtp_cmd_number(&c, (uint64_t)INT64_MAX, &cmd->chunk_size))
		return SMTP_CMD_E_SYNTAX;
	if (c.p == c.end)
		return SMTP_CMD_OK;
	if (*c.p != ' ')
		return SMTP_CMD_E_SYNTAX;
	while (c.p < c.end && *c.p == ' ')
		c.p++;
	if (!smtp_cmd_caseeq(c.p, (size_t)(c.end - c.p), "LAST", 4))
		return SMTP_CMD_E_SYNTAX;
	cmd->last = true;
	return SMTP_CMD_OK;
}

static int smtp_cmd_args_none(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	(void)lim;
	return cmd->arg.len ? SMTP_CMD_E_NOARGS : SMTP_CMD_OK;
}

static int smtp_cmd_args_any(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	(void)cmd;
	(void)lim;
	return SMTP_CMD_OK;
}

static int smtp_cmd_args_required(struct smtp_cmd *cmd, const struct smtp_limits *lim)
{
	(void)lim;
	return cmd->arg.len ? SMTP_CMD_OK : SMTP_CMD_E_SYNTAX;
}

static const struct smtp_cmd_def smtp_cmd_defs[] = {
	{ "HELO", 4, SMTP_VERB_HELO, smtp_cmd_args_helo },
	{ "EHLO", 4, SMTP_VERB_EHLO, smtp_cmd_args_helo },
	{ "MAIL", 4, SMTP_VERB_MAIL, smtp_cmd_args_mail },
	{ "RCPT", 4, SMTP_VERB_RCPT, smtp_cmd_args_rcpt },
	{ "DATA", 4, SMTP_VERB_DATA, smtp_cmd_args_none },
	{ "BDAT", 4, SMTP_VERB_BDAT, smtp_cmd_args_bdat },
	{ "RSET", 4, SMTP_VERB_RSET, smtp_cmd_args_none },
	{ "NOOP", 4, SMTP_VERB_NOOP, smtp_cmd_args_any },
	{ "QUIT", 4, SMTP_VERB_QUIT, smtp_cmd_args_none },
	{ "VRFY", 4, SMTP_VERB_VRFY, smtp_cmd_args_required },
	{ "EXPN", 4, SMTP_VERB_EXPN, smtp_cmd_args_required },
	{ "HELP", 4, SMTP_VERB_HELP, smtp_cmd_args_any },
	{ "STARTTLS", 8, SMTP_VERB_STARTTLS, smtp_cmd_args_none },
	{ "AUTH", 4, SMTP_VERB_AUTH, smtp_cmd_args_any },
};

static const struct smtp_cmd_def *smtp_cmd_lookup(const char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(smtp_cmd_defs) / sizeof(smtp_cmd_defs[0]); i++) {
		if (smtp_cmd_caseeq(p, len, smtp_cmd_defs[i].name, smtp_cmd_defs[i].len))
			return &smtp_cmd_defs[i];
	}
	return NULL;
}

int smtp_cmd_parse(const char *line, size_t len, const struct smtp_limits *lim,
		   struct smtp_cmd *cmd_r)
{
	const char *end, *nul, *verb_end, *arg;
	const struct smtp_cmd_def *def;

	memset(cmd_r, 0, sizeof(*cmd_r));
	if (len == 0)
		return SMTP_CMD_E_UNKNOWN;	/* line may then be NULL */
	end = line + len;
	while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	/* A NUL is never legal, but the verb before it is still reported so
	 * the session can count the error against the right command. */
	nul = memchr(line, '\0', (size_t)(end - line));
	verb_end = memchr(line, ' ', (size_t)((nul ? nul : end) - line));
	if (verb_end == NULL)
		verb_end = nul ? nul : end;
	def = smtp_cmd_lookup(line, (size_t)(verb_end - line));
	cmd_r->verb = def ? def->verb : SMTP_VERB_UNKNOWN;
	if (nul != NULL || (size_t)(end - line) > UINT32_MAX)
		return SMTP_CMD_E_SYNTAX;
	if (def == NULL)
		return SMTP_CMD_E_UNKNOWN;

	arg = verb_end;
	while (arg < end && *arg == ' ')
		arg++;
	cmd_r->arg = smtp_cmd_slice(arg, end);
	return def->args(cmd_r, lim);
}

const char *smtp_cmd_strerror(int err)
{
	/* SMTP_CMD_OK is not an error: asking for its text is a caller bug,
	 * answered like any other code we do not know. */
	switch (err) {
	case SMTP_CMD_E_UNKNOWN:
		return "500 5.5.1 Command unrecognized";
	case SMTP_CMD_E_SYNTAX:
		return "501 5.5.2 Syntax error in parameters or arguments";
	case SMTP_CMD_E_PARAM:
		return "555 5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented";
	case SMTP_CMD_E_PATH_LEN:
		return "501 5.1.3 Path too long";
	case SMTP_CMD_E_LOCAL_LEN:
		return "501 5.1.3 Local part too long";
	case SMTP_CMD_E_DOMAIN_LEN:
		return "501 5.1.3 Domain too long";
	case SMTP_CMD_E_ADDR:
		return "501 5.1.3 Bad address syntax";
	case SMTP_CMD_E_NOARGS:
		return "501 5.5.4 Syntax error: command takes no arguments";
	case SMTP_CMD_E_UTF8:
		return "553 5.6.7 Address is not valid UTF-8";
	case SMTP_CMD_E_HELO:
		return "501 5.5.4 Invalid HELO/EHLO name: control character or invalid UTF-8";
	case SMTP_CMD_E_DSN:
		return "501 5.5.4 Invalid DSN parameter value (RET, ENVID, NOTIFY or ORCPT)";
	default:
		return "451 4.3.0 Internal error";
	}
}

const char *smtp_cmd_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(smtp_cmd_defs) / sizeof(smtp_cmd_defs[0]); i++) {
		if (smtp_cmd_defs[i].verb == verb)
			return smtp_cmd_defs[i].name;
	}
	return "UNKNOWN";
}
