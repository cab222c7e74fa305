/*
 * delivery.c: the delivery scheduler. It learns of new messages from the
 * committer (the queue listener, on the committer's thread), scans the
 * schedule once a second for deferred mail whose time has come (its own
 * thread), keeps the set of messages in flight (delivery_ids.c), and
 * splits each message into per-next-hop jobs for the workers. See
 * delivery.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/delivery/delivery_ids.h"
#include "core/delivery/delivery_internal.h"
#include "core/shaping/shp_holder.h"
#include "core/base/log.h"

#define DLV_SCAN_MAX 20000	/* messages taken from one schedule scan */

/*
 * The backlog bound: at most delivery_inflight_max messages are in flight
 * (read from the queue into struct dlv_msg and jobs); the rest stays in
 * the LMDB schedule. A message committed while the bound is reached is
 * not dispatched; the next scan (within a second) finds it there. A scan
 * walks the schedule in time order, passes over the messages in flight and
 * takes at most the free places (and DLV_SCAN_MAX), so the scheduler's
 * memory does not grow with the queue. When a scan filled every place it
 * had, the next comes as soon as half the bound is free again rather than
 * a second later, so a drain is not paced at one bound per second.
 */

struct delivery {
	struct delivery_env d_env;
	struct dlv_worker **d_workers;	/* d_env.de_nworkers */
	struct dlv_shaping *d_shp;	/* shared by the workers */
	struct dlv_shp_clock d_shp_clock;	/* saves and expiry, each its own */
	struct shp_rules *d_rules_seen;	/* a reference: the rules of the last tick */
	const struct config *d_cfg;	/* swapped by a reload: dlv_cfg_of() */
	struct queue *d_q;
	pthread_t d_thread;
	bool d_started;			/* d_thread runs */
	pthread_mutex_t d_lock;		/* guards d_new, d_done, d_kick */
	pthread_cond_t d_cond;
	struct id_list d_new;		/* without memory an id is dropped: a scan finds it */
	struct dlv_msg *d_done;		/* ended rounds, by dm_done_next: never dropped */
	struct dlv_msg *d_upd_later;	/* updates to submit again, by dm_done_next */
	bool d_kick;			/* the committer asks for the scan now */
	atomic_bool d_stop;		/* set under d_lock, read anywhere */
	atomic_uint d_inflight_n;
	/* Guards d_inflight and d_rr: the committer (delivery_on_commit) and
	 * the scheduler hold it while they dispatch and retire messages, the
	 * admin API while it changes messages (delivery_admin_lock), so none
	 * acts on a stale view. */
	pthread_mutex_t d_inflight_lock;
	struct idset d_inflight;
	uint64_t d_last_scan;
	atomic_bool d_scan_full;	/* the last scan filled its places: more are due */
	uint64_t d_rr;
};

static uint64_t dlv_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* New messages per batch that the committer hands to the workers itself
 * (delivery_on_commit). */
#define DLV_INLINE_MAX 64u

static void delivery_dispatch(struct delivery *d, uint64_t id);
static void delivery_retire(struct delivery *d, const struct dlv_msg *done);
static void dlv_done_free(struct dlv_msg *done);

/*
 * Committer thread, at the end of each batch: messages just stored, and
 * the results that delivery_msg_done_batched() noted. The results are
 * retired and the new messages handed to the workers here, in the
 * committer's thread (README "Group commit: who wakes whom"): the
 * scheduler is not woken for them, and a worker learns of its new jobs
 * in the same wake as of its 250s (queue_return ran just before).
 *
 * Only for a batch of at most DLV_INLINE_MAX new messages: a larger one
 * (heavy load, where one wake per batch costs little) goes to the
 * scheduler, so splitting jobs runs beside the next commit, not in it.
 * Only with d_inflight_lock free: the admin API holds it while it waits
 * for its updates' commit (admin_queue_ops.c), which this thread makes:
 * waiting here would deadlock. Busy, the ids go to the scheduler as
 * before. So does everything once delivery_stop() began.
 */
static void delivery_on_commit(void *ctx, const uint64_t *ids, unsigned n)
{
	struct delivery *d = ctx;
	struct dlv_msg *done;
	bool work;

	if (n <= DLV_INLINE_MAX && !atomic_load(&d->d_stop) &&
	    pthread_mutex_trylock(&d->d_inflight_lock) == 0) {
		if (atomic_load(&d->d_stop)) {
			pthread_mutex_unlock(&d->d_inflight_lock);
			goto hand_over;
		}
		pthread_mutex_lock(&d->d_lock);
		done = d->d_done;
		d->d_done = NULL;
		pthread_mutex_unlock(&d->d_lock);
		delivery_retire(d, done);
		for (unsigned i = 0; i < n; i++)
			delivery_dispatch(d, ids[i]);
		pthread_mutex_unlock(&d->d_inflight_lock);
		dlv_done_free(done);
		/* A scan that filled its places wants to go on once half of
		 * them are free: the scheduler's, woken only then. */
		if (!atomic_load(&d->d_scan_full) ||
		    atomic_load(&d->d_inflight_n) > dlv_cfg_of(d)->delivery_inflight_max / 2)
			return;
		pthread_mutex_lock(&d->d_lock);
		d->d_kick = true;
		pthread_mutex_unlock(&d->d_lock);
		pthread_cond_signal(&d->d_cond);
		return;
	}
hand_over:
	pthread_mutex_lock(&d->d_lock);
	for (unsigned i = 0; i < n; i++)
		dlv_id_list_add(&d->d_new, ids[i]);
	work = d->d_new.n > 0 || d->d_done != NULL;
	pthread_mutex_unlock(&d->d_lock);
	if (work)
		pthread_cond_signal(&d->d_cond);
}

/* What m owns; m itself stays. */
static void dlv_msg_clear(struct dlv_msg *m)
{
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {
		free(m->dm_rcpts[i].dr_addr);
		free(m->dm_rcpts[i].dr_reply);
		free(m->dm_rcpts[i].dr_site);
		free(m->dm_rcpts[i].dr_source);
		free(m->dm_rcpts[i].dr_met_where);
		free((char *)m->dm_rcpts[i].dr_dsn.cd_orcpt);
	}
	free(m->dm_envid);
	free(m->dm_rcpts);
	free(m->dm_sender);
	free(m->dm_pool);
	free(m->dm_updates);
}

static void dlv_msg_free(struct dlv_msg *m)
{
	dlv_msg_clear(m);
	free(m);
}

/* The round of m is over: its id goes to the scheduler on m itself. */
static void dlv_msg_retire_later(struct dlv_msg *m)
{
	struct delivery *d = m->dm_dlv;

	dlv_msg_clear(m);
	pthread_mutex_lock(&d->d_lock);
	m->dm_done_next = d->d_done;
	d->d_done = m;
	pthread_mutex_unlock(&d->d_lock);
}

void delivery_msg_done(struct dlv_msg *m)
{
	struct delivery *d = m->dm_dlv;

	dlv_msg_retire_later(m);
	pthread_cond_signal(&d->d_cond);
}

void delivery_msg_done_batched(struct dlv_msg *m)
{
	dlv_msg_retire_later(m);
}

void delivery_update_later(struct dlv_msg *m)
{
	struct delivery *d = m->dm_dlv;

	pthread_mutex_lock(&d->d_lock);
	m->dm_done_next = d->d_upd_later;
	d->d_upd_later = m;
	pthread_mutex_unlock(&d->d_lock);
}

/* Submit again every update that could not be stored (scheduler thread,
 * once a second, and at stop). One that fails again comes back through
 * delivery_update_later. */
static void delivery_update_again(struct delivery *d)
{
	struct dlv_msg *m;

	pthread_mutex_lock(&d->d_lock);
	m = d->d_upd_later;
	d->d_upd_later = NULL;
	pthread_mutex_unlock(&d->d_lock);
	while (m != NULL) {
		struct dlv_msg *next = m->dm_done_next;

		m->dm_done_next = NULL;
		queue_submit_update(d->d_q, &m->dm_update);
		m = next;
	}
}

/* The structs left of ended rounds, once retired (no lock needed). */
static void dlv_done_free(struct dlv_msg *done)
{
	while (done != NULL) {
		struct dlv_msg *next = done->dm_done_next;

		free(done);
		done = next;
	}
}

unsigned delivery_inflight(struct delivery *d)
{
	return atomic_load(&d->d_inflight_n);
}

void delivery_admin_lock(struct delivery *d)
{
	pthread_mutex_lock(&d->d_inflight_lock);
}

bool delivery_admin_inflight(struct delivery *d, uint64_t id)
{
	return dlv_idset_has(&d->d_inflight, id);
}

void delivery_admin_unlock(struct delivery *d)
{
	pthread_mutex_unlock(&d->d_inflight_lock);
}

static void delivery_hist_add(struct delivery_hist *to, const struct stat_hist *h)
{
	for (unsigned k = 0; k < STAT_HIST_NBUCKETS; k++)
		to->dh_buckets[k] += stat_get(&h->sh_buckets[k]);
	to->dh_count += stat_get(&h->sh_count);
	to->dh_sum_ns += stat_get(&h->sh_sum_ns);
}

void delivery_get_stats(struct delivery *d, struct delivery_stats *st_r)
{
	memset(st_r, 0, sizeof(*st_r));
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->d_env.de_nworkers; i++) {
		const struct dlv_worker *w = d->d_workers[i];

		for (unsigned k = 0; k < 4; k++)
			st_r->rcpt_result[k] += stat_get(&w->w_rcpt_result[k]);
		for (unsigned k = 0; k < 6; k++)
			st_r->reply_class[k] += stat_get(&w->w_reply_class[k]);
		st_r->bounces += stat_get(&w->w_bounces);
		st_r->dns_lookups += stat_get(&w->w_dns_lookups);
		st_r->dns_failures += stat_get(&w->w_dns_failures);
		st_r->tls_handshakes += stat_get(&w->w_cl.ce_tls_handshakes);
		st_r->tls_failures += stat_get(&w->w_cl.ce_tls_failures);
		st_r->tls_resumed += stat_get(&w->w_cl.ce_tls_resumed);
		st_r->tls_sessions_cached += stat_get(&w->w_cl.ce_tls_cached);
		st_r->round_trips += stat_get(&w->w_cl.ce_round_trips);
		st_r->transactions += stat_get(&w->w_cl.ce_txns);
		delivery_hist_add(&st_r->delivery_lat, &w->w_delivery_lat);
	}
}

void delivery_shaping_stats(struct delivery *d, struct delivery_shp_stats *st_r)
{
	memset(st_r, 0, sizeof(*st_r));
	if (d == NULL)
		return;
	st_r->no_attempt = atomic_load(&d->d_shp->ds_no_attempt);
	st_r->firings = atomic_load(&d->d_shp->ds_firings);
	st_r->learned = atomic_load(&d->d_shp->ds_learned);
	st_r->health = atomic_load(&d->d_shp->ds_health);
}

struct dlv_shp_kinds {
	const char *k_name[16];
	uint64_t k_n[16];
	unsigned k_count;
	uint64_t k_suspended;		/* paths that take no attempt now */
};

static void delivery_shp_kind(void *arg, const struct shp_state_item *it)
{
	struct dlv_shp_kinds *k = arg;
	unsigned i;

	if (strcmp(it->sti_kind, "suspend") == 0 || strcmp(it->sti_kind, "suspend_site") == 0 ||
	    (strcmp(it->sti_kind, "health") == 0 && strcmp(it->sti_text, "suspended") == 0) ||
	    (strcmp(it->sti_kind, "ramp") == 0 && strcmp(it->sti_text, "paused") == 0))
		k->k_suspended++;

	for (i = 0; i < k->k_count; i++)
		if (strcmp(k->k_name[i], it->sti_kind) == 0)
			break;
	if (i == k->k_count) {
		if (i == 16)
			return;
		k->k_name[i] = it->sti_kind;	/* static strings */
		k->k_n[i] = 0;
		k->k_count++;
	}
	k->k_n[i]++;
}

void delivery_shaping_foreach(struct delivery *d,
			      void (*fn)(void *arg, const char *metric, const char *label,
					 uint64_t v),
			      void *arg)
{
	struct dlv_shaping *s;
	struct dlv_shp_kinds k = { .k_count = 0 };

	if (d == NULL)
		return;
	s = d->d_shp;
	pthread_mutex_lock(&s->ds_lock);
	for (unsigned i = 0; i < s->ds_nrules; i++)
		fn(arg, "rule_firings", s->ds_rules[i].dl_name, (uint64_t)s->ds_rules[i].dl_n);
	for (unsigned i = 0; i < s->ds_nprovs; i++)
		fn(arg, "provider_connections", s->ds_provs[i].dl_name,
		   s->ds_provs[i].dl_n > 0 ? (uint64_t)s->ds_provs[i].dl_n : 0);
	pthread_mutex_unlock(&s->ds_lock);
	for (unsigned i = 0; i < d->d_env.de_nworkers; i++) {
		char label[16];

		snprintf(label, sizeof(label), "%u", i);
		fn(arg, "worker_sessions", label, stat_get(&d->d_workers[i]->w_sessions));
	}
	shp_state_foreach(s->ds_state, dlv_now_us(), delivery_shp_kind, &k);
	for (unsigned i = 0; i < k.k_count; i++)
		fn(arg, "active", k.k_name[i], k.k_n[i]);
	fn(arg, "suspended", "", k.k_suspended);
}

void delivery_sources_foreach(struct delivery *d,
			      void (*fn)(void *arg, const char *source, const char *provider,
					 uint64_t sent_this_period, int out_of_service),
			      void *arg)
{
	if (d != NULL)
		shp_src_foreach(d->d_shp->ds_src, fn, arg);
}

/* The next hop of a recipient: the relayhost, or its domain. */
static void dlv_nexthop(const struct config *cfg, const char *addr, char *out, size_t len)
{
	const char *at = strrchr(addr, '@');
	size_t i;

	if (cfg->relayhost != NULL && cfg->relayhost[0] != '\0') {
		snprintf(out, len, "%s", cfg->relayhost);
		return;
	}
	snprintf(out, len, "%s", at ? at + 1 : cfg->hostname);
	for (i = 0; out[i]; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
}

struct dlv_build {
	struct delivery *d;
	struct dlv_msg *m;
};

static void dlv_build_cb(void *ctx, uint64_t id, const struct qrecord *r)
{
	struct dlv_build *b = ctx;
	struct dlv_msg *m = calloc(1, sizeof(*m));
	struct qrcpt rc;
	size_t off = 0;
	uint32_t i = 0;

	if (m == NULL)
		return;
	if (r->flags & QRECORD_F_HELD) {
		free(m);		/* an operator holds it */
		return;
	}
	m->dm_id = id;
	m->dm_dlv = b->d;
	m->dm_sender = strndup(r->sender, r->sender_len);
	m->dm_arrival = r->arrival;
	m->dm_size = r->size;
	m->dm_flags = r->flags;
	m->dm_pool = strndup(r->pool != NULL ? r->pool : "", r->pool != NULL ? r->pool_len : 0);
	m->dm_strip_off = r->strip_off;
	m->dm_strip_len = r->strip_len;
	m->dm_dsn_ret = r->dsn_ret;
	if (r->envid_len > 0 && (m->dm_envid = strndup(r->envid, r->envid_len)) == NULL) {
		dlv_msg_free(m);
		return;
	}
	/* Every allocation of the round that can fail is made here, where
	 * failing leaves the message in the schedule: the result's update
	 * array too, as a result that could not be written down would be
	 * a message sent and then sent again. */
	m->dm_rcpts = calloc(r->nrcpt ? r->nrcpt : 1, sizeof(*m->dm_rcpts));
	m->dm_updates = calloc(r->nrcpt ? r->nrcpt : 1, sizeof(*m->dm_updates));
	if (m->dm_sender == NULL || m->dm_rcpts == NULL || m->dm_updates == NULL ||
	    m->dm_pool == NULL) {
		dlv_msg_free(m);	/* dm_nrcpt is 0: no recipient to free */
		return;
	}
	m->dm_nrcpt = r->nrcpt;
	while (i < r->nrcpt && qrecord_rcpt_next(r, &off, &rc)) {
		struct dlv_rcpt *dr = &m->dm_rcpts[i++];

		dr->dr_addr = strndup(rc.addr, rc.addr_len);
		dr->dr_attempts = rc.attempts;
		dr->dr_dsn.cd_notify = rc.notify;
		if (rc.orcpt_len > 0 && dr->dr_addr != NULL &&
		    (dr->dr_dsn.cd_orcpt = strndup(rc.orcpt, rc.orcpt_len)) == NULL) {
			free(dr->dr_addr);
			dr->dr_addr = NULL;	/* not now: the next scan tries again */
		}
		/* Only pending recipients whose time has come take part. */
		dr->dr_result = (rc.state == QRCPT_PENDING && dr->dr_addr != NULL) ?
				DLV_R_NONE : 0xff;
	}
	b->m = m;
}

/* Split a message into jobs by next hop and hand them to the workers. */
static void delivery_dispatch(struct delivery *d, uint64_t id)
{
	struct dlv_build b = { d, NULL };
	struct dlv_msg *m;
	struct dlv_job **jobs;
	unsigned njobs = 0;
	char hop[300];

	if (dlv_idset_has(&d->d_inflight, id))
		return;
	if (atomic_load(&d->d_inflight_n) >= dlv_cfg_of(d)->delivery_inflight_max)
		return;		/* left in the schedule for a later scan */
	if (queue_record_get(d->d_q, id, dlv_build_cb, &b) < 0 || b.m == NULL)
		return;
	m = b.m;
	/* In the set before any job exists: a message the set cannot take
	 * (no memory) is not handed out, as a later scan would hand it out
	 * again while it is in flight. It stays in the schedule. */
	if (dlv_idset_add(&d->d_inflight, id) < 0) {
		dlv_msg_free(m);
		return;
	}
	jobs = calloc(m->dm_nrcpt ? m->dm_nrcpt : 1, sizeof(*jobs));
	if (jobs == NULL) {
		dlv_idset_del(&d->d_inflight, id);
		dlv_msg_free(m);
		return;
	}
	for (uint32_t i = 0; i < m->dm_nrcpt; i++) {
		struct dlv_job *j = NULL;

		if (m->dm_rcpts[i].dr_result != DLV_R_NONE)
			continue;
		dlv_nexthop(dlv_cfg_of(d), m->dm_rcpts[i].dr_addr, hop, sizeof(hop));
		for (unsigned k = 0; k < njobs; k++)
			if (strcmp(jobs[k]->dj_nexthop, hop) == 0)
				j = jobs[k];
		if (j == NULL) {
			if ((j = dlv_job_new(hop, m->dm_nrcpt)) == NULL)
				continue;	/* retried by the next scan */
			j->dj_msg = m;
			jobs[njobs++] = j;
		}
		j->dj_addrs[j->dj_nrcpt] = m->dm_rcpts[i].dr_addr;
		j->dj_dsn[j->dj_nrcpt] = m->dm_rcpts[i].dr_dsn;
		j->dj_rcpts[j->dj_nrcpt++] = i;
	}
	/* Recipients not taking part keep their stored state. */
	for (uint32_t i = 0; i < m->dm_nrcpt; i++)
		if (m->dm_rcpts[i].dr_result == 0xff)
			m->dm_rcpts[i].dr_result = DLV_R_NONE;
	if (njobs == 0) {
		dlv_idset_del(&d->d_inflight, id);
		free(jobs);
		dlv_msg_free(m);
		return;
	}
	atomic_fetch_add(&d->d_inflight_n, 1);
	m->dm_start_us = dlv_now_us();
	atomic_store(&m->dm_parts_left, njobs);
	for (unsigned k = 0; k < njobs; k++) {
		struct smtp_client_txn *t = &jobs[k]->dj_txn;

		/* What a session sends; the strings are the message's. */
		t->ct_id = m->dm_id;
		t->ct_sender = m->dm_sender;
		t->ct_size = m->dm_size;
		t->ct_flags = m->dm_flags;
		t->ct_nrcpt = jobs[k]->dj_nrcpt;
		t->ct_rcpts = jobs[k]->dj_addrs;
		t->ct_dsn = jobs[k]->dj_dsn;
		t->ct_dsn_ret = m->dm_dsn_ret;
		t->ct_envid = m->dm_envid;
		t->ct_strip_off = m->dm_strip_off;
		t->ct_strip_len = m->dm_strip_len;

		/* The next hop's home worker, or a less loaded one. */
		dlv_worker_push(dlv_spread_worker(d->d_workers, d->d_env.de_nworkers,
						  jobs[k]->dj_nexthop, &d->d_rr), jobs[k]);
	}
	free(jobs);
}

#define DLV_SHP_BLOB "shaping"
#define DLV_SHP_IDLE_US (600ull * 1000000u)	/* store entries unused this long go */

/* Write the shaping state into the queue database (scheduler thread,
 * at most once a second, and at stop). */
/* A blob encoder: the bytes needed, writing up to len into buf. */
typedef size_t (*dlv_blob_fn)(void *obj, uint64_t now, char *buf, size_t len);

/* Encode with fn into a buffer of the right size (the state may grow
 * between the size query and the copy: workers go on) and store it. */
static int delivery_blob_store(struct delivery *d, const char *name, dlv_blob_fn fn, void *obj,
			       uint64_t now)
{
	size_t cap = fn(obj, now, NULL, 0) + 256, n;
	char *buf;
	int rc;

	for (;;) {
		buf = malloc(cap);
		if (buf == NULL)
			return -ENOMEM;
		n = fn(obj, now, buf, cap);
		if (n <= cap)
			break;
		free(buf);
		cap = n + 256;
	}
	rc = queue_blob_put(d->d_q, name, buf, n);
	free(buf);
	return rc;
}

static size_t delivery_shp_enc(void *obj, uint64_t now, char *buf, size_t len)
{
	return shp_state_save(obj, now, buf, len);
}

static size_t delivery_src_enc(void *obj, uint64_t now, char *buf, size_t len)
{
	(void)now;
	return shp_src_save(obj, buf, len);
}

static void delivery_shp_save(struct delivery *d, uint64_t now)
{
	int rc = delivery_blob_store(d, DLV_SHP_BLOB, delivery_shp_enc, d->d_shp->ds_state, now);

	if (rc < 0)
		log_msg(LOG_WARNING, "delivery: cannot save the shaping state: %s",
			queue_strerror(rc));
	d->d_shp_clock.sc_save = now;
}

static void delivery_shp_restore_cb(void *arg, const void *data, size_t len)
{
	struct delivery *d = arg;

	if (shp_state_restore(d->d_shp->ds_state, data, len) < 0)
		log_msg(LOG_WARNING, "delivery: the saved shaping state is damaged or of another"
			" version (%zu bytes): ignored, starting without it", len);
}

#define DLV_SRC_BLOB "sources"

/* The sources' warm-up counters into the queue database. */
static void delivery_src_save(struct delivery *d, uint64_t now)
{
	d->d_shp_clock.sc_src_save = now;
	(void)delivery_blob_store(d, DLV_SRC_BLOB, delivery_src_enc, d->d_shp->ds_src, now);
}

static void delivery_src_restore_cb(void *arg, const void *data, size_t len)
{
	struct delivery *d = arg;

	/* shp_src_restore logs a damaged blob itself. */
	(void)shp_src_restore(d->d_shp->ds_src, data, len);
}

/* The rules in force changed (SIGHUP): the sources learn it, and those
 * that cannot be bound are out of service again. */
static void delivery_rules_check(struct delivery *d)
{
	struct shp_rules *r = d->d_env.de_rules != NULL ? shp_holder_get(d->d_env.de_rules) : NULL;
	char err[1024];

	if (r == d->d_rules_seen) {
		if (r != NULL)
			shp_rules_unref(&r);
		return;
	}
	if (d->d_rules_seen != NULL) {
		shp_src_reloaded(d->d_shp->ds_src, r);
		shp_rules_unref(&d->d_rules_seen);
	}
	d->d_rules_seen = r;
	if (r != NULL)
		(void)smtp_client_check_sources(dlv_cfg_of(d), r, d->d_shp->ds_src, err,
						sizeof(err));
}

/* Once a second on the scheduler thread. */
static void delivery_shp_tick(struct delivery *d, uint64_t now)
{
	unsigned todo = dlv_shp_chores(&d->d_shp_clock, now);

	delivery_rules_check(d);
	if (todo & DLV_SHP_DO_SRC_SAVE)
		delivery_src_save(d, now);
	if (todo & DLV_SHP_DO_EXPIRE) {
		shp_state_expire(d->d_shp->ds_state, now);
		d->d_shp->ds_store->ss_ops->ss_expire(d->d_shp->ds_store, now, DLV_SHP_IDLE_US);
	}
	if (todo & DLV_SHP_DO_EXPIRE) {
		(void)shp_susp_expire(d->d_shp->ds_susp, now);	/* the saved blob leaves them out */
		shp_top_expire(d->d_shp->ds_top, now);
		shp_met_expire(d->d_shp->ds_met, now);
	}
	if ((todo & DLV_SHP_DO_SAVE) && shp_state_take_dirty(d->d_shp->ds_state))
		delivery_shp_save(d, now);
}

struct dlv_scan {
	struct delivery *ds_d;
	struct id_list ds_due;
	unsigned ds_room;		/* free places in flight, at most DLV_SCAN_MAX */
};

/* The free places now: the bound less what is in flight, at most a scan's worth. */
static unsigned delivery_room(struct delivery *d)
{
	unsigned max = dlv_cfg_of(d)->delivery_inflight_max;
	unsigned n = atomic_load(&d->d_inflight_n);

	if (n >= max)
		return 0;
	return max - n < DLV_SCAN_MAX ? max - n : DLV_SCAN_MAX;
}

/* Under d_inflight_lock: the messages of these ended rounds are no
 * longer in flight. */
static void delivery_retire(struct delivery *d, const struct dlv_msg *done)
{
	for (; done != NULL; done = done->dm_done_next) {
		dlv_idset_del(&d->d_inflight, done->dm_id);
		atomic_fetch_sub(&d->d_inflight_n, 1);
	}
}

/* The committer changes d_inflight too (delivery_on_commit): each look
 * is under the lock, taken per id so a long scan never holds it. */
static int delivery_scan_cb(void *ctx, uint64_t id, uint64_t when)
{
	struct dlv_scan *s = ctx;
	bool busy;

	(void)when;
	pthread_mutex_lock(&s->ds_d->d_inflight_lock);
	busy = dlv_idset_has(&s->ds_d->d_inflight, id);
	pthread_mutex_unlock(&s->ds_d->d_inflight_lock);
	if (busy)
		return 0;
	dlv_id_list_add(&s->ds_due, id);
	return s->ds_due.n >= s->ds_room;
}

static void *delivery_main(void *arg)
{
	struct delivery *d = arg;

	pthread_setname_np(pthread_self(), "rm-sched");
	pthread_mutex_lock(&d->d_lock);
	while (!d->d_stop) {
		struct id_list fresh;
		struct dlv_msg *done;
		struct dlv_scan scan = { .ds_d = d };
		struct timespec ts;
		uint64_t now;
		bool tick;

		if (d->d_new.n == 0 && d->d_done == NULL && !d->d_kick) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&d->d_cond, &d->d_lock, &ts);
			if (d->d_stop)
				break;
		}
		d->d_kick = false;
		fresh = d->d_new;
		done = d->d_done;
		memset(&d->d_new, 0, sizeof(d->d_new));
		d->d_done = NULL;
		pthread_mutex_unlock(&d->d_lock);

		pthread_mutex_lock(&d->d_inflight_lock);
		delivery_retire(d, done);
		for (unsigned i = 0; i < fresh.n; i++)
			delivery_dispatch(d, fresh.ids[i]);
		pthread_mutex_unlock(&d->d_inflight_lock);
		now = dlv_now_us();
		tick = now >= d->d_last_scan + 1000000u;
		if (tick || (d->d_scan_full && atomic_load(&d->d_inflight_n) <=
					       dlv_cfg_of(d)->delivery_inflight_max / 2)) {
			unsigned before = atomic_load(&d->d_inflight_n);

			if ((scan.ds_room = delivery_room(d)) > 0)
				queue_scan_due(d->d_q, now, delivery_scan_cb, &scan);
			pthread_mutex_lock(&d->d_inflight_lock);
			for (unsigned i = 0; i < scan.ds_due.n; i++)
				delivery_dispatch(d, scan.ds_due.ids[i]);
			pthread_mutex_unlock(&d->d_inflight_lock);
			/* Full, and it moved: held or finished messages alone do
			 * not bring the next scan forward. */
			d->d_scan_full = scan.ds_room > 0 && scan.ds_due.n >= scan.ds_room &&
					 atomic_load(&d->d_inflight_n) > before;
		}
		if (tick) {
			d->d_last_scan = now;
			delivery_shp_tick(d, now);
			delivery_update_again(d);
		}
		free(fresh.ids);
		dlv_done_free(done);
		free(scan.ds_due.ids);
		pthread_mutex_lock(&d->d_lock);
	}
	pthread_mutex_unlock(&d->d_lock);
	return NULL;
}

int delivery_init(struct delivery **d_r, const struct delivery_env *env, char *err,
		  size_t errlen)
{
	struct delivery *d = calloc(1, sizeof(*d));

	*d_r = NULL;
	if (d == NULL || (d->d_workers = calloc(env->de_nworkers, sizeof(*d->d_workers))) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->d_env = *env;
	d->d_cfg = env->de_cfg;
	d->d_q = env->de_queue;
	pthread_mutex_init(&d->d_lock, NULL);
	pthread_mutex_init(&d->d_inflight_lock, NULL);
	pthread_cond_init(&d->d_cond, NULL);
	*d_r = d;
	if (dlv_shaping_new(&d->d_shp) < 0 ||
	    shp_top_new(&d->d_shp->ds_top, env->de_nworkers) < 0 ||
	    shp_met_new(&d->d_shp->ds_met, env->de_nworkers, env->de_cfg->metrics_top_sites) < 0) {
		snprintf(err, errlen, "out of memory");
		delivery_free(d_r);
		return -1;
	}
	for (unsigned i = 0; i < env->de_nworkers; i++) {
		if (dlv_worker_init(&d->d_workers[i], &d->d_env, i, err, errlen) < 0) {
			delivery_free(d_r);
			return -1;
		}
		d->d_workers[i]->w_shp = d->d_shp;
	}
	for (unsigned i = 0; i < env->de_nworkers; i++) {
		d->d_workers[i]->w_peers = d->d_workers;
		d->d_workers[i]->w_npeers = env->de_nworkers;
	}
	return 0;
}

struct dlv_shaping *dlv_shaping_of(struct delivery *d)
{
	return d->d_shp;
}

struct queue *dlv_queue_of(struct delivery *d)
{
	return d->d_q;
}

struct shp_holder *dlv_rules_holder_of(struct delivery *d)
{
	return d->d_env.de_rules;
}

const struct config *dlv_cfg_of(struct delivery *d)
{
	return __atomic_load_n(&d->d_cfg, __ATOMIC_ACQUIRE);
}

const struct config *delivery_config(struct delivery *d)
{
	return dlv_cfg_of(d);
}

void delivery_set_config(struct delivery *d, const struct config *cfg)
{
	__atomic_store_n(&d->d_cfg, cfg, __ATOMIC_RELEASE);
}

struct dlv_worker *delivery_worker(struct delivery *d, unsigned i)
{
	return d->d_workers[i];
}

int delivery_start(struct delivery *d, char *err, size_t errlen)
{
	int rc;

	/* What shaping knew before a restart (suspensions, learned limits). */
	(void)queue_blob_get(d->d_q, DLV_SHP_BLOB, delivery_shp_restore_cb, d);
	(void)queue_blob_get(d->d_q, DLV_SRC_BLOB, delivery_src_restore_cb, d);
	dlv_susp_restore(d);
	delivery_rules_check(d);
	queue_set_listener(d->d_q, delivery_on_commit, d);
	rc = pthread_create(&d->d_thread, NULL, delivery_main, d);
	if (rc != 0) {
		snprintf(err, errlen, "delivery thread: %s", strerror(rc));
		return -1;
	}
	d->d_started = true;
	return 0;
}

void delivery_stop(struct delivery **dp)
{
	struct delivery *d = *dp;

	if (d == NULL || !d->d_started)
		return;
	pthread_mutex_lock(&d->d_lock);
	d->d_stop = true;
	pthread_mutex_unlock(&d->d_lock);
	/* A dispatch the committer began before it saw d_stop ends first:
	 * none starts after this, as none did after the scheduler's join. */
	pthread_mutex_lock(&d->d_inflight_lock);
	pthread_mutex_unlock(&d->d_inflight_lock);
	pthread_cond_signal(&d->d_cond);
	pthread_join(d->d_thread, NULL);
	d->d_started = false;
	/* The results not stored yet get one more try: the committer
	 * drains after this. */
	delivery_update_again(d);
	delivery_shp_save(d, dlv_now_us());
	delivery_src_save(d, dlv_now_us());
}

/* After the committer drained: free what is left. */
void delivery_free(struct delivery **dp)
{
	struct delivery *d = *dp;

	if (d == NULL)
		return;
	free(d->d_new.ids);
	dlv_done_free(d->d_done);
	while (d->d_upd_later != NULL) {
		struct dlv_msg *m = d->d_upd_later;

		d->d_upd_later = m->dm_done_next;
		dres_update_abandon(m);
		dlv_msg_free(m);
	}
	dlv_idset_free(&d->d_inflight);
	for (unsigned i = 0; d->d_workers != NULL && i < d->d_env.de_nworkers; i++)
		dlv_worker_destroy(&d->d_workers[i]);
	free(d->d_workers);
	if (d->d_rules_seen != NULL)
		shp_rules_unref(&d->d_rules_seen);
	dlv_shaping_free(&d->d_shp);
	pthread_mutex_destroy(&d->d_lock);
	pthread_mutex_destroy(&d->d_inflight_lock);
	pthread_cond_destroy(&d->d_cond);
	free(d);
	*dp = NULL;
}
