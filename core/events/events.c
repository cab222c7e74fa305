/*
 * events.c: the sinks' threads, their cursors, and the bound on the
 * store (see events.h and README "Delivery events and webhooks").
 *
 * Each sink has a thread that waits for the committer's word (the event
 * listener: the last sequence committed), reads the records after its
 * cursor with a read transaction, filters them by type, sends them as
 * one batch (up to batch_max records, waiting up to batch_wait for more)
 * and, once sent, moves its cursor past them. A batch that fails is sent
 * again, the same records, after a backoff that doubles up to a cap. The
 * cursor lives in a small file of its own in queue_dir (written after
 * every batch, without a sync: losing a write only repeats events, which
 * receivers drop by id), so a sink never takes LMDB's write lock. A
 * janitor thread deletes what every sink has passed and, past
 * events_max_backlog, the oldest records (counted as dropped).
 *
 * Nothing here runs on the mail path: a slow or dead endpoint only grows
 * the stored backlog, which is bounded.
 */
#include "core/events/events_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/base/log.h"

#define EVENTS_SINKS_MAX 8
#define EVENTS_BACKOFF_MIN_MS 250u
#define EVENTS_BACKOFF_MAX_MS 30000u
#define EVENTS_JANITOR_MS 1000u
#define EVENTS_TRIM_MAX 10000u		/* records per trim transaction */
#define EVENTS_URL_MAX 2400

struct ev_sink {
	struct events *s_ev;
	char s_name[96];		/* "log", or the webhook's URL as shown
					 * in logs and metrics (ev_sink_name) */
	uint64_t s_hash;		/* of the whole URL: names the cursor */
	const struct event_sink_ops *s_ops;
	void *s_impl;
	uint32_t s_types;		/* bit per enum event_type */
	unsigned s_batch_max, s_batch_wait_ms;
	int s_cursor_fd;
	_Atomic uint64_t s_cursor;	/* last sequence passed */
	_Atomic uint64_t s_requests, s_failures, s_last_success;
	atomic_bool s_reopen;
	atomic_bool s_stop;		/* a reload replaces it: its thread ends */
	pthread_t s_thread;
	bool s_started;
};

/* A file's identity and age (webhook_header_file): a reload builds the
 * sinks again when it changed. */
struct ev_file_sig {
	dev_t fs_dev;
	ino_t fs_ino;
	off_t fs_size;
	int64_t fs_mtime_ns;
};

struct events {
	/* The settings in force: a reload's generation (core/app/server.h
	 * keeps every generation until after events_stop()). */
	const struct config *_Atomic ev_cfg;
	struct ev_file_sig ev_hdr_sig;	/* under ev_lock */
	struct queue *ev_q;
	pthread_mutex_t ev_lock;
	pthread_cond_t ev_cond;		/* new events, or stop */
	uint64_t ev_last;		/* under ev_lock */
	bool ev_stop;
	/* The sinks; a reload replaces them under ev_lock, so the janitor,
	 * the statistics and reopen read them under it. */
	struct ev_sink ev_sinks[EVENTS_SINKS_MAX];
	unsigned ev_nsinks;
	pthread_t ev_janitor;
	bool ev_janitor_started;
	_Atomic uint64_t ev_dropped;
};

static uint64_t ev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait on ev_cond until the monotonic deadline (ms); ev_lock held. */
static void ev_wait_until(struct events *ev, uint64_t deadline_ms)
{
	struct timespec ts = { (time_t)(deadline_ms / 1000u),
			       (long)(deadline_ms % 1000u) * 1000000L };

	pthread_cond_timedwait(&ev->ev_cond, &ev->ev_lock, &ts);
}

/* Whether s (NULL: the janitor) is to end; ev_lock held. */
static bool ev_stopping(const struct events *ev, const struct ev_sink *s)
{
	return ev->ev_stop || (s != NULL && atomic_load(&s->s_stop));
}

/* Sleep ms (new events do not cut it short); true when stopping. */
static bool ev_sleep(struct events *ev, const struct ev_sink *s, unsigned ms)
{
	uint64_t deadline = ev_now_ms() + ms;
	bool stop;

	pthread_mutex_lock(&ev->ev_lock);
	while (!ev_stopping(ev, s) && ev_now_ms() < deadline)
		ev_wait_until(ev, deadline);
	stop = ev_stopping(ev, s);
	pthread_mutex_unlock(&ev->ev_lock);
	return stop;
}

/* Committer thread, after a commit that stored events. */
static void ev_on_commit(void *ctx, uint64_t last)
{
	struct events *ev = ctx;

	pthread_mutex_lock(&ev->ev_lock);
	ev->ev_last = last;
	pthread_cond_broadcast(&ev->ev_cond);
	pthread_mutex_unlock(&ev->ev_lock);
}

/* The sequence in s's open cursor file; 0 when empty. */
static uint64_t ev_cursor_read(const struct ev_sink *s)
{
	char buf[32] = "";
	ssize_t n = pread(s->s_cursor_fd, buf, sizeof(buf) - 1, 0);

	return n > 0 ? strtoull(buf, NULL, 10) : 0;
}

/* The cursor file: the decimal sequence, padded, rewritten in place. */
static int ev_cursor_open(struct ev_sink *s, const char *dir, uint64_t *cur_r)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/events.%s.%016" PRIx64 ".cursor", dir,
		 strcmp(s->s_name, "log") == 0 ? "log" : "webhook", s->s_hash);
	s->s_cursor_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->s_cursor_fd < 0)
		return -errno;
	*cur_r = ev_cursor_read(s);
	return 0;
}

static void ev_cursor_save(struct ev_sink *s, uint64_t seq)
{
	char buf[24];

	atomic_store(&s->s_cursor, seq);
	snprintf(buf, sizeof(buf), "%20" PRIu64 "\n", seq);
	if (pwrite(s->s_cursor_fd, buf, 21, 0) != 21)
		log_msg(LOG_WARNING, "events: %s: cannot save the cursor: %s", s->s_name,
			strerror(errno));
}

/* What one read gathers. */
struct ev_read {
	struct ev_sink *r_sink;
	struct event_batch r_b;
	unsigned r_cap;
	uint64_t r_last;		/* last sequence seen, sent or filtered */
	bool r_oom;
};

static int ev_read_one(void *ctx, uint64_t seq, const char *data, size_t len)
{
	struct ev_read *r = ctx;
	int t = event_record_type(data, len);
	size_t n;
	char *rec;

	if (r->r_b.eb_n == r->r_cap)
		return 1;
	if (t >= 0 && !(r->r_sink->s_types & (1u << t))) {
		r->r_last = seq;	/* not this sink's: passed */
		return 0;
	}
	rec = event_with_id(seq, data, len, &n);
	if (rec == NULL) {
		r->r_oom = true;
		return 1;
	}
	r->r_b.eb_recs[r->r_b.eb_n] = rec;
	r->r_b.eb_lens[r->r_b.eb_n++] = n;
	r->r_last = seq;
	return 0;
}

static void ev_batch_clear(struct ev_read *r)
{
	for (unsigned i = 0; i < r->r_b.eb_n; i++)
		free(r->r_b.eb_recs[i]);
	r->r_b.eb_n = 0;
}

/*
 * Gather the next batch after the cursor: up to batch_max records, and
 * while fewer, wait up to batch_wait for more. False when stopping.
 */
static bool ev_gather(struct ev_sink *s, struct ev_read *r)
{
	struct events *ev = s->s_ev;
	uint64_t cursor = atomic_load(&s->s_cursor), deadline = 0;

	for (;;) {
		bool stop;
		uint64_t last;

		ev_batch_clear(r);
		r->r_last = cursor;
		r->r_oom = false;
		if (queue_events_read(ev->ev_q, cursor, s->s_batch_max, ev_read_one, r) < 0 ||
		    r->r_oom) {
			ev_batch_clear(r);
			r->r_last = cursor;
		}
		pthread_mutex_lock(&ev->ev_lock);
		stop = ev_stopping(ev, s);
		last = ev->ev_last;
		if (stop) {
			pthread_mutex_unlock(&ev->ev_lock);
			return false;
		}
		if (r->r_b.eb_n == s->s_batch_max || (r->r_b.eb_n > 0 && s->s_batch_wait_ms == 0)) {
			pthread_mutex_unlock(&ev->ev_lock);
			return true;
		}
		if (r->r_b.eb_n > 0 && deadline == 0)
			deadline = ev_now_ms() + s->s_batch_wait_ms;
		if (deadline != 0 && ev_now_ms() >= deadline) {
			pthread_mutex_unlock(&ev->ev_lock);
			return true;
		}
		if (r->r_b.eb_n == 0 && r->r_last > cursor) {
			/* Only records of other types: passed. */
			pthread_mutex_unlock(&ev->ev_lock);
			ev_cursor_save(s, r->r_last);
			cursor = r->r_last;
			continue;
		}
		if (last <= r->r_last)	/* nothing new since the read */
			ev_wait_until(ev, deadline != 0 ? deadline :
				      ev_now_ms() + EVENTS_JANITOR_MS);
		pthread_mutex_unlock(&ev->ev_lock);
		if (atomic_exchange(&s->s_reopen, false) && s->s_ops->so_reopen != NULL)
			s->s_ops->so_reopen(s->s_impl);
	}
}

static void *ev_sink_main(void *arg)
{
	struct ev_sink *s = arg;
	struct events *ev = s->s_ev;
	struct ev_read r = { .r_sink = s, .r_cap = s->s_batch_max };
	char err[300];

	r.r_b.eb_recs = calloc(s->s_batch_max, sizeof(*r.r_b.eb_recs));
	r.r_b.eb_lens = calloc(s->s_batch_max, sizeof(*r.r_b.eb_lens));
	if (r.r_b.eb_recs == NULL || r.r_b.eb_lens == NULL) {
		log_msg(LOG_ERROR, "events: %s: out of memory; sink stopped", s->s_name);
		goto out;
	}
	while (ev_gather(s, &r)) {
		unsigned backoff = EVENTS_BACKOFF_MIN_MS;
		bool failing = false;

		for (;;) {
			if (atomic_exchange(&s->s_reopen, false) && s->s_ops->so_reopen != NULL)
				s->s_ops->so_reopen(s->s_impl);
			atomic_fetch_add(&s->s_requests, 1);
			err[0] = '\0';
			if (s->s_ops->so_send(s->s_impl, &r.r_b, err, sizeof(err)) == 0) {
				struct timespec now;

				clock_gettime(CLOCK_REALTIME, &now);
				atomic_store(&s->s_last_success, (uint64_t)now.tv_sec);
				if (failing)
					log_msg(LOG_INFO, "events: %s: sending again", s->s_name);
				ev_cursor_save(s, r.r_last);
				break;
			}
			atomic_fetch_add(&s->s_failures, 1);
			if (!failing || backoff == EVENTS_BACKOFF_MAX_MS)
				log_msg(LOG_WARNING, "events: %s: %s; %u events wait, retrying in"
					" %ums", s->s_name, err, r.r_b.eb_n, backoff);
			failing = true;
			if (ev_sleep(ev, s, backoff))
				goto out;
			backoff = backoff * 2 > EVENTS_BACKOFF_MAX_MS ? EVENTS_BACKOFF_MAX_MS :
				  backoff * 2;
		}
	}
out:
	ev_batch_clear(&r);
	free(r.r_b.eb_recs);
	free(r.r_b.eb_lens);
	return NULL;
}

/* Delete what every sink passed; past the bound, the oldest. */
static void ev_janitor_round(struct events *ev)
{
	uint64_t low = UINT64_MAX, count, first, n, max = atomic_load(&ev->ev_cfg)->events_max_backlog;

	pthread_mutex_lock(&ev->ev_lock);
	for (unsigned i = 0; i < ev->ev_nsinks; i++) {
		uint64_t c = atomic_load(&ev->ev_sinks[i].s_cursor);

		if (c < low)
			low = c;
	}
	pthread_mutex_unlock(&ev->ev_lock);
	if (queue_events_stat(ev->ev_q, &count, &first) < 0 || count == 0)
		return;
	while (first != 0 && first <= low) {
		uint64_t upto = low - first + 1 > EVENTS_TRIM_MAX ? first + EVENTS_TRIM_MAX - 1 : low;

		if (queue_events_trim(ev->ev_q, upto, &n) < 0 || n == 0)
			break;
		first = upto + 1;
		count = count > n ? count - n : 0;
	}
	if (count > max) {
		uint64_t drop = count - max, upto = first + drop - 1;

		if (queue_events_trim(ev->ev_q, upto, &n) == 0 && n > 0) {
			atomic_fetch_add(&ev->ev_dropped, n);
			log_msg(LOG_WARNING, "events: backlog over events_max_backlog=%" PRIu64
				": dropped the %" PRIu64 " oldest events (up to id %" PRIu64 ")",
				max, n, upto);
		}
	}
}

static void *ev_janitor_main(void *arg)
{
	struct events *ev = arg;

	while (!ev_sleep(ev, NULL, EVENTS_JANITOR_MS))
		ev_janitor_round(ev);
	return NULL;
}

/* FNV-1a of a sink's whole name (the URL): its cursor file's name. */
static uint64_t ev_sink_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

/*
 * How a webhook is shown in logs and in the metrics' sink label: its URL
 * without the query (tokens often travel there; http_url_parse() takes
 * no user:password@), and when the query was left out or the rest is
 * too long, cut on a character's start and followed by "#" and 8 hex
 * digits of the whole URL's hash, so two URLs that differ only there
 * stay two names.
 */
static void ev_sink_name(char *out, size_t outlen, const char *url, uint64_t h)
{
	size_t n = strcspn(url, "?#"), cut;

	if (url[n] == '\0' && n < outlen) {
		memcpy(out, url, n + 1);
		return;
	}
	cut = n < outlen - 10 ? n : outlen - 10;
	while (cut > 0 && ((unsigned char)url[cut] & 0xc0) == 0x80)
		cut--;		/* keep the label UTF-8 */
	snprintf(out, outlen, "%.*s#%08x", (int)cut, url, (unsigned)(h >> 32));
}

/* A set of sinks, being made (not started) or running. */
struct ev_set {
	struct ev_sink *es_sinks;
	unsigned es_n;
};

static int ev_sink_add(struct events *ev, const struct config *cfg, struct ev_set *set,
		       const char *name, const struct event_sink_ops *ops, void *impl, char *err,
		       size_t errlen)
{
	struct ev_sink *s;
	uint64_t cur;
	int rc;

	if (set->es_n == EVENTS_SINKS_MAX) {
		ops->so_free(impl);
		snprintf(err, errlen, "events: at most %u sinks", EVENTS_SINKS_MAX);
		return -1;
	}
	s = &set->es_sinks[set->es_n++];
	memset(s, 0, sizeof(*s));
	s->s_ev = ev;
	s->s_hash = ev_sink_hash(name);
	if (ops == &event_sink_log_ops)
		snprintf(s->s_name, sizeof(s->s_name), "%s", name);
	else
		ev_sink_name(s->s_name, sizeof(s->s_name), name, s->s_hash);
	s->s_ops = ops;
	s->s_impl = impl;
	s->s_cursor_fd = -1;
	if (ops == &event_sink_log_ops) {
		s->s_types = (1u << EVENT_NTYPES) - 1;
		s->s_batch_max = 64;
		s->s_batch_wait_ms = 0;
	} else {
		if (event_type_mask(cfg->webhook_events, &s->s_types, err, errlen) < 0)
			return -1;
		s->s_batch_max = cfg->webhook_batch_max;
		s->s_batch_wait_ms = s->s_batch_max > 1 ? cfg->webhook_batch_wait : 0;
	}
	rc = ev_cursor_open(s, cfg->queue_dir, &cur);
	if (rc < 0) {
		snprintf(err, errlen, "events: cursor file in %s: %s", cfg->queue_dir,
			 strerror(-rc));
		return -1;
	}
	atomic_store(&s->s_cursor, cur);
	return 0;
}

/* Free the sinks of a set whose threads are not running. */
static void ev_set_free(struct ev_set *set)
{
	for (unsigned i = 0; i < set->es_n; i++) {
		struct ev_sink *s = &set->es_sinks[i];

		if (s->s_impl != NULL)
			s->s_ops->so_free(s->s_impl);
		s->s_impl = NULL;
		if (s->s_cursor_fd >= 0) {
			fdatasync(s->s_cursor_fd);
			close(s->s_cursor_fd);
		}
		s->s_cursor_fd = -1;
	}
	set->es_n = 0;
}

static void ev_free(struct events *ev)
{
	struct ev_set running = { ev->ev_sinks, ev->ev_nsinks };

	ev_set_free(&running);
	pthread_mutex_destroy(&ev->ev_lock);
	pthread_cond_destroy(&ev->ev_cond);
	free(ev);
}

/* The sinks the settings name, into set (empty; not started). */
static int ev_sinks_make(struct events *ev, const struct config *cfg, struct ev_set *set,
			 char *err, size_t errlen)
{
	const char *p = cfg->webhook_url;
	void *impl;

	if (cfg->event_log[0] != '\0') {
		if (event_sink_log_new(cfg, &impl, err, errlen) < 0 ||
		    ev_sink_add(ev, cfg, set, "log", &event_sink_log_ops, impl, err, errlen) < 0)
			return -1;
	}
	while (*p != '\0') {
		char url[EVENTS_URL_MAX + 1];
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (n > EVENTS_URL_MAX) {
			snprintf(err, errlen, "webhook_url: a URL longer than %u bytes",
				 EVENTS_URL_MAX);
			return -1;
		}
		memcpy(url, p, n);
		url[n] = '\0';
		p += n;
		for (unsigned i = 0; i < set->es_n; i++) {
			if (set->es_sinks[i].s_ops == &event_sink_webhook_ops &&
			    set->es_sinks[i].s_hash == ev_sink_hash(url)) {
				/* One cursor file per URL: two sinks would
				 * move one cursor. */
				snprintf(err, errlen, "webhook_url: %s is listed twice",
					 set->es_sinks[i].s_name);
				return -1;
			}
		}
		if (event_sink_webhook_new(cfg, url, &impl, err, errlen) < 0 ||
		    ev_sink_add(ev, cfg, set, url, &event_sink_webhook_ops, impl, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static void ev_file_sig(const char *path, struct ev_file_sig *sig)
{
	struct stat st;

	memset(sig, 0, sizeof(*sig));
	if (path[0] == '\0' || stat(path, &st) != 0)
		return;
	sig->fs_dev = st.st_dev;
	sig->fs_ino = st.st_ino;
	sig->fs_size = st.st_size;
	sig->fs_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* Start the threads of ev's sinks (not running). */
static int ev_sinks_start(struct events *ev, char *err, size_t errlen)
{
	for (unsigned i = 0; i < ev->ev_nsinks; i++) {
		struct ev_sink *s = &ev->ev_sinks[i];

		/* A cursor past the store (a queue replaced under it) starts
		 * over with what is stored. */
		if (atomic_load(&s->s_cursor) > queue_events_last(ev->ev_q))
			atomic_store(&s->s_cursor, 0);
		if (pthread_create(&s->s_thread, NULL, ev_sink_main, s) != 0) {
			snprintf(err, errlen, "events: cannot start a thread");
			return -1;
		}
		s->s_started = true;
	}
	return 0;
}

/* End the threads of ev's sinks (they save their cursors as they go). */
static void ev_sinks_join(struct events *ev)
{
	pthread_mutex_lock(&ev->ev_lock);
	for (unsigned i = 0; i < ev->ev_nsinks; i++)
		atomic_store(&ev->ev_sinks[i].s_stop, true);
	pthread_cond_broadcast(&ev->ev_cond);
	pthread_mutex_unlock(&ev->ev_lock);
	for (unsigned i = 0; i < ev->ev_nsinks; i++)
		if (ev->ev_sinks[i].s_started)
			pthread_join(ev->ev_sinks[i].s_thread, NULL);
	for (unsigned i = 0; i < ev->ev_nsinks; i++)
		ev->ev_sinks[i].s_started = false;
}

int events_start(struct events **ev_r, const struct config *cfg, struct queue *q, char *err,
		 size_t errlen)
{
	struct events *ev;

	*ev_r = NULL;
	if (cfg->event_log[0] == '\0' && cfg->webhook_url[0] == '\0')
		return 0;
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL) {
		snprintf(err, errlen, "events: out of memory");
		return -1;
	}
	ev->ev_cfg = cfg;
	ev->ev_q = q;
	pthread_mutex_init(&ev->ev_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ev->ev_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	{
		struct ev_set set = { ev->ev_sinks, 0 };
		int rc = ev_sinks_make(ev, cfg, &set, err, errlen);

		ev->ev_nsinks = set.es_n;
		if (rc < 0) {
			ev_free(ev);
			return -1;
		}
	}
	ev_file_sig(cfg->webhook_header_file, &ev->ev_hdr_sig);
	ev->ev_last = queue_events_last(q);
	queue_set_event_listener(q, ev_on_commit, ev);
	if (ev_sinks_start(ev, err, errlen) < 0) {
		events_stop(&ev);
		return -1;
	}
	if (pthread_create(&ev->ev_janitor, NULL, ev_janitor_main, ev) != 0) {
		snprintf(err, errlen, "events: cannot start a thread");
		events_stop(&ev);
		return -1;
	}
	ev->ev_janitor_started = true;
	*ev_r = ev;
	return 0;
}

void events_stop(struct events **evp)
{
	struct events *ev = *evp;

	if (ev == NULL)
		return;
	pthread_mutex_lock(&ev->ev_lock);
	ev->ev_stop = true;
	pthread_cond_broadcast(&ev->ev_cond);
	pthread_mutex_unlock(&ev->ev_lock);
	ev_sinks_join(ev);
	if (ev->ev_janitor_started)
		pthread_join(ev->ev_janitor, NULL);
	queue_set_event_listener(ev->ev_q, NULL, NULL);
	ev_free(ev);
	*evp = NULL;
}

void events_reopen(struct events *ev)
{
	if (ev == NULL)
		return;
	pthread_mutex_lock(&ev->ev_lock);
	for (unsigned i = 0; i < ev->ev_nsinks; i++)
		atomic_store(&ev->ev_sinks[i].s_reopen, true);
	pthread_cond_broadcast(&ev->ev_cond);
	pthread_mutex_unlock(&ev->ev_lock);
}

/* Whether the sinks' settings differ (events_max_backlog is not theirs). */
static bool ev_sinks_differ(const struct config *a, const struct config *b)
{
	return strcmp(a->event_log, b->event_log) != 0 ||
	       strcmp(a->event_log_format, b->event_log_format) != 0 ||
	       strcmp(a->webhook_url, b->webhook_url) != 0 ||
	       strcmp(a->webhook_events, b->webhook_events) != 0 ||
	       a->webhook_batch_max != b->webhook_batch_max ||
	       a->webhook_batch_wait != b->webhook_batch_wait ||
	       a->webhook_timeout != b->webhook_timeout ||
	       strcmp(a->webhook_header_file, b->webhook_header_file) != 0 ||
	       a->webhook_tls_verify != b->webhook_tls_verify ||
	       strcmp(a->tls_ca_file, b->tls_ca_file) != 0;
}

int events_reload(struct events *ev, const struct config *cfg, bool *changed_r, char *err,
		  size_t errlen)
{
	struct ev_sink fresh[EVENTS_SINKS_MAX];
	struct ev_set set = { fresh, 0 };
	struct ev_set old = { ev->ev_sinks, 0 };
	struct ev_file_sig sig;

	*changed_r = false;
	ev_file_sig(cfg->webhook_header_file, &sig);
	if (!ev_sinks_differ(atomic_load(&ev->ev_cfg), cfg) &&
	    memcmp(&sig, &ev->ev_hdr_sig, sizeof(sig)) == 0) {
		atomic_store(&ev->ev_cfg, cfg);		/* events_max_backlog */
		return 0;
	}
	/* Made in full before the running ones stop: a bad file keeps them. */
	if (ev_sinks_make(ev, cfg, &set, err, errlen) < 0) {
		ev_set_free(&set);
		return -1;
	}
	ev_sinks_join(ev);
	pthread_mutex_lock(&ev->ev_lock);
	old.es_n = ev->ev_nsinks;
	ev_set_free(&old);
	for (unsigned i = 0; i < set.es_n; i++) {
		/* Where the stopped sink of the same name left its cursor. */
		atomic_store(&fresh[i].s_cursor, ev_cursor_read(&fresh[i]));
		memcpy(&ev->ev_sinks[i], &fresh[i], sizeof(fresh[i]));
	}
	ev->ev_nsinks = set.es_n;
	ev->ev_hdr_sig = sig;
	atomic_store(&ev->ev_cfg, cfg);
	pthread_mutex_unlock(&ev->ev_lock);
	*changed_r = true;
	return ev_sinks_start(ev, err, errlen);
}

unsigned events_nsinks(struct events *ev)
{
	unsigned n;

	pthread_mutex_lock(&ev->ev_lock);
	n = ev->ev_nsinks;
	pthread_mutex_unlock(&ev->ev_lock);
	return n;
}

/* Committer thread: the records are stored (or not); free them. */
static void ev_submit_done(struct queue_update *u)
{
	if (u->qu_status != 0)
		log_msg(LOG_WARNING, "events: records not stored: %s",
			queue_strerror(u->qu_status));
	queue_events_free(&u->qu_events);
	free(u);
}

void events_submit(struct events *ev, struct queue_event *list)
{
	struct queue_update *u;

	if (list == NULL)
		return;
	if (ev == NULL || (u = calloc(1, sizeof(*u))) == NULL) {
		queue_events_free(&list);
		return;
	}
	u->qu_events = list;
	u->qu_done = ev_submit_done;
	queue_submit_update(ev->ev_q, u);
}

/* A JSON text as a value: the text itself when it is not JSON; null for NULL. */
static json_t *ev_json_or_text(const char *text)
{
	json_t *d = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;

	if (d == NULL && text != NULL)
		d = json_string(text);
	return d != NULL ? d : json_null();
}

void event_admin(struct events *ev, const char *action, const char *detail, const char *result)
{
	struct queue_event *list = NULL;
	json_t *o;

	if (!events_on(ev))
		return;
	if ((o = event_new(EVENT_ADMIN)) == NULL)
		return;
	json_object_set_new(o, "action", json_string(action ? action : ""));
	json_object_set_new(o, "detail", ev_json_or_text(detail));
	json_object_set_new(o, "result", ev_json_or_text(result));
	if (event_append(&list, o) == 0)
		events_submit(ev, list);
}

void events_get_stats(struct events *ev, struct events_stats *st)
{
	uint64_t first;

	memset(st, 0, sizeof(*st));
	if (ev == NULL)
		return;
	(void)queue_events_stat(ev->ev_q, &st->es_stored, &first);
	st->es_last = queue_events_last(ev->ev_q);
	st->es_dropped = atomic_load(&ev->ev_dropped);
	pthread_mutex_lock(&ev->ev_lock);
	st->es_nsinks = ev->ev_nsinks;
	for (unsigned i = 0; i < ev->ev_nsinks && i < 8; i++) {
		struct ev_sink *s = &ev->ev_sinks[i];
		struct events_sink_stats *ss = &st->es_sinks[i];
		uint64_t c = atomic_load(&s->s_cursor);

		snprintf(ss->ss_name, sizeof(ss->ss_name), "%s", s->s_name);
		ss->ss_pending = st->es_last > c ? st->es_last - c : 0;
		ss->ss_requests = atomic_load(&s->s_requests);
		ss->ss_failures = atomic_load(&s->s_failures);
		ss->ss_last_success = atomic_load(&s->s_last_success);
	}
	pthread_mutex_unlock(&ev->ev_lock);
}
