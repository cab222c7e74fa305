/*
 * fuzz_shp_susp.c: the operator's suspensions (core/shaping/shp_susp.h):
 * what the admin API hands them (a duration, a name and a reason from a
 * request) and the saved blob read at start. Mode by the first byte:
 *   0: restore the rest as a blob; what restores saves and restores the
 *      same again
 *   1: the rest as a duration
 *   2: the rest, split at the first NUL, as a name and a reason: set,
 *      check, list, clear
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_susp.h"

#define T0 (1700000000ull * 1000000u)

static void fz_count(void *arg, const struct shp_susp_item *it)
{
	(*(unsigned *)arg)++;
	if (strlen(it->si_name) == 0 || strlen(it->si_reason) > SHP_SUSP_REASON_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shp_susp *s, *s2;
	char *text, *buf, *buf2;
	uint64_t us;
	size_t n, n2;
	unsigned count = 0;

	if (size < 1 || size > 65536)
		return 0;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	shp_susp_new(&s);
	switch (data[0] % 3) {
	case 0:
		if (shp_susp_restore(s, (const char *)data + 1, size - 1, T0) == 0) {
			n = shp_susp_save(s, T0, NULL, 0);
			buf = malloc(n);
			shp_susp_save(s, T0, buf, n);
			shp_susp_new(&s2);
			if (shp_susp_restore(s2, buf, n, T0) != 0)
				abort();
			n2 = shp_susp_save(s2, T0, NULL, 0);
			buf2 = malloc(n2);
			shp_susp_save(s2, T0, buf2, n2);
			if (n != n2 || memcmp(buf, buf2, n) != 0)
				abort();
			free(buf);
			free(buf2);
			shp_susp_free(&s2);
		}
		break;
	case 1:
		if (shp_susp_duration_parse(text, &us) == 0 &&
		    (us == 0 || us > SHP_SUSP_DURATION_MAX))
			abort();
		break;
	default: {
		size_t nl = strlen(text);
		const char *reason = nl + 1 <= size - 1 ? text + nl + 1 : "";
		struct shp_susp_mail m = { text, text, text, text };
		char why[300];

		if (shp_susp_set(s, (enum shp_susp_kind)(size % SHP_SUSP_NKINDS), text, NULL,
				 reason, T0, T0 + 60000000u) == 0) {
			if (!shp_susp_check(s, &m, T0 + 1, &us, why, sizeof(why)) ||
			    us != T0 + 60000000u)
				abort();
			shp_susp_foreach(s, T0, fz_count, &count);
			if (count != 1 || shp_susp_clear(s, (enum shp_susp_kind)(size %
						SHP_SUSP_NKINDS), text, T0, NULL) != 0)
				abort();
		}
		break;
	}
	}
	shp_susp_free(&s);
	free(text);
	return 0;
}
