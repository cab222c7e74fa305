/*
 * main_queue.c: "ringmta queue VERB": the command line (main_queue.h),
 * and the verbs that open the queue directly: count, check, compact,
 * shaping, and with --offline (or when the daemon does not answer) list,
 * show ID, delete ID..., flush ID...|--all. Works beside a running daemon:
 * each action is one LMDB transaction (compact excepted: it needs the
 * daemon stopped). SIGPIPE is ignored so that "queue list | head" ends the
 * read transaction cleanly instead of dying inside it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/app/main.h"
#include "core/app/main_queue.h"
#include "core/admin/admin_filter.h"
#include "core/shaping/shp_source.h"
#include "core/shaping/shp_state.h"
#include "queue/queue.h"

/* The usage on out; returns rc. */
static int main_queue_usage_to(FILE *out, int rc)
{
	fprintf(out,
		"usage: ringmta queue [OPTIONS] summary|list|show ID|hold|release|delete|bounce|flush"
		" [ID...]\n"
		"       ringmta queue count|check|compact|shaping\n"
		"  through the daemon's admin API (admin_listen) unless --offline:\n"
		"  --api URL  --token-file FILE  --json  --offline\n"
		"  filters: --domain D --sender S --recipient R --min-age T --max-age T\n"
		"           --state ready|scheduled|held|inflight --class C  (or --all)\n"
		"  summary: --by domain|site|source|sender_domain --top N;"
		" list: --limit N --cursor ID;\n"
		"  show: --body; bounce: --reason TEXT\n");
	return rc;
}

static int main_queue_usage(void)
{
	return main_queue_usage_to(stderr, 2);
}

/* Options with a value, and the filter each one is. */
static const struct {
	const char *opt, *filter;
} main_queue_valued[] = {
	{ "--domain", "domain" }, { "--sender", "sender" }, { "--recipient", "recipient" },
	{ "--min-age", "min_age" }, { "--max-age", "max_age" }, { "--state", "state" },
	{ "--class", "class" }, { "--api", NULL }, { "--token-file", NULL }, { "--reason", NULL },
	{ "--by", NULL }, { "--top", NULL }, { "--limit", NULL }, { "--cursor", NULL },
};

/* argv after "queue" into o; 0, or 2 after printing why. */
static int main_queue_parse(int argc, char **argv, struct main_qopts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		size_t k;

		if (strcmp(a, "--offline") == 0 || strcmp(a, "--json") == 0 ||
		    strcmp(a, "--all") == 0 || strcmp(a, "--body") == 0) {
			*(a[2] == 'o' ? &o->offline : a[2] == 'j' ? &o->json :
			  a[2] == 'a' ? &o->all : &o->body) = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (o->verb == NULL)
				o->verb = a;
			else if (o->nargs < MAIN_QUEUE_ARGS_MAX)
				o->args[o->nargs++] = a;
			else {
				fprintf(stderr, "ringmta: queue: more than %u ids\n",
					MAIN_QUEUE_ARGS_MAX);
				return 2;
			}
			continue;
		}
		for (k = 0; k < sizeof(main_queue_valued) / sizeof(main_queue_valued[0]); k++)
			if (strcmp(a, main_queue_valued[k].opt) == 0)
				break;
		if (k == sizeof(main_queue_valued) / sizeof(main_queue_valued[0])) {
			fprintf(stderr, "ringmta: queue: unknown option '%s'\n", a);
			return main_queue_usage();
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "ringmta: queue: %s needs a value\n", a);
			return 2;
		}
		if (main_queue_valued[k].filter != NULL) {
			struct admin_filter f;
			char err[256];

			/* Refused here, before any daemon is asked. */
			admin_filter_init(&f);
			if (admin_filter_set(&f, main_queue_valued[k].filter, argv[i + 1], err,
					     sizeof(err)) != 0 || o->nf == MAIN_QUEUE_FILTERS_MAX) {
				fprintf(stderr, "ringmta: queue: %s: %s\n", a,
					o->nf == MAIN_QUEUE_FILTERS_MAX ? "too many filters" : err);
				return 2;
			}
			o->fname[o->nf] = main_queue_valued[k].filter;
			o->fvalue[o->nf++] = argv[++i];
			continue;
		}
		switch (a[2]) {
		case 'a': o->api = argv[++i]; break;
		case 't': *(a[3] == 'o' ? &o->token_file : &o->top) = argv[++i]; break;
		case 'r': o->reason = argv[++i]; break;
		case 'b': o->by = argv[++i]; break;
		case 'l': o->limit = argv[++i]; break;
		case 'c': o->cursor = argv[++i]; break;
		}
	}
	if (o->verb == NULL)
		return main_queue_usage();
	/* Every id is checked before anything is done. */
	for (unsigned i = 0; i < o->nargs; i++) {
		uint64_t id;

		if (queue_id_parse(o->args[i], &id) < 0 || id == 0) {
			fprintf(stderr, "ringmta: queue %s: '%s' is not a queue id (16 hex digits)\n",
				o->verb, o->args[i]);
			return 2;
		}
	}
	return 0;
}

static bool main_queue_verb_in(const char *verb, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(verb, *list) == 0)
			return true;
	return false;
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

static int main_queue_offline(const struct config *cfg, const struct main_qopts *o);

int main_queue(const struct config *cfg, int argc, char **argv)
{
	static const char *const api_verbs[] = {
		"summary", "list", "show", "hold", "release", "delete", "bounce", "flush", NULL,
	};
	static const char *const offline_too[] = { "list", "show", "delete", "flush", NULL };
	struct main_qopts o;
	char url[300];
	int rc;

	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return main_queue_usage_to(stdout, 0);
	rc = main_queue_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (!main_queue_verb_in(o.verb, api_verbs) || o.offline) {
		if (main_queue_verb_in(o.verb, api_verbs) &&
		    !main_queue_verb_in(o.verb, offline_too)) {
			fprintf(stderr, "ringmta: queue %s: needs the running daemon (not"
				" --offline)\n", o.verb);
			return 2;
		}
		return main_queue_offline(cfg, &o);
	}
	rc = main_queue_api(cfg, &o);
	if (rc != MAIN_QUEUE_NO_DAEMON)
		return rc;
	if (main_queue_api_url(cfg, &o, url, sizeof(url)) < 0)
		return 1;
	if (o.api == NULL && main_queue_verb_in(o.verb, offline_too)) {
		/* No daemon: the store itself is the queue. */
		return main_queue_offline(cfg, &o);
	}
	fprintf(stderr, "ringmta: queue %s: the daemon does not answer at %s (is it"
		" running?)%s\n", o.verb, url,
		main_queue_verb_in(o.verb, offline_too) ? "; --offline reads the queue directly" : "");
	return 1;
}

static int main_queue_offline(const struct config *cfg, const struct main_qopts *o)
{
	const char *verb = o->verb;
	struct queue *q;
	struct timeval tv;
	char err[512];
	uint64_t id = 0, n;
	bool rdonly;
	int rc = 0;

	if (o->nf > 0 || o->reason != NULL || o->by != NULL || o->limit != NULL ||
	    o->cursor != NULL) {
		fprintf(stderr, "ringmta: queue %s: filters and their options need the daemon's"
			" admin API (not --offline)\n", verb);
		return 2;
	}
	if (strcmp(verb, "show") == 0 && o->nargs != 1) {
		fprintf(stderr, "ringmta: queue show: expected one queue id (16 hex digits)\n");
		return 2;
	}
	if (strcmp(verb, "delete") == 0 && o->nargs == 0) {
		fprintf(stderr, "ringmta: queue delete: expected queue ids (16 hex digits)\n");
		return 2;
	}
	if (strcmp(verb, "flush") == 0 && (o->nargs == 0) == !o->all) {
		fprintf(stderr, "ringmta: queue flush: %s\n", o->all ?
			"ids or --all, not both" : "expected queue ids, or --all for the whole queue");
		return 2;
	}
	if (o->nargs > 0 && strcmp(verb, "show") != 0 && strcmp(verb, "delete") != 0 &&
	    strcmp(verb, "flush") != 0) {
		fprintf(stderr, "ringmta: queue %s: takes no ids\n", verb);
		return 2;
	}
	if (o->nargs > 0)
		(void)queue_id_parse(o->args[0], &id);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(verb, "check") == 0) {
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
	if (strcmp(verb, "compact") == 0) {
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
	rdonly = strcmp(verb, "delete") != 0 && strcmp(verb, "flush") != 0;
	if (queue_open(&q, cfg->queue_dir, cfg->queue_map_size,
		       rdonly ? QUEUE_F_RDONLY : 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s\n", err);
		return 1;
	}
	if (strcmp(verb, "list") == 0) {
		gettimeofday(&tv, NULL);
		rc = queue_admin_list(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
				      (uint64_t)tv.tv_usec);
		if (rc == 0)
			main_queue_shaping(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
					   (uint64_t)tv.tv_usec);
	} else if (strcmp(verb, "shaping") == 0) {
		gettimeofday(&tv, NULL);
		if (main_queue_shaping(q, stdout, (uint64_t)tv.tv_sec * 1000000u +
				       (uint64_t)tv.tv_usec) == 0)
			printf("shaping: no active actions or suspensions\n");
		main_queue_sources(q, stdout);
		rc = 0;
	} else if (strcmp(verb, "show") == 0) {
		rc = queue_admin_show(q, id, stdout);
	} else if (strcmp(verb, "delete") == 0) {
		for (unsigned i = 0; i < o->nargs && rc == 0; i++) {
			(void)queue_id_parse(o->args[i], &id);
			rc = queue_admin_delete(q, id);
			if (rc == 0)
				printf("deleted %s\n", o->args[i]);
		}
	} else if (strcmp(verb, "flush") == 0) {
		unsigned nflushed = 0, one;

		gettimeofday(&tv, NULL);
		/* Only the ids named; the whole queue only with --all (id 0). */
		for (unsigned i = 0; i < (o->all ? 1 : o->nargs) && rc == 0; i++) {
			id = 0;
			if (!o->all)
				(void)queue_id_parse(o->args[i], &id);
			rc = queue_admin_flush(q, id, (uint64_t)tv.tv_sec * 1000000u +
					       (uint64_t)tv.tv_usec, &one);
			nflushed += one;
		}
		if (rc == 0)
			printf("flushed %u message%s\n", nflushed, nflushed == 1 ? "" : "s");
	} else if (strcmp(verb, "count") == 0) {
		rc = queue_admin_count(q, &n);
		if (rc == 0)
			printf("%llu\n", (unsigned long long)n);
	} else {
		queue_close(&q);
		return main_queue_usage();
	}
	queue_close(&q);
	if (rc == -ENOENT) {
		char ids[17];

		queue_id_str(id, ids);
		fprintf(stderr, "ringmta: queue: no message %s\n", ids);
		return 1;
	}
	if (rc == -EPIPE && strcmp(verb, "list") == 0)
		return 1;	/* the reader went away; nothing to say */
	if (rc < 0) {
		fprintf(stderr, "ringmta: queue: %s\n", queue_strerror(rc));
		return 1;
	}
	return 0;
}
