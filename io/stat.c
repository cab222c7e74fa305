/* stat.c: see stat.h. */
#include "io/stat.h"

#include <math.h>

const double stat_hist_bounds[STAT_HIST_NBUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25, 1, 10, 60, INFINITY,
};

void stat_hist_observe(struct stat_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	unsigned i = 0;

	while (i < STAT_HIST_NBUCKETS - 1 && s > stat_hist_bounds[i])
		i++;
	stat_inc(&h->sh_buckets[i]);
	stat_inc(&h->sh_count);
	stat_add(&h->sh_sum_ns, ns);
}
