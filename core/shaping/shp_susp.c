/*
 * shp_susp.c: the operator's suspensions (shp_susp.h). A small table
 * searched in full: it holds what a person set by hand, so it stays short
 * (SHP_SUSP_MAX bounds it), and the delivery path asks it only when it is
 * not empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_susp_internal.h"

static const char *const shp_susp_kinds[SHP_SUSP_NKINDS] = {
	"site", "domain", "source", "sender_domain",
};

const char *shp_susp_kind_name(enum shp_susp_kind k)
{
	return (unsigned)k < SHP_SUSP_NKINDS ? shp_susp_kinds[k] : "?";
}

int shp_susp_kind_parse(const char *s)
{
	for (unsigned k = 0; s != NULL && k < SHP_SUSP_NKINDS; k++)
		if (strcmp(s, shp_susp_kinds[k]) == 0)
			return (int)k;
	return -1;
}

int shp_susp_duration_parse(const char *s, uint64_t *us_r)
{
	uint64_t n = 0, unit;
	const char *p = s;

	*us_r = 0;
	if (s == NULL)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > 366ull * 86400u)
			return -EINVAL;
	}
	if (p == s || n == 0 || p[0] == '\0' || p[1] != '\0')
		return -EINVAL;
	switch (*p) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -EINVAL;
	}
	if (n * unit * 1000000u > SHP_SUSP_DURATION_MAX)
		return -EINVAL;
	*us_r = n * unit * 1000000u;
	return 0;
}

int shp_susp_new(struct shp_susp **s_r)
{
	struct shp_susp *s = calloc(1, sizeof(*s));

	*s_r = NULL;
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->ss_lock, NULL);
	atomic_init(&s->ss_count, 0);
	*s_r = s;
	return 0;
}

void shp_susp_free(struct shp_susp **sp)
{
	struct shp_susp *s = *sp;

	if (s == NULL)
		return;
	free(s->ss_ents);
	pthread_mutex_destroy(&s->ss_lock);
	free(s);
	*sp = NULL;
}

/* name lowercased into out (SHP_SUSP_NAME_MAX + 1); false when empty,
 * too long or with bytes that have no place in a name. */
static bool shp_susp_name(const char *name, char *out)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > SHP_SUSP_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (i < n && (c <= ' ' || c == 0x7f))
			return false;
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return true;
}

/* Copy text cut at cap - 1 bytes, control characters as spaces. */
static void shp_susp_text(char *out, size_t cap, const char *text)
{
	size_t i = 0;

	for (; text != NULL && text[i] != '\0' && i + 1 < cap; i++)
		out[i] = (unsigned char)text[i] < ' ' || text[i] == 0x7f ? ' ' : text[i];
	out[i] = '\0';
}

static struct shp_susp_ent *shp_susp_find(struct shp_susp *s, enum shp_susp_kind k,
					  const char *lname)
{
	for (unsigned i = 0; i < s->ss_n; i++)
		if (s->ss_ents[i].se_kind == k && strcmp(s->ss_ents[i].se_name, lname) == 0)
			return &s->ss_ents[i];
	return NULL;
}

static void shp_susp_remove_at(struct shp_susp *s, unsigned i)
{
	memmove(&s->ss_ents[i], &s->ss_ents[i + 1], (s->ss_n - i - 1) * sizeof(s->ss_ents[0]));
	s->ss_n--;
	atomic_store(&s->ss_count, s->ss_n);
}

int shp_susp_put_locked(struct shp_susp *s, enum shp_susp_kind k, const char *name,
			const char *who, const char *reason, uint64_t set, uint64_t until)
{
	char lname[SHP_SUSP_NAME_MAX + 1];
	struct shp_susp_ent *e;

	if ((unsigned)k >= SHP_SUSP_NKINDS || !shp_susp_name(name, lname))
		return -EINVAL;
	e = shp_susp_find(s, k, lname);
	if (e != NULL) {
		/* A new setting of the same selector goes to the end: the
		 * listing shows the order things were decided in. */
		shp_susp_remove_at(s, (unsigned)(e - s->ss_ents));
	}
	if (s->ss_n == s->ss_cap) {
		unsigned cap = s->ss_cap ? s->ss_cap * 2 : 8;
		struct shp_susp_ent *n;

		if (s->ss_n >= SHP_SUSP_MAX)
			return -ENOSPC;
		if (cap > SHP_SUSP_MAX)
			cap = SHP_SUSP_MAX;
		n = realloc(s->ss_ents, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		s->ss_ents = n;
		s->ss_cap = cap;
	}
	e = &s->ss_ents[s->ss_n];
	memset(e, 0, sizeof(*e));
	e->se_kind = (uint8_t)k;
	memcpy(e->se_name, lname, sizeof(lname));
	shp_susp_text(e->se_who, sizeof(e->se_who), who != NULL && who[0] ? who : "admin");
	shp_susp_text(e->se_reason, sizeof(e->se_reason), reason);
	e->se_set = set;
	e->se_until = until;
	s->ss_n++;
	atomic_store(&s->ss_count, s->ss_n);
	return 0;
}

int shp_susp_set(struct shp_susp *s, enum shp_susp_kind k, const char *name, const char *who,
		 const char *reason, uint64_t now, uint64_t until)
{
	int rc;

	if (until <= now)
		return -EINVAL;
	pthread_mutex_lock(&s->ss_lock);
	/* Room first from what ended by itself. */
	if (s->ss_n >= SHP_SUSP_MAX)
		for (unsigned i = s->ss_n; i-- > 0;)
			if (s->ss_ents[i].se_until <= now)
				shp_susp_remove_at(s, i);
	rc = shp_susp_put_locked(s, k, name, who, reason, now, until);
	pthread_mutex_unlock(&s->ss_lock);
	return rc;
}

int shp_susp_clear(struct shp_susp *s, enum shp_susp_kind k, const char *name, uint64_t now,
		   uint64_t *until_r)
{
	char lname[SHP_SUSP_NAME_MAX + 1];
	struct shp_susp_ent *e;
	int rc = -ENOENT;

	if (until_r != NULL)
		*until_r = 0;
	if ((unsigned)k >= SHP_SUSP_NKINDS || !shp_susp_name(name, lname))
		return -ENOENT;
	pthread_mutex_lock(&s->ss_lock);
	e = shp_susp_find(s, k, lname);
	if (e != NULL) {
		if (e->se_until > now) {
			rc = 0;
			if (until_r != NULL)
				*until_r = e->se_until;
		}
		shp_susp_remove_at(s, (unsigned)(e - s->ss_ents));
	}
	pthread_mutex_unlock(&s->ss_lock);
	return rc;
}

uint64_t shp_susp_until(struct shp_susp *s, enum shp_susp_kind k, const char *name,
			uint64_t now)
{
	char lname[SHP_SUSP_NAME_MAX + 1];
	const struct shp_susp_ent *e;
	uint64_t until = 0;

	if ((unsigned)k >= SHP_SUSP_NKINDS || !shp_susp_name(name, lname))
		return 0;
	pthread_mutex_lock(&s->ss_lock);
	e = shp_susp_find(s, k, lname);
	if (e != NULL && e->se_until > now)
		until = e->se_until;
	pthread_mutex_unlock(&s->ss_lock);
	return until;
}

bool shp_susp_none(struct shp_susp *s)
{
	return atomic_load_explicit(&s->ss_count, memory_order_relaxed) == 0;
}

/* Whether a (lowercase) equals b in any case; b may be NULL. */
static bool shp_susp_same(const char *a, const char *b)
{
	if (b == NULL || b[0] == '\0')
		return false;
	for (; *a != '\0'; a++, b++) {
		unsigned char c = (unsigned char)*b;

		if (*a != (char)(c >= 'A' && c <= 'Z' ? c + 32 : c))
			return false;
	}
	return *b == '\0';
}

bool shp_susp_check(struct shp_susp *s, const struct shp_susp_mail *m, uint64_t now,
		    uint64_t *until_r, char *why, size_t whylen)
{
	const char *names[SHP_SUSP_NKINDS] = {
		m->sm_site, m->sm_domain, m->sm_source, m->sm_sender_domain,
	};
	const struct shp_susp_ent *hit = NULL;

	*until_r = 0;
	if (shp_susp_none(s))
		return false;
	pthread_mutex_lock(&s->ss_lock);
	for (unsigned i = 0; i < s->ss_n; i++) {
		const struct shp_susp_ent *e = &s->ss_ents[i];

		if (e->se_until <= now || !shp_susp_same(e->se_name, names[e->se_kind]))
			continue;
		if (hit == NULL || e->se_until > hit->se_until)
			hit = e;
	}
	if (hit != NULL) {
		*until_r = hit->se_until;
		if (why != NULL)
			snprintf(why, whylen, "%s %s suspended by %s%s%s",
				 shp_susp_kind_name(hit->se_kind), hit->se_name, hit->se_who,
				 hit->se_reason[0] ? ": " : "", hit->se_reason);
	}
	pthread_mutex_unlock(&s->ss_lock);
	return hit != NULL;
}

unsigned shp_susp_foreach(struct shp_susp *s, uint64_t now,
			  void (*fn)(void *arg, const struct shp_susp_item *it), void *arg)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->ss_lock);
	for (unsigned i = 0; i < s->ss_n; i++) {
		const struct shp_susp_ent *e = &s->ss_ents[i];
		struct shp_susp_item it = {
			(enum shp_susp_kind)e->se_kind, e->se_name, e->se_who, e->se_reason,
			e->se_set, e->se_until,
		};

		if (e->se_until <= now)
			continue;
		fn(arg, &it);
		n++;
	}
	pthread_mutex_unlock(&s->ss_lock);
	return n;
}

bool shp_susp_expire(struct shp_susp *s, uint64_t now)
{
	bool any = false;

	pthread_mutex_lock(&s->ss_lock);
	for (unsigned i = s->ss_n; i-- > 0;) {
		if (s->ss_ents[i].se_until <= now) {
			shp_susp_remove_at(s, i);
			any = true;
		}
	}
	pthread_mutex_unlock(&s->ss_lock);
	return any;
}
