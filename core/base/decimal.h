/*
 * decimal: the leading decimal digits of a string as a uint64_t, with
 * overflow refused; for the small hand-rolled value syntaxes ("100/s",
 * "30s") that sit inside values a real parser (libyaml) already split.
 */
#ifndef RINGMTA_DECIMAL_H
#define RINGMTA_DECIMAL_H

#include <stdint.h>

/* Digits at *p into *v_r and *p past them; -1 when there is no digit or
 * the value exceeds UINT64_MAX (then *p and *v_r are unchanged). */
static inline int decimal_u64(const char **p, uint64_t *v_r)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v_r = x;
	return 0;
}

#endif
