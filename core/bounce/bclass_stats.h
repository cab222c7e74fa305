/*
 * bclass_stats: counts of failed and deferred recipients per bounce class
 * (process-wide; any thread), read by the metrics endpoint as
 * ringmta_delivery_bounce_class_total{class,result}.
 */
#ifndef RINGMTA_BCLASS_STATS_H
#define RINGMTA_BCLASS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bounce/bclass.h"

/* One recipient of class c failed (else was deferred). */
void bclass_stats_count(unsigned c, bool failed);
/* out[class][0]: deferred, out[class][1]: failed. */
void bclass_stats_get(uint64_t out[BCLASS_COUNT][2]);

#endif
