/*
 * shp_rate.c: see shp_rate.h. Rates are parsed once when rules load;
 * shp_gcra_take() is on the delivery path and does a handful of 128-bit
 * multiplications and divisions, nothing else.
 *
 * Rounding: the spacing of k messages is ceil(period * k / count) us, so a
 * rate whose interval is not a whole number of microseconds (3/s) runs a
 * hair slow (under 1 us per message), never fast; rates that divide
 * (100/s, 2000/h, 500/d) are exact and never drift.
 */
#include "core/shaping/shp_rate.h"
#include "core/base/decimal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SHP_US_PER_S 1000000ull

static const struct {
	const char *name;
	uint64_t us;
} shp_rate_units[] = {
	{ "s", SHP_US_PER_S }, { "sec", SHP_US_PER_S }, { "second", SHP_US_PER_S },
	{ "m", 60 * SHP_US_PER_S }, { "min", 60 * SHP_US_PER_S }, { "minute", 60 * SHP_US_PER_S },
	{ "h", 3600 * SHP_US_PER_S }, { "hour", 3600 * SHP_US_PER_S },
	{ "d", 86400 * SHP_US_PER_S }, { "day", 86400 * SHP_US_PER_S },
};

static const char *shp_rate_skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int shp_rate_parse(const char *s, struct shp_rate *r_r, char *err, size_t errlen)
{
	const char *p = shp_rate_skip_ws(s), *w;
	uint64_t count, mult = 1, unit = 0, burst = 0;
	size_t wl;

	memset(r_r, 0, sizeof(*r_r));
	if (strcasecmp(p, "none") == 0 || strcmp(p, "0") == 0)
		return 0;
	if (decimal_u64(&p, &count) < 0)
		goto bad;
	p = shp_rate_skip_ws(p);
	if (*p++ != '/')
		goto bad;
	p = shp_rate_skip_ws(p);
	/* "100/10m": a period of several units */
	if (*p >= '0' && *p <= '9' && (decimal_u64(&p, &mult) < 0 || mult == 0))
		goto bad;
	for (w = p; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'); p++)
		;
	wl = (size_t)(p - w);
	for (unsigned i = 0; i < sizeof(shp_rate_units) / sizeof(shp_rate_units[0]); i++)
		if (strlen(shp_rate_units[i].name) == wl && strncasecmp(w, shp_rate_units[i].name, wl) == 0)
			unit = shp_rate_units[i].us;
	if (unit == 0 || mult > UINT64_MAX / unit)
		goto bad;
	p = shp_rate_skip_ws(p);
	if (strncasecmp(p, "burst", 5) == 0) {
		p = shp_rate_skip_ws(p + 5);
		if (decimal_u64(&p, &burst) < 0 || burst == 0)
			goto bad;
		p = shp_rate_skip_ws(p);
	}
	if (*p != '\0')
		goto bad;
	if (count == 0) {
		snprintf(err, errlen, "rate \"%s\": a count of 0 (write \"none\" for no limit)", s);
		return -1;
	}
	r_r->sr_count = count;
	r_r->sr_period_us = mult * unit;
	r_r->sr_burst = burst;
	return 0;
bad:
	snprintf(err, errlen,
		 "not a rate: \"%s\" (expected N/s, N/m, N/h or N/d, optionally \" burst B\")", s);
	return -1;
}

void shp_rate_format(const struct shp_rate *r, char *out, size_t outlen)
{
	static const struct {
		char c;
		uint64_t us;
	} u[] = { { 'd', 86400 * SHP_US_PER_S }, { 'h', 3600 * SHP_US_PER_S },
		  { 'm', 60 * SHP_US_PER_S }, { 's', SHP_US_PER_S } };
	char per[48];
	int k;

	if (r->sr_count == 0) {
		snprintf(out, outlen, "none");
		return;
	}
	snprintf(per, sizeof(per), "%lluus", (unsigned long long)r->sr_period_us);
	for (unsigned i = 0; i < 4; i++) {
		if (r->sr_period_us % u[i].us == 0) {
			uint64_t m = r->sr_period_us / u[i].us;

			if (m == 1)
				snprintf(per, sizeof(per), "%c", u[i].c);
			else
				snprintf(per, sizeof(per), "%llu%c", (unsigned long long)m, u[i].c);
			break;
		}
	}
	k = snprintf(out, outlen, "%llu/%s", (unsigned long long)r->sr_count, per);
	if (r->sr_burst != 0 && k >= 0 && (size_t)k < outlen)
		snprintf(out + k, outlen - (size_t)k, " burst %llu", (unsigned long long)r->sr_burst);
}

uint64_t shp_rate_burst(const struct shp_rate *r)
{
	unsigned __int128 per_s;
	uint64_t b;

	if (r->sr_burst != 0)
		return r->sr_burst;
	if (r->sr_count == 0 || r->sr_period_us == 0)
		return 1;
	per_s = (unsigned __int128)r->sr_count * SHP_US_PER_S / r->sr_period_us;
	b = per_s < r->sr_count ? (uint64_t)per_s : r->sr_count;
	return b ? b : 1;
}

/* ceil(period * k / count), saturated to 64 bits. */
static unsigned __int128 shp_rate_span(const struct shp_rate *r, uint64_t k)
{
	unsigned __int128 x = (unsigned __int128)r->sr_period_us * k;

	return (x + r->sr_count - 1) / r->sr_count;
}

uint64_t shp_gcra_take(const struct shp_rate *r, uint64_t *tat, uint64_t now_us, uint64_t n)
{
	unsigned __int128 base, need, next;
	uint64_t burst, nc;

	if (r->sr_count == 0 || r->sr_period_us == 0)
		return 0;
	if (n == 0)
		n = 1;
	burst = shp_rate_burst(r);
	/* More than the burst at once can never conform by the formula; let
	 * it through when the bucket is full and charge all of it. */
	nc = n < burst ? n : burst;
	/* A clock that went backwards leaves base at the old TAT: the caller
	 * waits out the difference, nothing wraps. */
	base = *tat > now_us ? *tat : now_us;
	need = base + shp_rate_span(r, nc);
	need = need > shp_rate_span(r, burst) ? need - shp_rate_span(r, burst) : 0;
	if (need > now_us) {
		need -= now_us;
		return need > UINT64_MAX ? UINT64_MAX : (uint64_t)need;
	}
	next = base + shp_rate_span(r, n);
	*tat = next > UINT64_MAX ? UINT64_MAX : (uint64_t)next;
	return 0;
}
