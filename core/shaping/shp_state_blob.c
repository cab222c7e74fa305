/*
 * shp_state_blob.c: the shaping state as a versioned text blob, one line
 * per fact, fields separated by tabs, so that what ringmta remembers
 * across a restart can be read with `ringmta queue`:
 *
 *   ringmta-shaping-state 1
 *   A <site> <source|-> <slot> <until> <pause_until> <value> <allow> <succ>
 *     <rate count> <rate period us> <rate burst> <rule>
 *   H <site> <level> <health until>
 *   L <site> <source|-> <max messages per connection>
 *
 * The domain -> site cache is not saved (it is refilled by DNS). A probe
 * in flight is not saved either: after a restart the next one is due.
 * A blob that does not parse in full is refused as a whole.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_blob.h"
#include "core/shaping/shp_state_internal.h"

#define SHP_BLOB_MAGIC "ringmta-shaping-state"
#define SHP_BLOB_VERSION 1

struct shp_out {
	char *so_buf;
	size_t so_len, so_used;
};

static void shp_out_add(struct shp_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void shp_out_add(struct shp_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = o->so_used < o->so_len ? o->so_len - o->so_used : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->so_buf + o->so_used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->so_used += (size_t)n;
}

size_t shp_state_save(struct shp_state *st, uint64_t now, char *buf, size_t len)
{
	struct shp_out o = { buf, len, 0 };

	pthread_mutex_lock(&st->st_lock);
	shp_out_add(&o, "%s %d\n", SHP_BLOB_MAGIC, SHP_BLOB_VERSION);
	for (unsigned b = 0; b < SHP_STATE_BUCKETS; b++) {
		for (struct shp_pstate *p = st->st_b[b]; p != NULL; p = p->ps_next) {
			const char *src = p->ps_source[0] ? p->ps_source : "-";

			for (unsigned k = 0; k < SHP_NSLOTS; k++) {
				const struct shp_active *a = &p->ps_act[k];

				if (a->pa_until == 0 || now >= a->pa_until)
					continue;
				shp_out_add(&o, "A\t%s\t%s\t%u\t%" PRIu64 "\t%" PRIu64 "\t%u\t%u\t%u\t%"
					    PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\n", p->ps_site, src,
					    k, a->pa_until, a->pa_pause_until, a->pa_value,
					    a->pa_allow, a->pa_succ, a->pa_rate.sr_count,
					    a->pa_rate.sr_period_us, a->pa_rate.sr_burst,
					    a->pa_rule[0] ? a->pa_rule : "-");
			}
			if (p->ps_level > 0)
				shp_out_add(&o, "H\t%s\t%u\t%" PRIu64 "\n", p->ps_site, p->ps_level,
					    p->ps_health_until);
			if (p->ps_max_msgs > 0)
				shp_out_add(&o, "L\t%s\t%s\t%u\n", p->ps_site, src, p->ps_max_msgs);
		}
	}
	pthread_mutex_unlock(&st->st_lock);
	return o.so_used + 1;	/* with the NUL */
}

/* Split line (NUL-terminated, modified) at tabs into at most max fields. */
static unsigned shp_fields(char *line, char **f, unsigned max)
{
	unsigned n = 0;

	while (n < max) {
		f[n++] = line;
		line = strchr(line, '\t');
		if (line == NULL)
			break;
		*line++ = '\0';
	}
	return line == NULL ? n : max + 1;	/* too many: refused */
}

static bool shp_u64(const char *s, uint64_t *v_r)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	*v_r = strtoull(s, &end, 10);
	return *end == '\0';
}

static bool shp_u32(const char *s, uint32_t *v_r)
{
	uint64_t v;

	if (!shp_u64(s, &v) || v > UINT32_MAX)
		return false;
	*v_r = (uint32_t)v;
	return true;
}

static bool shp_blob_line(struct shp_state *st, char *line)
{
	char *f[14];
	unsigned n = shp_fields(line, f, 13);
	struct shp_pstate *p;

	if (n == 13 && strcmp(f[0], "A") == 0) {
		uint32_t slot;
		struct shp_active a;

		memset(&a, 0, sizeof(a));
		if (!shp_u32(f[3], &slot) || slot >= SHP_NSLOTS || !shp_u64(f[4], &a.pa_until) ||
		    !shp_u64(f[5], &a.pa_pause_until) || !shp_u32(f[6], &a.pa_value) ||
		    !shp_u32(f[7], &a.pa_allow) || !shp_u32(f[8], &a.pa_succ) ||
		    !shp_u64(f[9], &a.pa_rate.sr_count) || !shp_u64(f[10], &a.pa_rate.sr_period_us) ||
		    !shp_u64(f[11], &a.pa_rate.sr_burst) || f[1][0] == '\0')
			return false;
		snprintf(a.pa_rule, sizeof(a.pa_rule), "%s", strcmp(f[12], "-") ? f[12] : "");
		p = shp_pstate_get(st, f[1], strcmp(f[2], "-") ? f[2] : NULL, true);
		if (p == NULL)
			return false;
		p->ps_act[slot] = a;
		return true;
	}
	if (n == 4 && strcmp(f[0], "H") == 0) {
		uint32_t level;
		uint64_t until;

		if (!shp_u32(f[2], &level) || !shp_u64(f[3], &until) || f[1][0] == '\0' ||
		    (p = shp_pstate_get(st, f[1], NULL, true)) == NULL)
			return false;
		p->ps_level = level;
		p->ps_health_until = until;
		return true;
	}
	if (n == 4 && strcmp(f[0], "L") == 0) {
		uint32_t m;

		if (!shp_u32(f[3], &m) || f[1][0] == '\0' ||
		    (p = shp_pstate_get(st, f[1], strcmp(f[2], "-") ? f[2] : NULL, true)) == NULL)
			return false;
		p->ps_max_msgs = m;
		return true;
	}
	return false;
}

static bool shp_blob_line_cb(void *arg, char *line)
{
	return shp_blob_line(arg, line);
}

int shp_state_restore(struct shp_state *st, const char *buf, size_t len)
{
	char head[64];
	int rc;

	snprintf(head, sizeof(head), "%s %d", SHP_BLOB_MAGIC, SHP_BLOB_VERSION);
	pthread_mutex_lock(&st->st_lock);
	shp_state_clear(st);
	rc = shp_blob_parse(buf, len, head, shp_blob_line_cb, st);
	if (rc < 0)
		shp_state_clear(st);
	pthread_mutex_unlock(&st->st_lock);
	return rc;
}
