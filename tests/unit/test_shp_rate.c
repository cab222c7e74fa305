/*
 * test_shp_rate: rate parsing and formatting, the default burst, and GCRA
 * over simulated time: bursts, exact spacing of 100/s, 2000/h and 500/d,
 * no drift over a day, huge counts, a clock going backwards.
 */
#include <string.h>

#include "core/shaping/shp_rate.h"
#include "tests/unit/tap.h"

#define S 1000000ull
#define T0 (1764900000ull * S)	/* a realistic unix time in us */

static struct shp_rate rate(const char *s)
{
	struct shp_rate r;
	char err[128];

	if (shp_rate_parse(s, &r, err, sizeof(err)) < 0)
		tap_ok(0, "parse %s: %s", s, err);
	return r;
}

static void test_parse(void)
{
	static const struct {
		const char *in;
		uint64_t count, period_s, burst;
		const char *out;
	} good[] = {
		{ "100/s", 100, 1, 0, "100/s" },
		{ "2000/h", 2000, 3600, 0, "2000/h" },
		{ "50000/d", 50000, 86400, 0, "50000/d" },
		{ "10/m", 10, 60, 0, "10/m" },
		{ "10/min", 10, 60, 0, "10/m" },
		{ "5/sec", 5, 1, 0, "5/s" },
		{ "7/hour", 7, 3600, 0, "7/h" },
		{ "500/day", 500, 86400, 0, "500/d" },
		{ "500/d burst 5", 500, 86400, 5, "500/d burst 5" },
		{ " 100 / s  burst 20 ", 100, 1, 20, "100/s burst 20" },
		{ "100/10m", 100, 600, 0, "100/10m" },
		{ "3/2h", 3, 7200, 0, "3/2h" },
		{ "100/S", 100, 1, 0, "100/s" },
		{ "none", 0, 0, 0, "none" },
		{ "0", 0, 0, 0, "none" },
	};
	static const char *const bad[] = {
		"", "100", "100/", "/s", "100/x", "100/ss", "-1/s", "0/s", "100/s burst",
		"100/s burst 0", "100/s burst x", "100/s extra", "1.5/s", "100/0s",
		"99999999999999999999/s", "100/999999999999999999d",
	};
	char err[128], out[64];

	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct shp_rate r;

		memset(&r, 0xff, sizeof(r));
		tap_ok(shp_rate_parse(good[i].in, &r, err, sizeof(err)) == 0 &&
			       r.sr_count == good[i].count && r.sr_period_us == good[i].period_s * S &&
			       r.sr_burst == good[i].burst,
		       "parse \"%s\"", good[i].in);
		shp_rate_format(&r, out, sizeof(out));
		tap_ok(strcmp(out, good[i].out) == 0, "format \"%s\" -> \"%s\"", good[i].in, out);
	}
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shp_rate r;

		err[0] = '\0';
		tap_ok(shp_rate_parse(bad[i], &r, err, sizeof(err)) < 0 && err[0] != '\0',
		       "refuse \"%s\": %s", bad[i], err);
	}
	{
		struct shp_rate r = { 3, 1234567, 0 };

		shp_rate_format(&r, out, sizeof(out));
		tap_ok(strcmp(out, "3/1234567us") == 0, "an odd period formats in us: %s", out);
	}
}

static void test_burst(void)
{
	struct shp_rate r = rate("100/s");

	tap_ok(shp_rate_burst(&r) == 100, "100/s: default burst one second's worth (100)");
	r = rate("2000/h");
	tap_ok(shp_rate_burst(&r) == 1, "2000/h: default burst 1");
	r = rate("500/d");
	tap_ok(shp_rate_burst(&r) == 1, "500/d: default burst 1");
	r = rate("100/s burst 7");
	tap_ok(shp_rate_burst(&r) == 7, "explicit burst 7");
	r = rate("none");
	tap_ok(shp_rate_burst(&r) == 1, "no limit: burst 1");
}

/* Take one at a time as soon as allowed, from t0 for span us; count them
 * and check each gap after the first burst is exactly gap_us. */
static uint64_t run(const struct shp_rate *r, uint64_t t0, uint64_t span, uint64_t gap_us,
		    int *spacing_ok)
{
	uint64_t tat = 0, now = t0, n = 0, last = 0;

	*spacing_ok = 1;
	while (now < t0 + span) {
		uint64_t w = shp_gcra_take(r, &tat, now, 1);

		if (w == 0) {
			if (n >= shp_rate_burst(r) && now - last != gap_us)
				*spacing_ok = 0;
			last = now;
			n++;
		} else {
			now += w;
		}
	}
	return n;
}

static void test_gcra_spacing(void)
{
	struct shp_rate r;
	uint64_t tat = 0, n;
	int ok;

	r = rate("100/s burst 10");
	for (n = 0; shp_gcra_take(&r, &tat, T0, 1) == 0; n++)
		;
	tap_ok(n == 10, "100/s burst 10: 10 at once, then a wait (%llu)", (unsigned long long)n);
	tap_ok(shp_gcra_take(&r, &tat, T0, 1) == 10000, "the next one in exactly 10 ms");
	tap_ok(shp_gcra_take(&r, &tat, T0 + 9999, 1) == 1, "1 us early: wait 1 us");
	tap_ok(shp_gcra_take(&r, &tat, T0 + 10000, 1) == 0, "on time: allowed");

	r = rate("100/s");
	n = run(&r, T0, 10 * S, 10000, &ok);
	tap_ok(n == 100 + 100 * 10 - 1 && ok,
	       "100/s over 10 s: burst 100 then every 10 ms (%llu)", (unsigned long long)n);

	r = rate("2000/h");
	n = run(&r, T0, 3600 * S, 1800000, &ok);
	tap_ok(n == 2000 && ok, "2000/h over an hour: 2000, spaced 1.8 s (%llu)", (unsigned long long)n);

	r = rate("500/d");
	n = run(&r, T0, 86400 * S, 172800000, &ok);
	tap_ok(n == 500 && ok, "500/d over a day: 500, spaced 172.8 s (%llu)", (unsigned long long)n);

	r = rate("500/d burst 5");
	n = run(&r, T0, 86400 * S, 172800000, &ok);
	tap_ok(n == 504 && ok, "500/d burst 5 over a day: 5 at once, then 499 (%llu)",
	       (unsigned long long)n);
}

/* Asking at arbitrary instants (every 7 ms) over a simulated day never
 * lets through more than rate * day + burst - 1, and not fewer than that
 * less one (no drift either way). A burst of at least 2 absorbs the 7 ms
 * lateness of the polls; with burst 1 a late taker loses its lateness, as
 * GCRA intends (see the exact runs above). */
static void test_gcra_day(void)
{
	static const char *const rates[] = { "100/s", "3/s", "2000/h burst 2", "7/m burst 3",
						     "500/d burst 2" };

	for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct shp_rate r = rate(rates[i]);
		uint64_t tat = 0, n = 0, day = 86400 * S;
		uint64_t want = (uint64_t)((unsigned __int128)r.sr_count * day / r.sr_period_us) +
				shp_rate_burst(&r) - 1;

		for (uint64_t now = T0; now < T0 + day; now += 7000)
			if (shp_gcra_take(&r, &tat, now, 1) == 0)
				n++;
		tap_ok(n <= want + 1 && n + 1 >= want, "%s over a day, polled every 7 ms: %llu (%llu)",
		       rates[i], (unsigned long long)n, (unsigned long long)want);
	}
}

static void test_gcra_edges(void)
{
	struct shp_rate r = rate("100/s"), none = rate("none");
	uint64_t tat = 0, w;

	tap_ok(shp_gcra_take(&none, &tat, T0, 1000000) == 0 && tat == 0,
	       "no limit: always allowed, TAT untouched");

	/* More than the burst at once: allowed when the bucket is full, and
	 * the debt is paid by waiting. */
	tap_ok(shp_gcra_take(&r, &tat, T0, 1000) == 0, "1000 at once on a full 100/s bucket");
	w = shp_gcra_take(&r, &tat, T0, 1);
	tap_ok(w == 9000000 + 10000, "then the next waits out the 10 s debt less the burst (%llu)",
	       (unsigned long long)w);

	tat = 0;
	tap_ok(shp_gcra_take(&r, &tat, T0, UINT64_MAX) == 0 && tat == UINT64_MAX,
	       "a huge count saturates TAT instead of wrapping");
	w = shp_gcra_take(&r, &tat, T0, 1);
	tap_ok(w > 0 && w <= UINT64_MAX - T0 + 1, "and then waits, without overflow");
	r = rate("1/d");
	tat = 0;
	tap_ok(shp_gcra_take(&r, &tat, UINT64_MAX - 5, 1) == 0 && tat == UINT64_MAX,
	       "a take near the end of time saturates");

	/* The clock goes backwards by a minute after a few takes. */
	r = rate("100/s burst 1");
	tat = 0;
	tap_ok(shp_gcra_take(&r, &tat, T0, 1) == 0, "first take");
	w = shp_gcra_take(&r, &tat, T0 - 60 * S, 1);
	tap_ok(w == 60 * S + 10000, "clock 60 s back: waits until the old schedule (%llu)",
	       (unsigned long long)w);
	tap_ok(shp_gcra_take(&r, &tat, T0 + 10000, 1) == 0, "and proceeds once time catches up");
	tat = 0;
	tap_ok(shp_gcra_take(&r, &tat, 0, 1) == 0, "now = 0 with a fresh TAT is fine");

	r = rate("100/s burst 10");
	tat = 0;
	tap_ok(shp_gcra_take(&r, &tat, T0, 10) == 0 && shp_gcra_take(&r, &tat, T0, 1) == 10000,
	       "10 at once takes the whole burst");
	tap_ok(shp_gcra_take(&r, &tat, T0 + 50000, 6) == 10000,
	       "6 after 50 ms (5 refilled): 10 ms more");
	tap_ok(shp_gcra_take(&r, &tat, T0 + 60000, 6) == 0, "6 after 60 ms: allowed");
}

int main(void)
{
	test_parse();
	test_burst();
	test_gcra_spacing();
	test_gcra_day();
	test_gcra_edges();
	return tap_done();
}
