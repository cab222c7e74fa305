/*
 * main_queue.c: "ringmta queue list|show ID|delete ID|flush [ID]|count|
 * check|compact|shaping". Works beside a running daemon: each action is one LMDB
 * transaction (compact excepted: it needs the daemon stopped). SIGPIPE is
 * ignored so that "queue list | head" ends the read transaction cleanly
 * instead of dying inside it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/app/main.h"
#include "core/shaping/shp_source.h"
#include "core/shaping/shp_state.h"
#include "queue/queue.h"

static int main_queue_usage(void)
{
	fprintf(stderr, "usage: ringmta queue list | show ID | delete ID | flush [ID] | count | check"
		" | compact | shaping\n");
	return 2;
}

struct main_queue_shp {
	FILE *out;
	uint64_t now;
	unsigned n;
};

static void main_queue_shp_item(void *arg, const struct shp_state_item *it)
{
	struct main_queue_shp *m = arg;
	char when[40] = "-";

	if (it->sti_until_us != 0) {
		time_t t = (time_t)(it->sti_until_us / 1000000u);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (m->n++ == 0)
		fprintf(m->out, "shaping: rule, site, source, action, value, expiry\n");
	fprintf(m->out, "  rule=%s site=%s source=%s action=%s value=%llu%s%s until=%s\n",
		it->sti_rule[0] ? it->sti_rule : "-", it->sti_site,
		it->sti_source[0] ? it->sti_source : "*", it->sti_kind,
		(unsigned long long)it->sti_value, it->sti_text[0] ? " " : "", it->sti_text, when);
}

static void main_queue_shp_blob(void *arg, const void *data, size_t len)
{
	struct shp_state *st = arg;

	if (shp_state_restore(st, data, len) < 0)
		fprintf(stderr, "ringmta: queue: the saved shaping state is damaged; ignored\n");
}

/* Active shaping actions and suspensions, as the daemon last saved them
 * (at most a second old while it runs). Returns how many. */
static unsigned main_queue_shaping(struct queue *q, FILE *out, uint64_t now)
{
	struct shp_state *st;
	struct main_queue_shp m = { out, now, 0 };

	if (shp_state_new(&st) < 0)
		return 0;
	if (queue_blob_get(q, "shaping", main_queue_shp_blob, st) == 0)
		shp_state_foreach(st, now, main_queue_shp_item, &m);
	shp_state_free(&st);
	return m.n;
}

static void main_queue_src_item(void *arg, const char *source, const char *provider,
				uint64_t sent, int out_of_service)
{
	struct main_queue_shp *m = arg;

	(void)out_of_service;	/* not saved: a restart tries every source again */
	if (provider == NULL && sent == 0)
		return;
	if (m->n++ == 0)
		fprintf(m->out, "sources: messages per provider in the warm-up period of the"
			" latest one\n");
	fprintf(m->out, "  source=%s provider=%s sent=%llu\n", source, provider ? provider : "-",
		(unsigned long long)sent);
}

static void main_queue_src_blob(void *arg, const void *data, size_t len)
{
	(void)shp_src_restore(arg, data, len);	/* a damaged blob is logged, ignored */
}

/* The sources' warm-up counters as the daemon last saved them (every
 * 10 seconds while it runs, and when it stops). */
static void main_queue_sources(struct queue *q, FILE *out)
{
	struct shp_src_state *st;
	struct main_queue_shp m = { out, 0, 0 };

	if (shp_src_state_new(&st) < 0)
		return;
	if (queue_blob_get(q, "sources", main_queue_src_blob, st) == 0)
		shp_src_foreach(st, main_queue_src_item, &m);
	shp_src_state_free(&st);
}

int main_queue(const struct config *cfg, int argc, char **argv)
{
	struct queue *q;
	struct timeval tv;
	char err[512];
	uint64_t id = 0, n;
	bool rdonly;
	int rc;

	if (argc < 1)
		return main_queue_usage();
	if ((strcmp(argv[0], "show") == 0 || strcmp(argv[0], "delete") == 0) &&
	    (argc != 2 || queue_id_parse(argv[1], &id) < 0)) {
		fprintf(stderr, "ringmta: queue %s: expected a queue id (16 hex digits)\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[0], "flush") == 0 && argc == 2 && queue_id_parse(argv[1], &id) < 0) {
		fprintf(stderr, "ringmta: queue flush: expected a queue id (16 hex digits)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[0], "check") == 0) {
		/* In a child: a damaged file may make LMDB fault or assert. */
		if (queue_check_dir(cfg->queue_dir, cfg->queue_map_size, err, sizeof(err)) < 0) {
			fprintf(stderr, "ringmta: %s\n", err);
			return 1;
		}
		/* The walk did not fault in the child: list every finding here. */
		if (queue_open(&q, cfg->queue_dir, cfg->queue_map_size, QUEUE_F_RDONLY,
			       err, sizeof(err)) < 0) {
			fprintf(stderr, "ringmta: %s\n", err);
			return 1;
		}
		rc = queue_admin_check(q, stdout);
		queue_close(&q);
		if (rc != 0) {
			fprintf(stderr, "ringmta: queue %s/data.mdb: %s\n", cfg->queue_dir,
				rc < 0 ? queue_strerror(rc) : "damaged messages (listed above)");
			return 1;
		}
		printf("queue %s: ok\n", cfg->queue_dir);
		return 0;
	}
	if (strcmp(argv[0], "compact") == 0) {
		uint64_t before, after;

		if (queue_open(&q, cfg->queue_dir, cfg->queue_map_size, QUEUE_F_EXCLUSIVE,
			       err, sizeof(err)) < 0) {
			fprintf(stderr, "ringmta: queue compact: %s%s\n", err,
				strstr(err, "in use") ? " (stop the daemon first)" : "");
			return 1;
		}
		rc = queue_admin_compact(&q, cfg->queue_dir, &before, &after);
		if (rc < 0) {
			fprintf(stderr, "ringmta: queue compact: %s\n", queue_strerror(rc));
			return 1;
		}
		printf("compacted %s: %llu -> %llu bytes on disk\n", cfg->queue_dir,
		       (unsigned long long)before, (unsigned long long)after);
		return 0;
	}
	rdonly = strcmp(argv[0], "delete") != 0 && strcmp(argv[0], "flush") != 0;
	if (queue_open(&q, cfg->queue_dir, cfg->queue_map_size,
		       rdonly ? QUEUE_F_RDONLY : 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s\n", err);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0) {
		gettimeofday(&tv, NULL);
		rc = queue_admin_list(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
				      (uint64_t)tv.tv_usec);
		if (rc == 0)
			main_queue_shaping(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
					   (uint64_t)tv.tv_usec);
	} else if (strcmp(argv[0], "shaping") == 0) {
		gettimeofday(&tv, NULL);
		if (main_queue_shaping(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
				       (uint64_t)tv.tv_usec) == 0)
			printf("shaping: no active actions or suspensions\n");
		main_queue_sources(q, stdout);
		rc = 0;
	} else if (strcmp(argv[0], "show") == 0) {
		rc = queue_admin_show(q, id, stdout);
	} else if (strcmp(argv[0], "delete") == 0) {
		rc = queue_admin_delete(q, id);
		if (rc == 0)
			printf("deleted %s\n", argv[1]);
	} else if (strcmp(argv[0], "flush") == 0) {
		unsigned nflushed = 0;

		gettimeofday(&tv, NULL);
		rc = queue_admin_flush(q, id, (uint64_t)tv.tv_sec * 1000000u +
				       (uint64_t)tv.tv_usec, &nflushed);
		if (rc == 0)
			printf("flushed %u message%s\n", nflushed, nflushed == 1 ? "" : "s");
	} else if (strcmp(argv[0], "count") == 0) {
		rc = queue_admin_count(q, &n);
		if (rc == 0)
			printf("%llu\n", (unsigned long long)n);
	} else {
		queue_close(&q);
		return main_queue_usage();
	}
	queue_close(&q);
	if (rc == -ENOENT) {
		fprintf(stderr, "ringmta: queue: no message %s\n", argc > 1 ? argv[1] : "");
		return 1;
	}
	if (rc == -EPIPE && strcmp(argv[0], "list") == 0)
		return 1;	/* the reader went away; nothing to say */
	if (rc < 0) {
		fprintf(stderr, "ringmta: queue: %s\n", queue_strerror(rc));
		return 1;
	}
	return 0;
}
