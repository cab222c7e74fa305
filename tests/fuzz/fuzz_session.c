/*
 * fuzz_session: libFuzzer target that drives whole inbound SMTP sessions
 * (core/inbound) with the client's bytes split at random points, in the
 * manner of Dovecot's fuzz-smtp-server. The session runs on an
 * environment (struct smtp_env) that this driver builds: its ops collect
 * the messages handed to the queue and the password checks handed to the
 * auth pool, which the driver runs itself between receives, and give
 * queue ids from a counter, a fixed date and the driver's TLS context;
 * AUTH failures never block. Its connection is an io_conn on the
 * stand-ins of session_env.c: no io_uring, no sockets, no threads.
 *
 * Signing: with byte 1's bit 0 set, a DKIM key table is loaded (one
 * Ed25519 key for fuzz.example, with RFC 8058 fields); the signing jobs
 * the session hands over are run by the driver between receives, like
 * password checks, so a client may leave while its message is signed.
 * Byte 1's bits 1-2 pick dkim_no_key_action, bit 3 dmarc_unaligned_action.
 *
 * Input: byte 0 picks the set-up, byte 1 seeds the split points (and the
 * signing settings), the rest is what the client sends.
 *   byte 0 bits 0-1  listener: 0/3 MTA port (STARTTLS), 1 submission
 *                    (587, STARTTLS), 2 submissions (465, implicit TLS)
 *          bit 2     queue commits fail (-EIO), as on a broken disk
 *          bit 3     the client is outside relay_networks (192.0.2.1)
 *          bit 4     the session ends with a timeout, not an EOF
 *          bit 5     greeting delay: the client may talk first
 *          bit 6     commits return before the next receive (else: only
 *                    after every second receive, so input queues up)
 *          bit 7     a slow reader: the client reads the replies only now
 *                    and then, so unsent output builds up (back-pressure)
 * Once the session has accepted STARTTLS (or from the start on 465), the
 * driver becomes a real TLS client (BoringSSL, in memory): it completes
 * the handshake and sends the rest of the input encrypted, still split at
 * random points; replies are decrypted again. AUTH PLAIN/LOGIN/CRAM-MD5
 * work against one account ("fuzz", password "pw") and are offered in
 * cleartext (auth_plaintext_loopback) to a loopback client.
 * spf_inbound is "refuse": MAIL from a client outside relay_networks
 * waits for an SPF check that the driver answers between receives, with
 * a result picked by the sender's length (pass, fail, temperror...),
 * never with DNS.
 *
 * Shaping rules are loaded with one pool, "p1", and the pool header
 * "X-Pool": a message may name p1, an unknown pool (refused) or none.
 *
 * Checks, whatever the input: no crash, leak or use after free (the
 * sanitizers); every reply line the client reads is "ddd" then ' ' or '-'
 * with the first digit 2-5; every message the session hands to the queue
 * has at least one recipient and body bytes that can all be read (ASan),
 * and its strip range, when it has one, lies inside it and starts with
 * the pool header's name;
 * every buffer is freed when the session is gone; a successful commit gets
 * exactly one "250 2.0.0 Ok: queued" reply; a session that stopped
 * receiving (io_conn_pause) starts again once its replies were read and its
 * commits returned, and never holds more than 256 KiB of unread replies
 * beyond one receive's worth; when it is gone it has left the env's
 * session list, count and open-sessions counter as it found them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/config/config.h"
#include "core/dkim/dkim_table.h"
#include "core/inbound/smtp_env.h"
#include "core/inbound/smtp_server.h"
#include "core/shaping/shp_holder.h"
#include "core/shaping/shp_rules.h"
#include "core/sasl/auth.h"
#include "core/sasl/auth_pool.h"
#include "core/spf/spf_inbound.h"
#include "io/bufpool.h"
#include "queue/queue.h"
#include "tests/fuzz/session_env.h"
#include "tls/tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config fz_cfg;
static struct tls_ctx *fz_tls_server, *fz_tls_client;
static struct dkim_table *fz_dkim;	/* the key table */
static bool fz_signing;			/* this run signs */

/* The session's environment and what its ops collected; one session at a
 * time. */
static struct fz_env {
	struct smtp_env env;		/* first: the ops' env is this */
	struct bufpool bufs;		/* only the counts session_env.c keeps */
	uint64_t next_id;
	unsigned sessions_gone;
	struct queue_msg *pending, *pending_tail;	/* submitted, not returned */
	struct work_job *auth_pending, *auth_tail;	/* password checks to run */
	struct work_job *sign_pending, *sign_tail;	/* signing jobs to run */
} fz;

static struct fz_env *fz_of(struct smtp_env *env)
{
	return (struct fz_env *)env;	/* env is the first member */
}

static void fz_die(const char *what)
{
	fprintf(stderr, "fuzz_session: %s\n", what);
	exit(1);
}

static void fz_check(bool cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_session: check failed: %s\n", what);
		abort();
	}
}

/* A throwaway self-signed P-256 certificate for the server context. */
static void fz_make_cert(const char *cert_path, const char *key_path)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY *pk = NULL;
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	if (kc == NULL || x == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) != 1 ||
	    EVP_PKEY_keygen(kc, &pk) != 1)
		fz_die("key");
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) || !X509_set_pubkey(x, pk) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const uint8_t *)"mx.fuzz.invalid", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_sign(x, pk, EVP_sha256()))
		fz_die("certificate");
	f = fopen(cert_path, "w");
	if (f == NULL || !PEM_write_X509(f, x))
		fz_die("cert file");
	fclose(f);
	f = fopen(key_path, "w");
	if (f == NULL || !PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL))
		fz_die("key file");
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
}

/* The env's ops: the queue and the auth pool are lists the driver
 * empties (fz_commit). */
/* Suppressed recipients: local part starting "sup" (any case). */
static bool fz_suppressed_addr(const char *a, size_t len)
{
	return len >= 3 && strncasecmp(a, "sup", 3) == 0;
}

static int fz_env_suppressed(struct smtp_env *env, const char *sender_domain, const char *rcpt,
			     size_t len, struct queue_suppress *hit_r)
{
	(void)env;
	(void)sender_domain;
	if (!fz_suppressed_addr(rcpt, len))
		return 0;
	memset(hit_r, 0, sizeof(*hit_r));
	hit_r->qs_class = 1;
	hit_r->qs_added = 1700000000;
	return 1;
}

static void fz_env_submit(struct smtp_env *env, struct queue_msg *m)
{
	struct fz_env *f = fz_of(env);
	struct qrcpt *rc = (struct qrcpt *)m->qm_rec.rcpts;

	/* With suppression on, a suppressed recipient is never queued, and
	 * a message is never queued without recipients. */
	if (m->qm_rec.nrcpt == 0)
		fz_die("a message without recipients was queued");
	for (uint32_t i = 0; fz_cfg.suppression[0] != 'o' && i < m->qm_rec.nrcpt; i++)
		if (fz_suppressed_addr(rc[i].addr, rc[i].addr_len))
			fz_die("a suppressed recipient was queued");
	/* DSN parameters are stored only as RFC 3461 allows them. */
	if (m->qm_rec.envid_len > SMTP_DSN_ENVID_MAX || m->qm_rec.dsn_ret > QRECORD_RET_HDRS)
		fz_die("a bad RET or ENVID was queued");
	for (uint32_t i = 0; i < m->qm_rec.nrcpt; i++)
		if (rc[i].orcpt_len > SMTP_DSN_ORCPT_MAX ||
		    ((rc[i].notify & QRCPT_NOTIFY_NEVER) && rc[i].notify != QRCPT_NOTIFY_NEVER))
			fz_die("a bad NOTIFY or ORCPT was queued");
	m->qm_sink = NULL;
	m->qm_next = NULL;
	if (f->pending_tail != NULL)
		f->pending_tail->qm_next = m;
	else
		f->pending = m;
	f->pending_tail = m;
}

/* Append j to a list of jobs the driver runs (fz_commit). */
static int fz_jobs_add(struct work_job **head, struct work_job **tail, struct work_job *j)
{
	j->wj_sink = NULL;
	j->wj_next = NULL;
	if (*tail != NULL)
		(*tail)->wj_next = j;
	else
		*head = j;
	*tail = j;
	return 0;
}

static int fz_env_auth_submit(struct smtp_env *env, struct work_job *j)
{
	struct fz_env *f = fz_of(env);

	return fz_jobs_add(&f->auth_pending, &f->auth_tail, j);
}

static struct dkim_table *fz_env_sign_table(struct smtp_env *env)
{
	(void)env;
	return fz_signing ? dkim_table_ref(fz_dkim) : NULL;
}

static int fz_env_sign_submit(struct smtp_env *env, struct work_job *j)
{
	struct fz_env *f = fz_of(env);

	return fz_jobs_add(&f->sign_pending, &f->sign_tail, j);
}

/* An Ed25519 key (cheap to sign with) and a table naming it. */
static void fz_make_dkim(const char *dir)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *pk = NULL;
	char key[600], table[600], err[600];
	FILE *f;

	snprintf(key, sizeof(key), "%s/dkim.pem", dir);
	snprintf(table, sizeof(table), "%s/dkim.ini", dir);
	if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 || EVP_PKEY_keygen(kc, &pk) != 1)
		fz_die("dkim key");
	f = fopen(key, "w");
	if (f == NULL || !PEM_write_PKCS8PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL))
		fz_die("dkim key file");
	fclose(f);
	chmod(key, 0600);
	f = fopen(table, "w");
	if (f == NULL)
		fz_die("dkim table");
	fprintf(f, "[fuzz.example]\nkeys = ed:%s\nunsubscribe_url = https://u.fuzz.example/"
		"{rcpt}/{queue_id}\nunsubscribe_mailto = u@fuzz.example\n", key);
	fclose(f);
	if (dkim_table_load(&fz_dkim, table, err, sizeof(err)) != 0)
		fz_die(err);
	unlink(key);
	unlink(table);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(kc);
}

/* An SPF check without DNS: the result follows from the input (the
 * sender's length), so that a run can be replayed. */
static void fz_spf_run(struct work_job *w)
{
	struct spf_job *j = (struct spf_job *)w;

	j->sj_result = (enum spf_result)(strlen(j->sj_from) % (SPF_RES_PERMERROR + 1));
	snprintf(j->sj_why, sizeof(j->sj_why), "fuzz result for <%.100s>", j->sj_from);
}

/* SPF checks wait in the password checks' list and run the same way. */
static int fz_env_spf_submit(struct smtp_env *env, struct work_job *j)
{
	j->wj_run = fz_spf_run;
	return fz_env_auth_submit(env, j);
}

static uint64_t fz_env_next_id(struct smtp_env *env)
{
	return ++fz_of(env)->next_id;
}

static const char *fz_env_date(struct smtp_env *env)
{
	(void)env;
	return "Fri, 04 Dec 2026 12:00:00 +0000";
}

static bool fz_env_tls_offered(struct smtp_env *env)
{
	(void)env;
	return fz_tls_server != NULL;
}

static struct tls_ctx *fz_env_tls_server(struct smtp_env *env)
{
	(void)env;
	return fz_tls_server != NULL ? tls_ctx_ref(fz_tls_server) : NULL;
}

static bool fz_env_auth_blocked(struct smtp_env *env, const struct sockaddr *peer,
				uint64_t now)
{
	(void)env;
	(void)peer;
	(void)now;
	return false;
}

static void fz_env_auth_failed(struct smtp_env *env, const struct sockaddr *peer,
			       uint64_t now)
{
	(void)env;
	(void)peer;
	(void)now;
}

static void fz_env_session_gone(struct smtp_env *env, const struct sockaddr *peer)
{
	(void)peer;
	fz_of(env)->sessions_gone++;
}

static const struct smtp_env_ops fz_env_ops = {
	.submit = fz_env_submit,
	.auth_submit = fz_env_auth_submit,
	.spf_submit = fz_env_spf_submit,
	.sign_table = fz_env_sign_table,
	.sign_submit = fz_env_sign_submit,
	.next_id = fz_env_next_id,
	.date = fz_env_date,
	.tls_offered = fz_env_tls_offered,
	.tls_server = fz_env_tls_server,
	.auth_blocked = fz_env_auth_blocked,
	.auth_failed = fz_env_auth_failed,
	.session_gone = fz_env_session_gone,
	.suppressed = fz_env_suppressed,
};

/* Shaping rules with one pool and a pool header, in a holder. */
static void fz_make_rules(const char *dir, struct shp_holder **h_r)
{
	char path[600], err[2048];
	const char *files[1] = { path };
	struct shp_rules *r = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/shaping.yaml", dir);
	f = fopen(path, "w");
	if (f == NULL)
		fz_die("rules file");
	fputs("sources:\n  s1: {address: 127.0.0.2}\npools:\n  p1: {sources: [s1]}\n"
	      "pool_header: X-Pool\n", f);
	fclose(f);
	if (shp_rules_load(&r, false, files, 1, err, sizeof(err)) != 0)
		fz_die(err);
	if (shp_holder_new(h_r, r) != 0)
		fz_die("rules holder");
	unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512], passwd[600], cert[600], key[600], err[512];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	struct auth_config ac = { .hostname = "mx.fuzz.invalid" };
	struct auth_db *adb = NULL;
	FILE *f;

	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_SESSION_LOG") != NULL ? LOG_DEBUG : LOG_ERROR);
	snprintf(dir, sizeof(dir), "%s/fuzz_session.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || cd == NULL)
		fz_die("mkdtemp");
	snprintf(passwd, sizeof(passwd), "%s/passwd", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);

	/* sha256crypt with the fewest rounds: cheap enough to run often. */
	if (crypt_gensalt_rn("$5$", 1000, NULL, 0, setting, sizeof(setting)) == NULL)
		fz_die("crypt_gensalt_rn");
	f = fopen(passwd, "w");
	if (f == NULL)
		fz_die("passwd");
	fprintf(f, "fuzz:%s:cram-md5=secret\n", crypt_r("pw", setting, cd));
	fclose(f);
	free(cd);
	fz_make_cert(cert, key);
	fz_make_dkim(dir);

	config_defaults(&fz_cfg);
	if (config_set(&fz_cfg, "hostname", "mx.fuzz.invalid", err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "listen", "127.0.0.1:25, 127.0.0.1:587/submission, "
		       "127.0.0.1:465/submissions", err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "tls_cert_file", cert, err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "tls_key_file", key, err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "auth_passwd_file", passwd, err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "auth_plaintext_loopback", "yes", err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "max_message_size", "200000", err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "max_recipients", "100", err, sizeof(err)) != 0 ||
	    config_set(&fz_cfg, "spf_inbound", "refuse", err, sizeof(err)) != 0)
		fz_die(err);
	ac.passwd_file = passwd;
	if (auth_db_load(&adb, &ac, err, sizeof(err)) != 0)
		fz_die(err);
	if (tls_ctx_server_new(&fz_tls_server, cert, key, err, sizeof(err)) != 0 ||
	    tls_ctx_client_new(&fz_tls_client, NULL, err, sizeof(err)) != 0)
		fz_die(err);
	fz_make_rules(dir, &fz.env.e_rules);
	unlink(passwd);
	unlink(cert);
	unlink(key);
	rmdir(dir);

	fz.bufs.bp_size = 4096;
	fz.bufs.bp_max = 64;
	fz.env.e_ops = &fz_env_ops;
	fz.env.e_cfg = &fz_cfg;
	fz.env.e_auth = adb;
	fz.env.e_loop = NULL;		/* session_env's io_conn_start keeps it only */
	fz.env.e_bufs = &fz.bufs;
	return 0;
}

/* One run's state. */
struct fz_run {
	const uint8_t *in;		/* the client's bytes not sent yet */
	size_t in_len;
	uint32_t rng;
	bool fail_commits;
	bool commit_every_recv;
	bool slow_reader;
	unsigned recvs;
	bool gone;			/* on_free called: the session is not ours */
	struct smtp_session *s;
	struct tls_conn client;		/* when the client speaks TLS */
	bool tls;
	char *plain;			/* replies as the client reads them */
	size_t plain_len, plain_cap, plain_checked;
	unsigned queued_ok;		/* commits that succeeded */
};

static uint32_t fz_rand(struct fz_run *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 17;
	r->rng ^= r->rng << 5;
	return r->rng;
}

/* Where the next split falls: mostly small pieces, sometimes big ones. */
static size_t fz_piece(struct fz_run *r, size_t left)
{
	uint32_t x = fz_rand(r);
	size_t n = (x & 3) == 0 ? 1 + (x >> 8) % 8192 : 1 + (x >> 8) % 64;

	return n < left ? n : left;
}

static void fz_plain_add(struct fz_run *r, const char *p, size_t n)
{
	if (r->plain_len + n > r->plain_cap) {
		r->plain_cap = (r->plain_cap + n) * 2;
		r->plain = realloc(r->plain, r->plain_cap);
		if (r->plain == NULL)
			abort();
	}
	memcpy(r->plain + r->plain_len, p, n);
	r->plain_len += n;
}

/* Every complete reply line the client has read is well formed. */
static void fz_check_replies(struct fz_run *r)
{
	while (r->plain_checked < r->plain_len) {
		const char *p = r->plain + r->plain_checked;
		size_t left = r->plain_len - r->plain_checked;
		const char *nl = memchr(p, '\n', left);
		size_t n;

		if (nl == NULL)
			return;
		n = (size_t)(nl - p) + 1;
		fz_check(n >= 6 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
			 p[2] >= '0' && p[2] <= '9' && (p[3] == ' ' || p[3] == '-') &&
			 p[n - 2] == '\r', "reply line form");
		if (n > 22 && memcmp(p, "250 2.0.0 Ok: queued as", 23) == 0)
			fz_check(r->queued_ok-- > 0, "a 250 queued for each commit");
		r->plain_checked += n;
	}
}

/* The client reads what the session wrote: through the TLS client, or
 * straight; then the loop reports the output drained. */
static void fz_pull_output(struct fz_run *r)
{
	char buf[16384];
	int n;

	if (session_env.out_len == 0)
		return;
	fz_check(session_env.out_len <= 512 * 1024, "unread replies stay bounded");
	if (!r->tls) {
		fz_plain_add(r, session_env.out, session_env.out_len);
	} else {
		if (tls_conn_feed(&r->client, session_env.out, session_env.out_len) < 0)
			abort();
		while ((n = tls_conn_read(&r->client, buf, sizeof(buf))) > 0)
			fz_plain_add(r, buf, (size_t)n);
	}
	session_env.out_len = 0;
	session_env.conn->ic_olen = 0;
	fz_check_replies(r);
	if (!r->gone && session_env.conn->ic_ops->on_drained != NULL)
		session_env.conn->ic_ops->on_drained(session_env.conn);
}

/* After a callback: a slow reader reads only now and then. */
static void fz_maybe_pull(struct fz_run *r)
{
	if (!r->slow_reader || (fz_rand(r) & 7) == 0)
		fz_pull_output(r);
}

/* Run the jobs of one list, as a pool would, and hand each back. */
static void fz_run_jobs(struct fz_run *r, struct work_job **head, struct work_job **tail)
{
	struct work_job *j;

	while ((j = *head) != NULL) {
		*head = j->wj_next;
		if (*head == NULL)
			*tail = NULL;
		j->wj_cancelled = false;
		j->wj_run(j);
		j->wj_done(j);	/* a signature may submit the message or free the session */
		fz_maybe_pull(r);
	}
}

/* Messages handed to the queue come back, committed or failed; password
 * checks and signing jobs handed to the pools come back with their result. */
/* The strip range of m (the pool header field) is inside the message and
 * starts with the header's name, in any case. */
static void fz_check_strip(const struct queue_msg *m)
{
	uint64_t off = m->qm_rec.strip_off, at = 0;
	char name[6];
	size_t got = 0;

	if (m->qm_rec.strip_len == 0)
		return;
	for (unsigned i = 0; i < m->qm_iovcnt; i++) {
		const char *b = m->qm_iov[i].iov_base;

		for (size_t k = 0; k < m->qm_iov[i].iov_len; k++, at++)
			if (at >= off && got < sizeof(name))
				name[got++] = b[k];
	}
	fz_check(off + m->qm_rec.strip_len <= at, "the strip range is inside the message");
	fz_check(got == sizeof(name) && strncasecmp(name, "X-Pool", sizeof(name)) == 0,
		 "the strip range starts with the pool header");
}

static void fz_commit(struct fz_run *r)
{
	struct queue_msg *m;

again:
	fz_run_jobs(r, &fz.sign_pending, &fz.sign_tail);
	fz_run_jobs(r, &fz.auth_pending, &fz.auth_tail);

	while ((m = fz.pending) != NULL) {
		uint64_t sum = 0;

		fz.pending = m->qm_next;
		if (fz.pending == NULL)
			fz.pending_tail = NULL;
		fz_check(m->qm_rec.nrcpt > 0, "a queued message has recipients");
		for (unsigned i = 0; i < m->qm_iovcnt; i++)
			for (size_t k = 0; k < m->qm_iov[i].iov_len; k++)
				sum += ((const uint8_t *)m->qm_iov[i].iov_base)[k];
		(void)sum;
		fz_check_strip(m);
		m->qm_status = r->fail_commits ? -EIO : 0;
		if (!r->fail_commits && !r->gone)
			r->queued_ok++;
		smtp_server_committed(m);
		fz_maybe_pull(r);
	}
	if (fz.auth_pending != NULL || fz.sign_pending != NULL)
		goto again;
}

/* The loop frees a closed connection once no operation is in flight
 * (here: once the client has read what was written). */
static void fz_after_callback(struct fz_run *r)
{
	if (session_env.conn->ic_flags & IO_CONN_F_CLOSING)
		fz_pull_output(r);
	else
		fz_maybe_pull(r);
	if (!r->gone && (session_env.conn->ic_flags & IO_CONN_F_CLOSING)) {
		r->gone = true;
		session_env.conn->ic_ops->on_free(session_env.conn);
	}
}

/* Hand n bytes to the session as one receive. */
static void fz_recv(struct fz_run *r, const void *p, size_t n)
{
	struct io_buf *b;

	while (n > 0 && !r->gone) {
		size_t k = n < fz.bufs.bp_size ? n : fz.bufs.bp_size;

		if (session_env.paused) {
			/* Receiving stopped: the client's replies and the
			 * commits are what can start it again. */
			for (int i = 0; i < 16 && !r->gone && session_env.paused; i++) {
				fz_commit(r);
				fz_pull_output(r);
			}
			if (r->gone)
				break;
			fz_check(!session_env.paused, "a paused session resumes");
		}
		b = bufpool_alloc(&fz.bufs);
		if (b == NULL)
			abort();
		memcpy(b->ib_data, p, k);
		session_env.conn->ic_ops->on_recv(session_env.conn, b, k);
		bufpool_unref(&fz.bufs, b);
		fz_after_callback(r);
		p = (const char *)p + k;
		n -= k;
		if (r->commit_every_recv || (++r->recvs & 1) == 0)
			fz_commit(r);
	}
}

/* Send what the TLS client produced, split at random points. */
static void fz_send_cipher(struct fz_run *r)
{
	char buf[16384];
	size_t n;

	while (!r->gone && (n = tls_conn_take(&r->client, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		while (off < n && !r->gone) {
			size_t k = fz_piece(r, n - off);

			fz_recv(r, buf + off, k);
			off += k;
		}
	}
}

/* The session accepted STARTTLS (or is on 465): become a TLS client. */
static void fz_start_tls(struct fz_run *r)
{
	char buf[16384];

	if (tls_conn_init(&r->client, fz_tls_client, false, "mx.fuzz.invalid", NULL) != 0)
		abort();
	r->tls = true;
	r->plain_checked = r->plain_len;	/* a new stream of replies */
	for (int round = 0; round < 8 && !r->gone && !r->client.tc_done &&
			    !r->client.tc_failed; round++) {
		int n = tls_conn_read(&r->client, buf, sizeof(buf));

		if (n > 0)
			fz_plain_add(r, buf, (size_t)n);
		fz_send_cipher(r);
	}
}

static bool fz_session_in_tls(const struct fz_run *r)
{
	return !r->gone && r->s->s_tls != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_run r;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	unsigned listener;
	uint8_t flags;

	if (size < 2)
		return 0;
	memset(&r, 0, sizeof(r));
	flags = data[0];
	r.rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | data[1]);
	r.in = data + 2;
	r.in_len = size - 2;
	r.fail_commits = (flags & 4) != 0;
	r.commit_every_recv = (flags & 64) != 0;
	r.slow_reader = (flags & 128) != 0;
	listener = (flags & 3) == 3 ? 0 : flags & 3;
	peer.sin_addr.s_addr = htonl((flags & 8) ? 0xc0000201u : 0x7f000001u);
	fz_cfg.greeting_delay = (flags & 32) ? 500 : 0;
	{
		static const char *const sup[] = { "refuse", "drop", "off", "drop" };
		char err[200];

		if (config_set(&fz_cfg, "suppression", sup[(data[1] >> 4) & 3], err,
			       sizeof(err)) != 0)
			fz_die(err);
	}
	fz_signing = (data[1] & 1) != 0;
	if (fz_signing) {
		static const char *const nk[] = { "unsigned", "defer", "reject", "unsigned" };
		char err[200];

		if (config_set(&fz_cfg, "dkim_no_key_action", nk[(data[1] >> 1) & 3], err,
			       sizeof(err)) != 0 ||
		    config_set(&fz_cfg, "dmarc_unaligned_action", (data[1] & 8) ? "reject" : "accept",
			       err, sizeof(err)) != 0)
			fz_die(err);
	}

	session_env_reset();
	fz.next_id = 0;
	fz.sessions_gone = 0;
	fz.pending = fz.pending_tail = NULL;
	fz.auth_pending = fz.auth_tail = NULL;
	fz.sign_pending = fz.sign_tail = NULL;
	r.s = smtp_server_start(&fz.env, -1, (const struct sockaddr *)&peer, sizeof(peer),
				listener);
	if (r.s == NULL)
		return 0;
	fz_after_callback(&r);
	if (!r.gone && r.s->s_state == SMTP_S_GREET && (flags & 32)) {
		/* The client talks first, then the delay ends. */
		size_t k = fz_piece(&r, r.in_len);

		fz_recv(&r, r.in, k);
		r.in += k;
		r.in_len -= k;
		if (!r.gone) {
			session_env.conn->ic_ops->on_delay(session_env.conn);
			fz_after_callback(&r);
		}
	}
	while (!r.gone) {
		if (!r.tls && fz_session_in_tls(&r))
			fz_start_tls(&r);
		if (r.in_len == 0 || r.gone)
			break;
		{
			size_t k = fz_piece(&r, r.in_len);

			if (r.tls) {
				if (!r.client.tc_done)
					break;
				if (tls_conn_write(&r.client, r.in, k) != 0)
					abort();
				fz_send_cipher(&r);
			} else {
				fz_recv(&r, r.in, k);
			}
			r.in += k;
			r.in_len -= k;
		}
	}
	fz_commit(&r);
	fz_pull_output(&r);
	if (!r.gone) {
		if (flags & 16) {
			session_env.now += 3600;
			session_env.conn->ic_ops->on_timeout(session_env.conn);
		} else {
			session_env.conn->ic_ops->on_eof(session_env.conn, 0);
		}
		fz_after_callback(&r);
	}
	if (!r.gone) {
		/* A session that did not close itself: the loop tears it down. */
		io_conn_close(session_env.conn);
		fz_after_callback(&r);
	}
	fz_commit(&r);
	fz_check(fz.pending == NULL, "every submitted message returned");
	fz_check(fz.auth_pending == NULL, "every password check returned");
	fz_check(fz.sign_pending == NULL, "every signing job returned");
	fz_check(session_env.bufs_live == 0, "every buffer freed with the session");
	fz_check(fz.sessions_gone == 1, "the session was released once");
	fz_check(fz.env.e_sessions == NULL && fz.env.e_nsessions == 0,
		 "the session left the env's list and count");
	fz_check(stat_get(&fz.env.e_stats.es_open[listener]) == 0,
		 "the session left the open-sessions counter");
	if (getenv("FUZZ_SESSION_LOG") != NULL)
		fprintf(stderr, "--- replies read by the client:\n%.*s---\n", (int)r.plain_len,
			r.plain != NULL ? r.plain : "");
	if (r.tls)
		tls_conn_free(&r.client);
	free(r.plain);
	return 0;
}
