/*
 * shp_rate: message and connection rates ("100/s", "2000/h", "50000/d",
 * with an optional burst: "100/s burst 20") and the GCRA arithmetic that
 * enforces them. Pure functions, no I/O, no clock of their own: callers
 * pass the time. Any thread.
 *
 * GCRA (generic cell rate algorithm): one number per limited thing, the
 * theoretical arrival time (TAT). With emission interval T = period /
 * count and burst tolerance tau = (burst - 1) * T, a request at now
 * conforms when TAT - tau <= now; it then moves TAT to max(TAT, now) + T.
 * Long periods stay exact (500/d: T = 172.8 s) because times are in
 * microseconds and T is computed in 128-bit arithmetic per call.
 */
#ifndef RINGMTA_SHP_RATE_H
#define RINGMTA_SHP_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shp_rate {
	uint64_t sr_count;		/* 0 = no limit */
	uint64_t sr_period_us;
	uint64_t sr_burst;		/* 0 = the default burst (see shp_rate_parse) */
};

/* Parse "N/s", "N/m", "N/h", "N/d" (also "N/sec", "N/min", "N/hour",
 * "N/day"), optionally followed by " burst B"; "0" or "none" = no limit.
 * Returns 0 or -1 with the reason in err. */
int shp_rate_parse(const char *s, struct shp_rate *r_r, char *err, size_t errlen);
/* Back to text ("100/s", "500/d burst 5"). */
void shp_rate_format(const struct shp_rate *r, char *out, size_t outlen);
/* The burst in effect: sr_burst, or when 0, min(sr_count, the count of
 * one second's worth, at least 1). */
uint64_t shp_rate_burst(const struct shp_rate *r);

/* GCRA: try to take n (>= 1) at now_us against *tat (0 = never used).
 * Returns 0 and advances *tat when allowed; else leaves *tat and returns
 * how many microseconds until n would conform (> 0). A rate with
 * sr_count 0 always allows. */
uint64_t shp_gcra_take(const struct shp_rate *r, uint64_t *tat, uint64_t now_us, uint64_t n);

#endif
