/*
 * main_suppress.c: "ringmta suppress add|remove|list|check|purge": the
 * suppression list (queue/queue_suppress.c) beside the running daemon.
 * Each action is one LMDB transaction on the daemon's queue; the daemon
 * sees a change at the next RCPT.
 *
 *   add ADDR [--sender-domain D] [--class C] [--expire 30d] [--reason T]
 *   remove ADDR [--sender-domain D]
 *   check ADDR [--sender-domain D]   exit 0 suppressed, 1 not
 *   list                             every entry, expired ones marked
 *   purge                            delete the expired entries
 *
 * Without --sender-domain an entry is global (every sender); check with
 * --sender-domain D answers as RCPT would for mail from D.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/app/main.h"
#include "core/bounce/bclass.h"
#include "queue/queue.h"

struct msup_args {
	const char *addr;
	char addrbuf[512];		/* the address without <>, when given with */
	const char *domain;		/* "" = global */
	int bclass;
	uint64_t expire_s;		/* 0 = never */
	const char *reason;
};

/* The address as the operator wrote it, or as a log line shows it
 * ("<a@b>"): stored without the brackets, which RCPT never compares. An
 * address with blanks, control characters or brackets inside is refused. */
static int msup_addr(struct msup_args *a, const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(a->addrbuf))
		goto bad;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '<' || s[i] == '>' || s[i] == 0x7f)
			goto bad;
	memcpy(a->addrbuf, s, n);
	a->addrbuf[n] = '\0';
	a->addr = a->addrbuf;
	return 0;
bad:
	fprintf(stderr, "ringmta: suppress: '%s' is not an address\n", s);
	return -1;
}

static int msup_usage(void)
{
	fprintf(stderr, "usage: ringmta suppress add ADDR [--sender-domain D] [--class C]"
		" [--expire 30d] [--reason TEXT]\n"
		"       ringmta suppress remove|check ADDR [--sender-domain D]\n"
		"       ringmta suppress list | purge\n");
	return 2;
}

/* "30d", "12h", "90m", "45s", "600" (seconds), "0" (never). */
static int msup_duration(const char *s, uint64_t *v_r)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || s[0] == '-')
		return -1;
	switch (*end) {
	case '\0': break;
	case 's': mul = 1; end++; break;
	case 'm': mul = 60; end++; break;
	case 'h': mul = 3600; end++; break;
	case 'd': mul = 86400; end++; break;
	default: return -1;
	}
	if (*end != '\0' || v > UINT64_MAX / mul / 2)
		return -1;
	*v_r = v * mul;
	return 0;
}

static int msup_parse(int argc, char **argv, struct msup_args *a)
{
	memset(a, 0, sizeof(*a));
	a->domain = "";
	a->bclass = BCLASS_POLICY;	/* an operator's decision */
	a->reason = "added by ringmta suppress";
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (argv[i][0] != '-') {
			if (a->addr != NULL || msup_addr(a, argv[i]) < 0)
				return -1;
			continue;
		}
		if (v == NULL)
			return -1;
		i++;
		if (strcmp(argv[i - 1], "--sender-domain") == 0) {
			a->domain = v;
		} else if (strcmp(argv[i - 1], "--class") == 0) {
			if ((a->bclass = bclass_parse(v, strlen(v))) < 0) {
				fprintf(stderr, "ringmta: suppress: unknown class '%s'\n", v);
				return -1;
			}
		} else if (strcmp(argv[i - 1], "--expire") == 0) {
			if (msup_duration(v, &a->expire_s) < 0) {
				fprintf(stderr, "ringmta: suppress: --expire: '%s' is not a duration"
					" (30d, 12h, 90m, 45s; 0 = never)\n", v);
				return -1;
			}
		} else if (strcmp(argv[i - 1], "--reason") == 0) {
			a->reason = v;
		} else {
			return -1;
		}
	}
	if (strcmp(argv[0], "list") == 0 || strcmp(argv[0], "purge") == 0)
		return a->addr == NULL ? 0 : -1;
	return a->addr != NULL && a->addr[0] != '\0' ? 0 : -1;
}

static void msup_time(uint64_t s, char *buf, size_t len)
{
	time_t t = (time_t)s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int msup_list_one(void *ctx, const struct queue_suppress *e)
{
	uint64_t now = *(const uint64_t *)ctx;
	const char *cls = bclass_name(e->qs_class);
	char added[32], expires[32] = "never";

	msup_time(e->qs_added, added, sizeof(added));
	if (e->qs_expires != 0)
		msup_time(e->qs_expires, expires, sizeof(expires));
	printf("%.*s scope=%.*s class=%s added=%s expires=%s%s reason=\"%.*s\"\n",
	       (int)e->qs_addr_len, e->qs_addr,
	       e->qs_scope_len ? (int)e->qs_scope_len : 6, e->qs_scope_len ? e->qs_scope : "global",
	       cls ? cls : "other", added, expires,
	       e->qs_expires != 0 && e->qs_expires <= now ? " (expired)" : "",
	       (int)e->qs_reason_len, e->qs_reason);
	return ferror(stdout) ? 1 : 0;
}

int main_suppress(const struct config *cfg, int argc, char **argv)
{
	struct msup_args a;
	struct queue_suppress e, hit;
	struct queue *q;
	uint64_t now = (uint64_t)time(NULL);
	char err[512], since[32];
	bool write;
	int rc;

	if (argc < 1 || msup_parse(argc, argv, &a) < 0)
		return msup_usage();
	write = strcmp(argv[0], "add") == 0 || strcmp(argv[0], "remove") == 0 ||
		strcmp(argv[0], "purge") == 0;
	if (!write && strcmp(argv[0], "list") != 0 && strcmp(argv[0], "check") != 0)
		return msup_usage();
	signal(SIGPIPE, SIG_IGN);
	if (queue_open(&q, cfg->queue_dir, cfg->queue_map_size, write ? 0 : QUEUE_F_RDONLY,
		       err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: %s\n", err);
		return 1;
	}
	if (strcmp(argv[0], "add") == 0) {
		memset(&e, 0, sizeof(e));
		e.qs_scope = a.domain;
		e.qs_scope_len = strlen(a.domain);
		e.qs_addr = a.addr;
		e.qs_addr_len = strlen(a.addr);
		e.qs_class = (uint8_t)a.bclass;
		e.qs_added = now;
		e.qs_expires = a.expire_s ? now + a.expire_s : 0;
		e.qs_reason = a.reason;
		e.qs_reason_len = strlen(a.reason);
		rc = queue_suppress_add(q, &e);
		if (rc == 0)
			printf("suppressed <%s> scope=%s class=%s\n", a.addr,
			       a.domain[0] ? a.domain : "global", bclass_name((unsigned)a.bclass));
	} else if (strcmp(argv[0], "remove") == 0) {
		rc = queue_suppress_remove(q, a.domain, a.addr);
		if (rc == 0)
			printf("removed <%s> scope=%s\n", a.addr, a.domain[0] ? a.domain : "global");
		else if (rc == -ENOENT)
			fprintf(stderr, "ringmta: suppress: <%s> is not on the %s list\n", a.addr,
				a.domain[0] ? a.domain : "global");
	} else if (strcmp(argv[0], "check") == 0) {
		rc = queue_suppress_lookup(q, a.domain, a.addr, strlen(a.addr), now, &hit);
		if (rc == 1) {
			msup_time(hit.qs_added, since, sizeof(since));
			printf("suppressed <%s> scope=%s class=%s since=%s\n", a.addr,
			       hit.qs_scope_len ? a.domain : "global",
			       bclass_name(hit.qs_class) ? bclass_name(hit.qs_class) : "other",
			       since);
			rc = 0;
		} else if (rc == 0) {
			printf("not suppressed <%s>\n", a.addr);
			rc = -ENOENT;
		}
	} else if (strcmp(argv[0], "purge") == 0) {
		unsigned n = 0;

		rc = queue_suppress_purge(q, now, &n);
		if (rc == 0)
			printf("purged %u expired entr%s\n", n, n == 1 ? "y" : "ies");
	} else {
		rc = queue_suppress_foreach(q, msup_list_one, &now);
		if (rc == 0 && fflush(stdout) != 0)
			rc = -EPIPE;
	}
	queue_close(&q);
	if (rc == -ENOENT)
		return 1;
	if (rc < 0) {
		fprintf(stderr, "ringmta: suppress %s: %s\n", argv[0],
			rc == -ENAMETOOLONG ? "address and domain too long" : queue_strerror(rc));
		return 1;
	}
	return 0;
}
