/*
 * smtp_server_spf.c: SPF at MAIL FROM on smtp listeners (spf_inbound),
 * for clients that are neither in relay_networks nor authenticated. The
 * check runs in the SPF pool (spf_inbound.h) while the session waits in
 * SMTP_S_SPF_WAIT with its input paused, as for a password check; the
 * MAIL reply comes when it is back: "header" mode always 250 with an
 * Authentication-Results field kept for the stored message; "refuse"
 * mode 550 5.7.23 for fail and 451 4.7.24 for temperror (RFC 7372).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/inbound/smtp_env.h"
#include "core/inbound/smtp_server.h"
#include "core/spf/spf_inbound.h"

bool smtp_spf_wanted(const struct smtp_session *s)
{
	const struct config *cfg = smtp_server_cfg(s);

	/* s_relay_ok: in relay_networks, or authenticated. */
	return s->s_env->e_ops->spf_submit != NULL && s->s_kind == CONFIG_LISTEN_SMTP &&
	       !s->s_relay_ok && config_spf_inbound_parse(cfg->spf_inbound) > CONFIG_SPF_NONE;
}

/* The result decides the MAIL reply; s_txn is the transaction. */
static void smtp_spf_apply(struct smtp_session *s, enum spf_result r, const char *why)
{
	const struct config *cfg = smtp_server_cfg(s);
	struct smtp_txn *t = s->s_txn;
	char field[768];
	int n;

	log_msg(LOG_INFO, "spf client=%s helo=%s from=<%s> result=%s (%s)", s->s_addr,
		s->s_helo ? s->s_helo : "-", t->t_sender, spf_result_name(r), why);
	if (config_spf_inbound_parse(cfg->spf_inbound) == CONFIG_SPF_REFUSE) {
		if (r == SPF_RES_FAIL) {
			smtp_server_txn_end(s);
			smtp_server_reply(s, "550 5.7.23 SPF validation failed: %s", why);
			return;
		}
		if (r == SPF_RES_TEMPERROR) {
			smtp_server_txn_end(s);
			smtp_server_reply(s, "451 4.7.24 SPF temporary error: %s", why);
			return;
		}
	}
	n = spf_auth_results(field, sizeof(field), cfg->hostname, r, t->t_sender, s->s_helo);
	if (n > 0)
		t->t_auth_results = strdup(field);
	smtp_server_reply(s, "250 2.1.0 Ok");
}

void smtp_spf_start(struct smtp_session *s)
{
	struct smtp_env *env = s->s_env;
	struct smtp_txn *t = s->s_txn;
	struct spf_job *j;

	j = spf_job_new((const struct sockaddr *)&s->s_peer, s->s_helo, t->t_sender,
			t->t_sender_len, s, smtp_spf_done);
	if (j == NULL || env->e_ops->spf_submit(env, &j->sj_work) < 0) {
		spf_job_free(&j);
		smtp_spf_apply(s, SPF_RES_TEMPERROR, "SPF checks are busy");
		return;
	}
	s->s_spf_job = j;
	s->s_state = SMTP_S_SPF_WAIT;
}

void smtp_spf_done(struct work_job *w)
{
	struct spf_job *j = (struct spf_job *)w;
	struct smtp_session *s = w->wj_owner;

	if (s == NULL) {	/* the session left meanwhile */
		spf_job_free(&j);
		return;
	}
	s->s_spf_job = NULL;
	s->s_state = SMTP_S_CMD;
	if (s->s_closing || s->s_txn == NULL) {
		spf_job_free(&j);
		return;
	}
	smtp_spf_apply(s, j->sj_result, j->sj_why);
	spf_job_free(&j);
	smtp_server_resume(s);
}

void smtp_spf_forget(struct smtp_session *s)
{
	if (s->s_spf_job != NULL) {
		s->s_spf_job->sj_work.wj_owner = NULL;	/* the job frees itself */
		s->s_spf_job = NULL;
	}
}
