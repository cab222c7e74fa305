/*
 * test_queue_shaping.c: named blobs in the queue database
 * (queue_blob_put/get): they survive closing and reopening the queue,
 * replace each other by name, are readable from a read-only open, and
 * carry the shaping state through a restart (shp_state save/restore).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_state.h"
#include "queue/queue.h"
#include "tap.h"

#define S 1000000ull

struct got {
	char buf[4096];
	size_t len;
};

static void got_cb(void *arg, const void *data, size_t len)
{
	struct got *g = arg;

	g->len = len < sizeof(g->buf) ? len : sizeof(g->buf);
	memcpy(g->buf, data, g->len);
}

int main(void)
{
	char dir[512], err[256], blob[4096];
	const char *tmp = getenv("TMPDIR");
	struct queue *q;
	struct got g = { "", 0 };
	struct shp_state *st;
	struct shp_action susp = { SHP_ACT_SUSPEND_SITE, 0, { 0, 0, 0 }, 600 * S };
	struct shp_verdict v;
	uint64_t t0 = 1700000000ull * S;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/ringmta-test-qshp-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	tap_ok(queue_open(&q, dir, 64ull << 20, 0, err, sizeof(err)) == 0, "queue opened");
	tap_ok(queue_blob_get(q, "shaping", got_cb, &g) == -ENOENT, "no blob at first");
	tap_ok(queue_blob_put(q, "sources", "abc", 3) == 0, "put sources");
	shp_state_new(&st);
	shp_state_fire(st, "mx.example", NULL, "rule-x", &susp, t0);
	n = shp_state_save(st, t0, blob, sizeof(blob));
	shp_state_free(&st);
	tap_ok(queue_blob_put(q, "shaping", "old", 3) == 0 &&
	       queue_blob_put(q, "shaping", blob, n) == 0, "put shaping twice");
	queue_close(&q);

	tap_ok(queue_open(&q, dir, 64ull << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0,
	       "reopened read-only");
	tap_ok(queue_blob_get(q, "sources", got_cb, &g) == 0 && g.len == 3 &&
	       memcmp(g.buf, "abc", 3) == 0, "sources blob survived");
	tap_ok(queue_blob_get(q, "shaping", got_cb, &g) == 0 && g.len == n,
	       "the later put replaced the earlier");
	tap_ok(queue_blob_put(q, "x", "y", 1) == -EROFS, "read-only open refuses a put");
	queue_close(&q);
	shp_state_new(&st);
	tap_ok(shp_state_restore(st, g.buf, g.len) == 0, "state restored from the queue");
	shp_state_check(st, "mx.example", "any", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && strstr(v.sv_reason, "rule-x") != NULL,
	       "the suspension survived the restart");
	shp_state_free(&st);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)!system(cmd);
	}
	return tap_done();
}
