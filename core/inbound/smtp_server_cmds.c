/*
 * smtp_server_cmds.c: the command table of the SMTP server and one
 * handler per verb. Each row carries the verb's flags (what state it
 * needs); a handler first checks (syntax and policy, answering the
 * error) and then acts.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bounce/bclass.h"
#include "core/sasl/auth.h"
#include "core/config/config.h"
#include "core/base/log.h"
#include "core/events/events.h"
#include "core/inbound/smtp_server.h"

#define CMD_F_NEED_HELO	0x01u	/* only after HELO/EHLO */
#define CMD_F_NEED_MAIL	0x02u	/* only inside a transaction */
#define CMD_F_NO_MAIL	0x04u	/* not inside a transaction */

#define SMTP_RCPT_OVERSHOOT 1000u	/* RCPTs past max_recipients not counted as errors */

struct smtp_cmd_row {
	unsigned flags;
	void (*act)(struct smtp_session *s, const struct smtp_cmd *cmd);
};

static bool smtp_has_8bit(const struct smtp_slice *sl)
{
	for (uint32_t i = 0; i < sl->len; i++)
		if ((unsigned char)sl->p[i] >= 0x80)
			return true;
	return false;
}

static char *smtp_strndup(const char *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

static void cmd_helo_common(struct smtp_session *s, const struct smtp_cmd *cmd, bool esmtp)
{
	const struct config *cfg = smtp_server_cfg(s);
	char *helo = smtp_strndup(cmd->domain.p, cmd->domain.len);

	if (helo == NULL) {
		smtp_server_reply(s, "451 4.3.0 Out of memory");
		return;
	}
	/* HELO/EHLO resets any transaction (RFC 5321 4.1.4). */
	smtp_server_txn_end(s);
	free(s->s_helo);
	s->s_helo = helo;
	s->s_esmtp = esmtp;
	s->s_helo_done = true;
	if (!esmtp) {
		smtp_server_reply(s, "250 %s", cfg->hostname);
		return;
	}
	{
		char auth[128] = "", mechs[96];
		bool tls = s->s_tls == NULL && s->s_env->e_ops->tls_offered(s->s_env);

		if (smtp_auth_offered(s)) {
			auth_mech_list(s->s_env->e_auth, mechs, sizeof(mechs));
			snprintf(auth, sizeof(auth), "250-AUTH %s\r\n", mechs);
		}
		smtp_server_reply(s, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n"
				  "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
				  "%s%s%s%s250 HELP",
				  cfg->hostname, (unsigned long long)cfg->max_message_size,
				  cfg->smtputf8 ? "250-SMTPUTF8\r\n" : "",
				  cfg->chunking ? "250-CHUNKING\r\n" : "",
				  tls ? "250-STARTTLS\r\n" : "", auth);
	}
}

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	cmd_helo_common(s, cmd, false);
}

static void cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	cmd_helo_common(s, cmd, true);
}

/* The parser's DSN values are stored as they are. */
static_assert(SMTP_DSN_RET_FULL == QRECORD_RET_FULL && SMTP_DSN_RET_HDRS == QRECORD_RET_HDRS &&
	      SMTP_DSN_NOTIFY_SUCCESS == QRCPT_NOTIFY_SUCCESS &&
	      SMTP_DSN_NOTIFY_FAILURE == QRCPT_NOTIFY_FAILURE &&
	      SMTP_DSN_NOTIFY_DELAY == QRCPT_NOTIFY_DELAY &&
	      SMTP_DSN_NOTIFY_NEVER == QRCPT_NOTIFY_NEVER, "DSN values of smtp_cmd and qrecord");

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct config *cfg = smtp_server_cfg(s);
	struct smtp_txn *t;

	if (s->s_kind != CONFIG_LISTEN_SMTP && s->s_auth_user == NULL) {
		smtp_server_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (cmd->smtputf8 && (!s->s_esmtp || !cfg->smtputf8)) {
		smtp_server_reply(s, "555 5.5.4 SMTPUTF8 not available");
		return;
	}
	if (smtp_has_8bit(&cmd->path) && !cmd->smtputf8) {
		smtp_server_reply(s, "553 5.6.7 Sender address needs SMTPUTF8");
		return;
	}
	if (cmd->has_size && cmd->size > cfg->max_message_size) {
		smtp_server_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->t_sender = smtp_strndup(cmd->path.p, cmd->path.len)) == NULL) {
		free(t);
		smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	if (cmd->envid.len > 0 &&
	    (t->t_envid = smtp_strndup(cmd->envid.p, cmd->envid.len)) == NULL) {
		free(t->t_sender);
		free(t);
		smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	t->t_sess = s;
	t->t_sender_len = (uint16_t)cmd->path.len;
	t->t_smtputf8 = cmd->smtputf8;
	t->t_dsn_ret = cmd->dsn_ret;
	s->s_txn = t;
	if (smtp_spf_wanted(s)) {
		smtp_spf_start(s);	/* it answers */
		return;
	}
	smtp_server_reply(s, "250 2.1.0 Ok");
}

/*
 * The suppression list, after the relay check (a refused relay is not a
 * suppressed recipient): refuse with 550 5.1.1, or take and drop, by
 * setting. True when it answered.
 */
static bool cmd_rcpt_suppressed(struct smtp_session *s, struct smtp_txn *t,
				const struct smtp_cmd *cmd)
{
	const struct config *cfg = smtp_server_cfg(s);
	int mode = config_suppression_parse(cfg->suppression);
	const char *at = strrchr(t->t_sender, '@');
	struct queue_suppress hit;
	const char *cls;
	char since[32], line[600];
	time_t added;
	int n;
	struct tm tm;

	if (mode <= CONFIG_SUPPRESSION_OFF || s->s_env->e_ops->suppressed == NULL ||
	    s->s_env->e_ops->suppressed(s->s_env, at != NULL ? at + 1 : "", cmd->path.p,
					cmd->path.len, &hit) != 1)
		return false;
	cls = bclass_name(hit.qs_class);
	added = (time_t)hit.qs_added;
	gmtime_r(&added, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_msg(LOG_INFO, "suppressed client=%s from=<%s> to=<%.*s> class=%s since=%s"
		" scope=%s action=%s", s->s_addr, t->t_sender, (int)cmd->path.len, cmd->path.p,
		cls ? cls : "other", since, hit.qs_scope_len ? "sender_domain" : "global",
		mode == CONFIG_SUPPRESSION_DROP ? "drop" : "refuse");
	if (events_on(s->s_env->e_events)) {
		struct queue_event *ev = NULL;

		if (events_suppressed(s->s_env->e_events, &ev, t->t_sender, cmd->path.p,
				      cmd->path.len, mode == CONFIG_SUPPRESSION_DROP ? "drop" :
				      "refuse", cls ? cls : "other",
				      hit.qs_scope_len ? "sender_domain" : "global") == 0)
			events_submit(s->s_env->e_events, ev);
		else
			queue_events_free(&ev);
	}
	if (mode == CONFIG_SUPPRESSION_DROP) {
		t->t_ndropped++;
		smtp_server_reply(s, "250 2.1.5 Ok");
		return true;
	}
	/* Not a client error (max_errors): a bulk injector meets many of
	 * these in one session and is right to go on. */
	n = snprintf(line, sizeof(line), "550 5.1.1 <%.*s>: recipient suppressed (%s, since %s)\r\n",
		     (int)cmd->path.len, cmd->path.p, cls ? cls : "other", since);
	if (n > (int)sizeof(line) - 1)
		n = snprintf(line, sizeof(line), "550 5.1.1 recipient suppressed (%s, since %s)\r\n",
			     cls ? cls : "other", since);
	smtp_server_out(s, line, (size_t)n);
	return true;
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct config *cfg = smtp_server_cfg(s);
	struct smtp_txn *t = s->s_txn;
	struct qrcpt *rc;

	if (t->t_nrcpt >= cfg->max_recipients) {
		/*
		 * A client may send more and must take 452 as "send these
		 * later" (RFC 5321 4.5.3.1.10): not an error, or max_errors
		 * would close the session and lose the accepted ones. Like
		 * Postfix's smtpd_recipient_overshoot_limit, only an excess
		 * beyond SMTP_RCPT_OVERSHOOT counts.
		 */
		static const char over[] = "452 4.5.3 Error: too many recipients\r\n";

		if (t->t_overshoot < SMTP_RCPT_OVERSHOOT) {
			t->t_overshoot++;
			smtp_server_out(s, over, sizeof(over) - 1);
			return;
		}
		smtp_server_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (!s->s_relay_ok) {
		log_msg(LOG_INFO, "relay-denied client=%s to=<%.*s>", s->s_addr,
			(int)cmd->path.len, cmd->path.p);
		smtp_server_reply(s, "554 5.7.1 <%.*s>: Relay access denied",
				  (int)cmd->path.len, cmd->path.p);
		return;
	}
	if (smtp_has_8bit(&cmd->path) && !t->t_smtputf8) {
		smtp_server_reply(s, "553 5.6.7 Recipient address needs SMTPUTF8");
		return;
	}
	if (cmd_rcpt_suppressed(s, t, cmd))
		return;		/* answered */
	if (t->t_nrcpt == t->t_rcpt_cap) {
		uint32_t cap = t->t_rcpt_cap ? t->t_rcpt_cap * 2 : 4;
		struct qrcpt *n = realloc(t->t_rcpts, cap * sizeof(*n));

		if (n == NULL) {
			smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
			return;
		}
		t->t_rcpts = n;
		t->t_rcpt_cap = cap;
	}
	rc = &t->t_rcpts[t->t_nrcpt];
	memset(rc, 0, sizeof(*rc));
	rc->addr = smtp_strndup(cmd->path.p, cmd->path.len);
	if (rc->addr == NULL) {
		smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	rc->addr_len = (uint16_t)cmd->path.len;
	if (cmd->orcpt.len > 0) {
		rc->orcpt = smtp_strndup(cmd->orcpt.p, cmd->orcpt.len);
		if (rc->orcpt == NULL) {
			free((char *)rc->addr);
			smtp_server_reply(s, "452 4.3.1 Insufficient system storage");
			return;
		}
		rc->orcpt_len = (uint16_t)cmd->orcpt.len;
	}
	rc->notify = cmd->dsn_notify;
	rc->state = QRCPT_PENDING;
	t->t_nrcpt++;
	smtp_server_reply(s, "250 2.1.5 Ok");
}

static bool cmd_need_rcpt(struct smtp_session *s)
{
	if (s->s_txn->t_nrcpt > 0 || s->s_txn->t_ndropped > 0)
		return true;
	smtp_server_reply(s, "554 5.5.1 Error: no valid recipients");
	return false;
}

static void cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->s_txn->t_bdat) {
		smtp_server_reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (!cmd_need_rcpt(s))
		return;
	smtp_server_data_start(s, SMTP_DATA_DOT);
	s->s_state = SMTP_S_DATA;
	smtp_server_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * BDAT: the chunk's octets follow the command whatever we answer, so a
 * refused chunk is still read, and discarded (RFC 3030 section 3).
 */
static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const struct config *cfg = smtp_server_cfg(s);
	struct smtp_txn *t = s->s_txn;
	const char *err = NULL;

	if (!cfg->chunking)
		err = "502 5.5.1 Error: BDAT not enabled";
	else if (!s->s_helo_done)
		err = "503 5.5.1 Error: send HELO/EHLO first";
	else if (t == NULL)
		err = "503 5.5.1 Error: need MAIL command";
	else if (t->t_nrcpt == 0 && t->t_ndropped == 0)
		err = "554 5.5.1 Error: no valid recipients";
	if (err != NULL) {
		if (cmd->chunk_size == 0) {
			smtp_server_reply(s, "%s", err);
			return;
		}
		/* Read and drop the chunk; answer after it. */
		if (t == NULL) {
			t = calloc(1, sizeof(*t));
			if (t == NULL) {
				smtp_server_reply(s, "421 4.3.0 Out of memory");
				smtp_server_close(s, "out of memory");
				return;
			}
			t->t_sess = s;
			t->t_sender = smtp_strndup("", 0);
			s->s_txn = t;
		}
		t->t_bdat_discard = true;
		t->t_bdat_left = cmd->chunk_size;
		t->t_bdat_last = true;
		s->s_skip_reply = err;
		s->s_state = SMTP_S_BDAT;
		return;
	}
	t->t_bdat = true;
	t->t_bdat_last = cmd->last;
	t->t_bdat_left = cmd->chunk_size;
	smtp_server_data_start(s, SMTP_DATA_RAW);
	if (cmd->chunk_size == 0) {
		smtp_server_bdat_done(s);
		return;
	}
	s->s_state = SMTP_S_BDAT;
}

void smtp_server_bdat_done(struct smtp_session *s)
{
	struct smtp_txn *t = s->s_txn;

	s->s_state = SMTP_S_CMD;
	if (t->t_bdat_discard) {
		const char *err = s->s_skip_reply;

		/* A refused chunk inside a real transaction ends it. */
		smtp_server_txn_end(s);
		smtp_server_reply(s, "%s", err);
		return;
	}
	if (t->t_bdat_last) {
		smtp_server_message_done(s);
		return;
	}
	smtp_server_reply(s, "250 2.0.0 %llu octets received",
			  (unsigned long long)s->s_data.size);
}

static void cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_txn_end(s);
	smtp_server_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_reply(s, "221 2.0.0 Bye");
	smtp_server_close(s, "quit");
}

static void cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
			  "and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_reply(s, "502 5.5.1 Error: EXPN not supported");
}

static void cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_server_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET "
			  "NOOP QUIT VRFY HELP; see RFC 5321");
}

static void cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_starttls_command(s, cmd);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_auth_command(s, cmd);
}

static const struct smtp_cmd_row smtp_cmd_table[SMTP_VERB_COUNT] = {
	[SMTP_VERB_HELO] = { 0, cmd_helo },
	[SMTP_VERB_EHLO] = { 0, cmd_ehlo },
	[SMTP_VERB_MAIL] = { CMD_F_NEED_HELO | CMD_F_NO_MAIL, cmd_mail },
	[SMTP_VERB_RCPT] = { CMD_F_NEED_HELO | CMD_F_NEED_MAIL, cmd_rcpt },
	[SMTP_VERB_DATA] = { CMD_F_NEED_HELO | CMD_F_NEED_MAIL, cmd_data },
	[SMTP_VERB_BDAT] = { 0, cmd_bdat },	/* checks its own state */
	[SMTP_VERB_RSET] = { 0, cmd_rset },
	[SMTP_VERB_NOOP] = { 0, cmd_noop },
	[SMTP_VERB_QUIT] = { 0, cmd_quit },
	[SMTP_VERB_VRFY] = { 0, cmd_vrfy },
	[SMTP_VERB_EXPN] = { 0, cmd_expn },
	[SMTP_VERB_HELP] = { 0, cmd_help },
	[SMTP_VERB_STARTTLS] = { CMD_F_NO_MAIL, cmd_starttls },
	[SMTP_VERB_AUTH] = { 0, cmd_auth },
};

void smtp_server_command(struct smtp_session *s, const char *line, size_t len)
{
	static const struct smtp_limits lim = SMTP_LIMITS_RFC5321;
	const struct smtp_cmd_row *row;
	struct smtp_cmd cmd;
	int rc;

	rc = smtp_cmd_parse(line, len, &lim, &cmd);
	if (rc != SMTP_CMD_OK) {
		/* BDAT with a bad size cannot be framed: the stream is lost. */
		if (cmd.verb == SMTP_VERB_BDAT) {
			smtp_server_reply(s, "%s", smtp_cmd_strerror(rc));
			smtp_server_reply(s, "421 4.5.0 %s Error: cannot continue after bad BDAT",
					  smtp_server_cfg(s)->hostname);
			smtp_server_close(s, "bad BDAT");
			return;
		}
		smtp_server_reply(s, "%s", smtp_cmd_strerror(rc));
		return;
	}
	row = &smtp_cmd_table[cmd.verb];
	if (row->act == NULL) {
		smtp_server_reply(s, "%s", smtp_cmd_strerror(SMTP_CMD_E_UNKNOWN));
		return;
	}
	if ((row->flags & CMD_F_NEED_HELO) && !s->s_helo_done) {
		smtp_server_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if ((row->flags & CMD_F_NEED_MAIL) && s->s_txn == NULL) {
		smtp_server_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if ((row->flags & CMD_F_NO_MAIL) && s->s_txn != NULL) {
		smtp_server_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	row->act(s, &cmd);
}
