/*
 * shp_blob: the frame of the shaping engine's text blobs (the state, the
 * operator's suspensions): a head line "<magic> <version>", then one line
 * per fact, each ending in a newline; the saved length may include the
 * NUL. No I/O, no state.
 */
#ifndef RINGMTA_SHP_BLOB_H
#define RINGMTA_SHP_BLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Check the head line against head and give fn each line after it
 * (NUL-terminated, modifiable, valid during the call). 0 when the head
 * matched, every line ended in a newline and fn took each; -1 at the
 * first that did not (fn may have taken some: the caller undoes them). */
int shp_blob_parse(const char *buf, size_t len, const char *head,
		   bool (*fn)(void *arg, char *line), void *arg);

#endif
