/*
 * fuzz_smtp_cmd: libFuzzer target for the SMTP command-line parser.
 *
 * The input is one command line. It is parsed under the RFC 5321 limits
 * and under small ones; every result must be a known code, every slice
 * must lie inside the line, and what the parser reports must agree with
 * the limits it was given.
 */
#include "core/wire/smtp_cmd.h"
#include "core/base/xtext.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cmd_check(bool cond)
{
	if (!cond)
		abort();
}

static void fuzz_cmd_slice(struct smtp_slice s, const char *line, size_t len)
{
	if (s.len != 0)
		fuzz_cmd_check(s.p >= line && s.p + s.len <= line + len);
}

static void fuzz_cmd_one(const char *line, size_t len, const struct smtp_limits *lim)
{
	struct smtp_cmd cmd, again;
	int err = smtp_cmd_parse(line, len, lim, &cmd);
	const char *text = smtp_cmd_strerror(err);

	fuzz_cmd_check(err <= SMTP_CMD_OK && err >= SMTP_CMD_E_DSN);
	fuzz_cmd_check(cmd.verb >= SMTP_VERB_UNKNOWN && cmd.verb < SMTP_VERB_COUNT);
	fuzz_cmd_check(text != NULL && strlen(text) > 4);
	fuzz_cmd_check(smtp_cmd_verb_name(cmd.verb) != NULL);
	fuzz_cmd_check(err != SMTP_CMD_E_UNKNOWN || cmd.verb == SMTP_VERB_UNKNOWN);
	fuzz_cmd_slice(cmd.arg, line, len);
	fuzz_cmd_slice(cmd.domain, line, len);
	fuzz_cmd_slice(cmd.path, line, len);
	fuzz_cmd_slice(cmd.envid, line, len);
	fuzz_cmd_slice(cmd.orcpt, line, len);
	fuzz_cmd_check(memchr(line, '\0', len) == NULL || err == SMTP_CMD_E_SYNTAX);

	if (err == SMTP_CMD_OK) {
		fuzz_cmd_check(cmd.verb != SMTP_VERB_UNKNOWN);
		switch (cmd.verb) {
		case SMTP_VERB_MAIL:
		case SMTP_VERB_RCPT:
			fuzz_cmd_check(cmd.path.len + 2u <= lim->path);
			fuzz_cmd_check(cmd.verb == SMTP_VERB_MAIL || cmd.path.len > 0);
			fuzz_cmd_check(smtp_cmd_utf8_valid(cmd.path.p, cmd.path.len));
			/* DSN values as RFC 3461 has them. */
			fuzz_cmd_check(cmd.envid.len <= SMTP_DSN_ENVID_MAX &&
				       xtext_valid(cmd.envid.p, cmd.envid.len, false));
			fuzz_cmd_check(cmd.orcpt.len == 0 ||
				       (cmd.orcpt.len <= SMTP_DSN_ORCPT_MAX &&
					memchr(cmd.orcpt.p, ';', cmd.orcpt.len) != NULL));
			fuzz_cmd_check(!(cmd.dsn_notify & SMTP_DSN_NOTIFY_NEVER) ||
				       cmd.dsn_notify == SMTP_DSN_NOTIFY_NEVER);
			fuzz_cmd_check(cmd.dsn_ret <= SMTP_DSN_RET_HDRS);
			fuzz_cmd_check(cmd.verb == SMTP_VERB_MAIL ||
				       (cmd.envid.len == 0 && cmd.dsn_ret == 0));
			fuzz_cmd_check(cmd.verb == SMTP_VERB_RCPT ||
				       (cmd.orcpt.len == 0 && cmd.dsn_notify == 0));
			break;
		case SMTP_VERB_HELO:
		case SMTP_VERB_EHLO:
			fuzz_cmd_check(cmd.domain.len > 0 && memchr(cmd.domain.p, ' ', cmd.domain.len) == NULL);
			/* It goes into logs and headers: UTF-8, no controls. */
			fuzz_cmd_check(smtp_cmd_utf8_valid(cmd.domain.p, cmd.domain.len));
			for (uint32_t i = 0; i < cmd.domain.len; i++)
				fuzz_cmd_check((unsigned char)cmd.domain.p[i] >= 0x20 &&
					       (unsigned char)cmd.domain.p[i] != 0x7f);
			break;
		case SMTP_VERB_BDAT:
			fuzz_cmd_check(cmd.chunk_size <= (uint64_t)INT64_MAX);
			break;
		case SMTP_VERB_DATA:
		case SMTP_VERB_RSET:
		case SMTP_VERB_QUIT:
		case SMTP_VERB_STARTTLS:
			fuzz_cmd_check(cmd.arg.len == 0);
			break;
		default:
			break;
		}
		if (cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT)
			fuzz_cmd_check(cmd.path.len == 0 && !cmd.has_size && !cmd.smtputf8);
	}

	/* Same input, same answer: the parser keeps no state. */
	fuzz_cmd_check(smtp_cmd_parse(line, len, lim, &again) == err);
	fuzz_cmd_check(again.verb == cmd.verb && again.path.p == cmd.path.p &&
		       again.path.len == cmd.path.len && again.arg.p == cmd.arg.p &&
		       again.size == cmd.size && again.chunk_size == cmd.chunk_size &&
		       again.envid.p == cmd.envid.p && again.orcpt.len == cmd.orcpt.len &&
		       again.dsn_notify == cmd.dsn_notify && again.dsn_ret == cmd.dsn_ret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smtp_limits rfc = SMTP_LIMITS_RFC5321;
	static const struct smtp_limits small = { 24, 6, 12 };
	/* An exact-size copy, so that a read past the line is caught. */
	char *line = malloc(size ? size : 1);
	struct smtp_cmd a, b;
	char *spaced;
	int err;

	memcpy(line, data, size);
	fuzz_cmd_one(line, size, &rfc);
	fuzz_cmd_one(line, size, &small);

	/* Trailing blanks never change the result. */
	spaced = malloc(size + 2);
	memcpy(spaced, line, size);
	memcpy(spaced + size, " \t", 2);
	err = smtp_cmd_parse(line, size, &rfc, &a);
	fuzz_cmd_check(smtp_cmd_parse(spaced, size + 2, &rfc, &b) == err && a.verb == b.verb &&
		       a.path.len == b.path.len && a.arg.len == b.arg.len);
	free(spaced);
	free(line);
	return 0;
}
