/*
 * shp_source.c: the sources state of shp_source.h: which source of a
 * pool carries the next message, the warm-up counters per (source,
 * provider, period), the sources out of service, and the counters'
 * save/restore blob.
 *
 * Choice: smooth weighted round-robin (as nginx balances upstreams):
 * every pick adds each candidate's weight to its current value, takes
 * the largest and subtracts the candidates' total from it. Over any run
 * of sum(weights) picks each source gets exactly its weight, interleaved
 * rather than in bursts, and tests can count on it (no random numbers).
 * The current values live per pool name; a reload starts them again.
 *
 * Everything is keyed by source name, never by pointer: the struct
 * shp_source of one rules generation is gone after a reload, its name
 * and counters are not. Sources and providers are few (tens), so the
 * lookups are linear scans under one mutex.
 */
#include "core/shaping/shp_source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"

#define SHP_SRC_DAY 86400u

/* Messages from one source to one provider ("" = none) in one period. */
struct shp_src_count {
	char *sc_provider;
	uint64_t sc_period_start;
	uint64_t sc_sent;
	uint64_t sc_pending;	/* picked, not yet sent (or given back) */
};

struct shp_src_entry {
	char *se_name;
	bool se_out;			/* failed to bind: out of service */
	unsigned se_ncounts;
	struct shp_src_count *se_counts;
};

/* The smooth weighted round-robin values of one pool. */
struct shp_src_pool {
	char *sp_name;
	unsigned sp_n;
	int64_t *sp_cur;
};

struct shp_src_state {
	pthread_mutex_t s_lock;
	unsigned s_nsrc;
	struct shp_src_entry *s_src;
	unsigned s_npool;
	struct shp_src_pool *s_pool;
};

int shp_src_state_new(struct shp_src_state **s_r)
{
	struct shp_src_state *s = calloc(1, sizeof(*s));

	*s_r = NULL;
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->s_lock, NULL);
	*s_r = s;
	return 0;
}

static void shp_src_entry_clear(struct shp_src_entry *e)
{
	for (unsigned i = 0; i < e->se_ncounts; i++)
		free(e->se_counts[i].sc_provider);
	free(e->se_counts);
	free(e->se_name);
	memset(e, 0, sizeof(*e));
}

static void shp_src_pools_clear(struct shp_src_state *s)
{
	for (unsigned i = 0; i < s->s_npool; i++) {
		free(s->s_pool[i].sp_name);
		free(s->s_pool[i].sp_cur);
	}
	free(s->s_pool);
	s->s_pool = NULL;
	s->s_npool = 0;
}

void shp_src_state_free(struct shp_src_state **sp)
{
	struct shp_src_state *s = *sp;

	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->s_nsrc; i++)
		shp_src_entry_clear(&s->s_src[i]);
	free(s->s_src);
	shp_src_pools_clear(s);
	pthread_mutex_destroy(&s->s_lock);
	free(s);
	*sp = NULL;
}

/* Room for one more element of size at the end of *arr (n in use): the
 * new element, zeroed, not yet counted; NULL when out of memory (*arr
 * is then unchanged). */
static void *shp_src_grow(void **arr, unsigned n, size_t size)
{
	char *a = realloc(*arr, (n + 1) * size);

	if (a == NULL)
		return NULL;
	*arr = a;
	memset(a + n * size, 0, size);
	return a + n * size;
}

/* The entry of the source named name, created when create; NULL when
 * absent (or out of memory). */
static struct shp_src_entry *shp_src_entry(struct shp_src_state *s, const char *name,
					   bool create)
{
	struct shp_src_entry *n;

	for (unsigned i = 0; i < s->s_nsrc; i++) {
		if (strcmp(s->s_src[i].se_name, name) == 0)
			return &s->s_src[i];
	}
	if (!create)
		return NULL;
	n = shp_src_grow((void **)&s->s_src, s->s_nsrc, sizeof(*n));
	if (n == NULL || (n->se_name = strdup(name)) == NULL)
		return NULL;
	s->s_nsrc++;
	return n;
}

static struct shp_src_count *shp_src_count(struct shp_src_entry *e, const char *provider,
					   bool create)
{
	struct shp_src_count *n;

	for (unsigned i = 0; i < e->se_ncounts; i++) {
		if (strcmp(e->se_counts[i].sc_provider, provider) == 0)
			return &e->se_counts[i];
	}
	if (!create)
		return NULL;
	n = shp_src_grow((void **)&e->se_counts, e->se_ncounts, sizeof(*n));
	if (n == NULL || (n->sc_provider = strdup(provider)) == NULL)
		return NULL;
	e->se_ncounts++;
	return n;
}

/* The warm-up period holding now for (src, provider): its cap, start and
 * length. Without a schedule the period is the UTC day, for the counts
 * that metrics show. */
static uint64_t shp_src_period(const struct shp_source *src, const char *provider, uint64_t now,
			       uint64_t *start_r, uint64_t *len_r)
{
	uint64_t cap;

	*start_r = now - now % SHP_SRC_DAY;
	*len_r = SHP_SRC_DAY;
	if (src->ss_warmup == NULL)
		return UINT64_MAX;
	cap = shp_warmup_cap(src, provider[0] ? provider : NULL, now, start_r, len_r);
	if (*len_r == 0) {
		*start_r = now - now % SHP_SRC_DAY;
		*len_r = SHP_SRC_DAY;
	}
	return cap;
}

/* Messages sent or on their way in the period starting at start (0 once
 * it rolled): what the cap is held against, so that picks made before
 * the first of them is sent cannot overshoot it. */
static uint64_t shp_src_used_in(struct shp_src_state *s, const char *name, const char *provider,
				uint64_t start)
{
	struct shp_src_entry *e = shp_src_entry(s, name, false);
	struct shp_src_count *c = e ? shp_src_count(e, provider, false) : NULL;

	return c != NULL && c->sc_period_start == start ? c->sc_sent + c->sc_pending : 0;
}

/* The counters of (src, provider) for the period holding now, rolled
 * over when that period is new; NULL when out of memory. Lock held. */
static struct shp_src_count *shp_src_counter(struct shp_src_state *s,
					     const struct shp_source *src, const char *prov,
					     uint64_t now)
{
	struct shp_src_entry *e = shp_src_entry(s, src->ss_name, true);
	struct shp_src_count *c = e ? shp_src_count(e, prov, true) : NULL;
	uint64_t start, len;

	(void)shp_src_period(src, prov, now, &start, &len);
	if (c != NULL && c->sc_period_start != start) {
		c->sc_period_start = start;
		c->sc_sent = 0;
		c->sc_pending = 0;
	}
	return c;
}

static struct shp_src_pool *shp_src_pool(struct shp_src_state *s, const struct shp_pool *p)
{
	struct shp_src_pool *n;

	for (unsigned i = 0; i < s->s_npool; i++) {
		n = &s->s_pool[i];
		if (strcmp(n->sp_name, p->sp_name) != 0)
			continue;
		if (n->sp_n != p->sp_n) {
			int64_t *cur = calloc(p->sp_n ? p->sp_n : 1, sizeof(*cur));

			if (cur == NULL)
				return NULL;
			free(n->sp_cur);
			n->sp_cur = cur;
			n->sp_n = p->sp_n;
		}
		return n;
	}
	n = realloc(s->s_pool, (s->s_npool + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	s->s_pool = n;
	n = &s->s_pool[s->s_npool];
	n->sp_name = strdup(p->sp_name);
	n->sp_n = p->sp_n;
	n->sp_cur = calloc(p->sp_n ? p->sp_n : 1, sizeof(*n->sp_cur));
	if (n->sp_name == NULL || n->sp_cur == NULL) {
		free(n->sp_name);
		free(n->sp_cur);
		return NULL;
	}
	s->s_npool++;
	return n;
}

/* One smooth weighted round-robin step over the sources flagged in
 * cand: the chosen index, or -1 when there is no candidate. */
static int shp_src_swrr(struct shp_src_pool *ps, const struct shp_pool *p, const bool *cand)
{
	int64_t total = 0;
	int best = -1;

	for (unsigned i = 0; i < p->sp_n; i++) {
		if (!cand[i])
			continue;
		ps->sp_cur[i] += p->sp_weights[i];
		total += p->sp_weights[i];
		if (best < 0 || ps->sp_cur[i] > ps->sp_cur[best])
			best = (int)i;
	}
	if (best >= 0)
		ps->sp_cur[best] -= total;
	return best;
}

enum shp_src_pick_result shp_src_pick(struct shp_src_state *s, const struct shp_pool *p,
				      const char *provider, uint64_t now_s,
				      const struct shp_source **src_r, uint64_t *retry_at_r)
{
	const char *prov = provider ? provider : "";
	bool in[p->sp_n ? p->sp_n : 1], room[p->sp_n ? p->sp_n : 1];
	uint64_t next[p->sp_n ? p->sp_n : 1], retry = UINT64_MAX;
	enum shp_src_pick_result res = SHP_SRC_NONE;
	unsigned nin = 0;
	struct shp_src_pool *ps;
	int k;

	*src_r = NULL;
	*retry_at_r = 0;
	pthread_mutex_lock(&s->s_lock);
	for (unsigned i = 0; i < p->sp_n; i++) {
		const struct shp_source *src = p->sp_sources[i];
		struct shp_src_entry *e = shp_src_entry(s, src->ss_name, false);
		uint64_t start, len, cap = shp_src_period(src, prov, now_s, &start, &len);

		in[i] = e == NULL || !e->se_out;
		room[i] = in[i] && (cap == UINT64_MAX ||
				    shp_src_used_in(s, src->ss_name, prov, start) < cap);
		next[i] = start + len;
		nin += in[i];
		if (in[i] && !room[i] && next[i] < retry)
			retry = next[i];
	}
	ps = nin ? shp_src_pool(s, p) : NULL;
	if (ps == NULL)
		goto out;	/* all out of service (or no memory: the same answer) */
	if (p->sp_spill) {
		/* Capped sources step aside; the others share by weight. */
		k = shp_src_swrr(ps, p, room);
		if (k < 0) {
			*retry_at_r = retry;
			res = SHP_SRC_WAIT;
			goto out;
		}
	} else {
		/* The capped source keeps its share: its turn waits. */
		k = shp_src_swrr(ps, p, in);
		if (!room[k]) {
			*retry_at_r = next[k];
			res = SHP_SRC_WAIT;
			goto out;
		}
	}
	*src_r = p->sp_sources[k];
	res = SHP_SRC_OK;
	{
		struct shp_src_count *c = shp_src_counter(s, *src_r, prov, now_s);

		if (c != NULL)
			c->sc_pending++;
	}
out:
	pthread_mutex_unlock(&s->s_lock);
	return res;
}

void shp_src_sent(struct shp_src_state *s, const struct shp_source *src, const char *provider,
		  uint64_t now_s)
{
	struct shp_src_count *c;

	pthread_mutex_lock(&s->s_lock);
	c = shp_src_counter(s, src, provider ? provider : "", now_s);
	if (c != NULL) {
		c->sc_sent++;
		if (c->sc_pending > 0)
			c->sc_pending--;
	}
	pthread_mutex_unlock(&s->s_lock);
}

void shp_src_unpicked(struct shp_src_state *s, const struct shp_source *src,
		      const char *provider, uint64_t now_s)
{
	struct shp_src_count *c;

	pthread_mutex_lock(&s->s_lock);
	c = shp_src_counter(s, src, provider ? provider : "", now_s);
	if (c != NULL && c->sc_pending > 0)
		c->sc_pending--;
	pthread_mutex_unlock(&s->s_lock);
}

int shp_src_repick(struct shp_src_state *s, const struct shp_source *src, const char *from,
		   const char *to, uint64_t now_s, uint64_t *retry_at_r)
{
	struct shp_src_count *c;
	uint64_t start, len, cap;
	int rc = -1;

	*retry_at_r = 0;
	pthread_mutex_lock(&s->s_lock);
	c = shp_src_counter(s, src, from ? from : "", now_s);
	if (c != NULL && c->sc_pending > 0)
		c->sc_pending--;
	cap = shp_src_period(src, to ? to : "", now_s, &start, &len);
	if (cap == UINT64_MAX || shp_src_used_in(s, src->ss_name, to ? to : "", start) < cap) {
		c = shp_src_counter(s, src, to ? to : "", now_s);
		if (c != NULL)
			c->sc_pending++;
		rc = 0;
	} else {
		*retry_at_r = start + len;
	}
	pthread_mutex_unlock(&s->s_lock);
	return rc;
}

/* "127.0.0.2" or "2001:db8::1" for logs. */
static void shp_src_addr_str(const struct shp_source *src, char *out, size_t len)
{
	const struct sockaddr_storage *ss = &src->ss_addr;
	const void *a = ss->ss_family == AF_INET6 ?
			(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
			(const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, out, (socklen_t)len) == NULL)
		snprintf(out, len, "(none)");
}

void shp_src_bind_failed(struct shp_src_state *s, const struct shp_source *src, int err)
{
	struct shp_src_entry *e;
	bool first = false;
	char addr[INET6_ADDRSTRLEN];

	pthread_mutex_lock(&s->s_lock);
	e = shp_src_entry(s, src->ss_name, true);
	if (e != NULL && !e->se_out) {
		e->se_out = true;
		first = true;
	}
	pthread_mutex_unlock(&s->s_lock);
	if (!first)
		return;
	shp_src_addr_str(src, addr, sizeof(addr));
	log_msg(LOG_WARNING, "source %s address %s cannot be bound (%s): out of service until"
		" the rules are reloaded", src->ss_name, addr, strerror(err < 0 ? -err : err));
}

void shp_src_foreach(struct shp_src_state *s,
		     void (*fn)(void *arg, const char *source, const char *provider,
				uint64_t sent_this_period, int out_of_service),
		     void *arg)
{
	pthread_mutex_lock(&s->s_lock);
	for (unsigned i = 0; i < s->s_nsrc; i++) {
		const struct shp_src_entry *e = &s->s_src[i];

		if (e->se_ncounts == 0)
			fn(arg, e->se_name, NULL, 0, e->se_out);
		for (unsigned k = 0; k < e->se_ncounts; k++)
			fn(arg, e->se_name,
			   e->se_counts[k].sc_provider[0] ? e->se_counts[k].sc_provider : NULL,
			   e->se_counts[k].sc_sent, e->se_out);
	}
	pthread_mutex_unlock(&s->s_lock);
}

void shp_src_reloaded(struct shp_src_state *s, const struct shp_rules *r)
{
	unsigned k = 0;

	pthread_mutex_lock(&s->s_lock);
	for (unsigned i = 0; i < s->s_nsrc; i++) {
		struct shp_src_entry *e = &s->s_src[i];

		if (shp_rules_source_by_name(r, e->se_name) == NULL) {
			shp_src_entry_clear(e);
			continue;
		}
		e->se_out = false;
		s->s_src[k++] = *e;
	}
	s->s_nsrc = k;
	/* Pools may hold other sources now: their turns start again. */
	shp_src_pools_clear(s);
	pthread_mutex_unlock(&s->s_lock);
}

/*
 * The blob, all integers little-endian:
 *   "RSRC" u32 version (1) u32 records
 *   records x { u16 name_len, name, u16 provider_len, provider,
 *               u64 period_start, u64 sent }
 *   u32 FNV-1a of everything before it
 * Restore checks the whole blob before it changes anything.
 */
#define SHP_SRC_MAGIC "RSRC"
#define SHP_SRC_VERSION 1u

struct shp_src_buf {
	uint8_t *b;
	size_t len, pos;
};

static void shp_src_put(struct shp_src_buf *w, const void *p, size_t n)
{
	if (w->pos + n <= w->len)
		memcpy(w->b + w->pos, p, n);
	w->pos += n;
}

static void shp_src_put_le(struct shp_src_buf *w, uint64_t v, unsigned n)
{
	uint8_t le[8];

	for (unsigned i = 0; i < n; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	shp_src_put(w, le, n);
}

static uint32_t shp_src_fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

size_t shp_src_save(struct shp_src_state *s, void *buf, size_t len)
{
	struct shp_src_buf w = { buf, len, 0 };
	uint32_t nrec = 0;

	pthread_mutex_lock(&s->s_lock);
	for (unsigned i = 0; i < s->s_nsrc; i++)
		nrec += s->s_src[i].se_ncounts;
	shp_src_put(&w, SHP_SRC_MAGIC, 4);
	shp_src_put_le(&w, SHP_SRC_VERSION, 4);
	shp_src_put_le(&w, nrec, 4);
	for (unsigned i = 0; i < s->s_nsrc; i++) {
		const struct shp_src_entry *e = &s->s_src[i];
		size_t nl = strlen(e->se_name);

		for (unsigned k = 0; k < e->se_ncounts; k++) {
			const struct shp_src_count *c = &e->se_counts[k];
			size_t pl = strlen(c->sc_provider);

			shp_src_put_le(&w, nl, 2);
			shp_src_put(&w, e->se_name, nl);
			shp_src_put_le(&w, pl, 2);
			shp_src_put(&w, c->sc_provider, pl);
			shp_src_put_le(&w, c->sc_period_start, 8);
			shp_src_put_le(&w, c->sc_sent, 8);
		}
	}
	pthread_mutex_unlock(&s->s_lock);
	if (w.pos + 4 <= len)
		shp_src_put_le(&w, shp_src_fnv(buf, w.pos), 4);
	else
		w.pos += 4;
	return w.pos;
}

static bool shp_src_get(const uint8_t *b, size_t len, size_t *pos, uint64_t *v_r, unsigned n)
{
	if (len - *pos < n)
		return false;
	*v_r = 0;
	for (unsigned i = 0; i < n; i++)
		*v_r |= (uint64_t)b[*pos + i] << (8 * i);
	*pos += n;
	return true;
}

/* One record at *pos: name and provider as (pointer, length) into b. */
struct shp_src_rec {
	const char *name, *prov;
	size_t nl, pl;
	uint64_t start, sent;
};

static bool shp_src_get_rec(const uint8_t *b, size_t len, size_t *pos, struct shp_src_rec *r)
{
	uint64_t v;

	if (!shp_src_get(b, len, pos, &v, 2) || v == 0 || len - *pos < v)
		return false;
	r->name = (const char *)b + *pos;
	r->nl = v;
	*pos += v;
	if (!shp_src_get(b, len, pos, &v, 2) || len - *pos < v)
		return false;
	r->prov = (const char *)b + *pos;
	r->pl = v;
	*pos += v;
	return memchr(r->name, '\0', r->nl) == NULL && memchr(r->prov, '\0', r->pl) == NULL &&
	       shp_src_get(b, len, pos, &r->start, 8) && shp_src_get(b, len, pos, &r->sent, 8);
}

int shp_src_restore(struct shp_src_state *s, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t pos = 4, body;
	uint64_t ver, nrec, sum;
	struct shp_src_rec r;

	if (len < 16 || memcmp(b, SHP_SRC_MAGIC, 4) != 0)
		goto bad;
	body = len - 4;
	pos = body;
	if (!shp_src_get(b, len, &pos, &sum, 4) || sum != shp_src_fnv(b, body))
		goto bad;
	pos = 4;
	if (!shp_src_get(b, body, &pos, &ver, 4) || ver != SHP_SRC_VERSION) {
		log_msg(LOG_WARNING, "sources: saved warm-up counters of an unknown version"
			" ignored");
		return -1;
	}
	if (!shp_src_get(b, body, &pos, &nrec, 4))
		goto bad;
	for (uint64_t i = 0; i < nrec; i++) {
		if (!shp_src_get_rec(b, body, &pos, &r))
			goto bad;
	}
	if (pos != body)
		goto bad;
	/* Checked: apply. */
	pos = 12;
	pthread_mutex_lock(&s->s_lock);
	for (uint64_t i = 0; i < nrec; i++) {
		struct shp_src_entry *e = NULL;
		struct shp_src_count *c = NULL;
		char *name, *prov;

		(void)shp_src_get_rec(b, body, &pos, &r);
		name = strndup(r.name, r.nl);
		prov = strndup(r.prov, r.pl);
		if (name != NULL && prov != NULL)
			e = shp_src_entry(s, name, true);
		if (e != NULL)
			c = shp_src_count(e, prov, true);
		if (c != NULL) {
			c->sc_period_start = r.start;
			c->sc_sent = r.sent;
		}
		free(name);
		free(prov);
	}
	pthread_mutex_unlock(&s->s_lock);
	return 0;
bad:
	log_msg(LOG_WARNING, "sources: saved warm-up counters damaged (%zu bytes), ignored", len);
	return -1;
}
