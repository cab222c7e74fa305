/*
 * shp_susp_blob.c: the operator's suspensions as a versioned text blob,
 * one line each, fields separated by tabs (names hold no blanks, who and
 * reason no control characters, so no field holds a tab or a newline):
 *
 *   ringmta-suspensions 1
 *   S <kind> <name> <set us> <until us> <who> <reason, may be empty>
 *
 * A blob that does not parse in full is refused as a whole; entries that
 * ended are left out when saving and dropped when restoring.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_blob.h"
#include "core/shaping/shp_susp_internal.h"

#define SHP_SUSP_MAGIC "ringmta-suspensions"
#define SHP_SUSP_VERSION 1

size_t shp_susp_save(struct shp_susp *s, uint64_t now, char *buf, size_t len)
{
	size_t used = 0;
	int n;

	pthread_mutex_lock(&s->ss_lock);
	n = snprintf(buf, len, "%s %d\n", SHP_SUSP_MAGIC, SHP_SUSP_VERSION);
	used = n > 0 ? (size_t)n : 0;
	for (unsigned i = 0; i < s->ss_n; i++) {
		const struct shp_susp_ent *e = &s->ss_ents[i];
		size_t room = used < len ? len - used : 0;

		if (e->se_until <= now)
			continue;
		n = snprintf(room ? buf + used : NULL, room,
			     "S\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\n",
			     shp_susp_kind_name((enum shp_susp_kind)e->se_kind), e->se_name,
			     e->se_set, e->se_until, e->se_who, e->se_reason);
		if (n > 0)
			used += (size_t)n;
	}
	pthread_mutex_unlock(&s->ss_lock);
	return used + 1;	/* with the NUL */
}

static bool shp_susp_u64(const char *s, uint64_t *v_r)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v_r = strtoull(s, &end, 10);
	return *end == '\0' && errno == 0;
}

static bool shp_susp_line(struct shp_susp *s, char *line, uint64_t now)
{
	char *f[7];
	unsigned n = 0;
	uint64_t set, until;
	int kind;

	while (n < 7) {
		f[n++] = line;
		line = strchr(line, '\t');
		if (line == NULL)
			break;
		*line++ = '\0';
	}
	if (n != 7 || line != NULL || strcmp(f[0], "S") != 0 ||
	    (kind = shp_susp_kind_parse(f[1])) < 0 || !shp_susp_u64(f[3], &set) ||
	    !shp_susp_u64(f[4], &until) || f[5][0] == '\0' ||
	    strlen(f[5]) > SHP_SUSP_WHO_MAX || strlen(f[6]) > SHP_SUSP_REASON_MAX)
		return false;
	if (until <= now)
		return true;	/* ended while we were down */
	return shp_susp_put_locked(s, (enum shp_susp_kind)kind, f[2], f[5], f[6], set, until) == 0;
}

struct shp_susp_rd {
	struct shp_susp *sr_s;
	uint64_t sr_now;
};

static bool shp_susp_line_cb(void *arg, char *line)
{
	struct shp_susp_rd *rd = arg;

	return shp_susp_line(rd->sr_s, line, rd->sr_now);
}

int shp_susp_restore(struct shp_susp *s, const char *buf, size_t len, uint64_t now)
{
	struct shp_susp_rd rd = { s, now };
	char head[64];
	int rc;

	snprintf(head, sizeof(head), "%s %d", SHP_SUSP_MAGIC, SHP_SUSP_VERSION);
	pthread_mutex_lock(&s->ss_lock);
	s->ss_n = 0;
	rc = shp_blob_parse(buf, len, head, shp_susp_line_cb, &rd);
	if (rc < 0)
		s->ss_n = 0;
	atomic_store(&s->ss_count, s->ss_n);
	pthread_mutex_unlock(&s->ss_lock);
	return rc;
}
