/*
 * test_shp_susp.c: the operator's suspensions (shp_susp.h): each selector
 * holds the mail it names and nothing else, case does not matter, expiry
 * and lifting, bad input refused, the table's bound, durations, and the
 * persistence round trip (expired entries dropped, a damaged blob
 * refused as a whole).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_susp.h"
#include "tap.h"

#define S 1000000ull
#define SITE "mx1.gmail-test.example,mx2.gmail-test.example"

static bool held(struct shp_susp *s, const char *site, const char *domain, const char *source,
		 const char *sender, uint64_t now, uint64_t *until_r, char *why, size_t whylen)
{
	struct shp_susp_mail m = { site, domain, source, sender };
	uint64_t until;

	return shp_susp_check(s, &m, now, until_r != NULL ? until_r : &until, why, whylen);
}

static void test_selectors(void)
{
	struct shp_susp *s;
	uint64_t t0 = 1700000000ull * S, until;
	char why[300];

	shp_susp_new(&s);
	tap_ok(shp_susp_none(s) && !held(s, SITE, "a.test", "ip1", "b.test", t0, NULL, NULL, 0),
	       "an empty table holds nothing");
	tap_ok(shp_susp_set(s, SHP_SUSP_DOMAIN, "Example.TEST", NULL, "customer asked", t0,
			    t0 + 3600 * S) == 0, "suspend a domain");
	tap_ok(held(s, NULL, "example.test", NULL, NULL, t0 + S, &until, why, sizeof(why)) &&
	       until == t0 + 3600 * S, "mail for the domain waits until the end");
	tap_ok(strcmp(why, "domain example.test suspended by admin: customer asked") == 0,
	       "why names the selector, who and the reason: %s", why);
	tap_ok(held(s, NULL, "EXAMPLE.test", NULL, NULL, t0 + S, NULL, NULL, 0),
	       "case does not matter");
	tap_ok(!held(s, "example.test", "other.test", "example.test", "example.test", t0 + S, NULL,
		     NULL, 0), "a domain suspension holds no site, source or sender of that name");
	tap_ok(!held(s, NULL, "example.test", NULL, NULL, t0 + 3600 * S, NULL, NULL, 0),
	       "it ends by itself");

	tap_ok(shp_susp_set(s, SHP_SUSP_SITE, SITE, "ops", NULL, t0, t0 + 60 * S) == 0 &&
	       shp_susp_set(s, SHP_SUSP_SOURCE, "ip2", NULL, NULL, t0, t0 + 120 * S) == 0 &&
	       shp_susp_set(s, SHP_SUSP_SENDER_DOMAIN, "news.test", NULL, NULL, t0,
			    t0 + 30 * S) == 0, "suspend a site, a source and a sender domain");
	tap_ok(held(s, SITE, "x.test", "ip1", "y.test", t0 + S, &until, why, sizeof(why)) &&
	       until == t0 + 60 * S && strstr(why, "site " SITE " suspended by ops") != NULL,
	       "the site holds its mail: %s", why);
	tap_ok(held(s, "other", "x.test", "ip2", "y.test", t0 + S, &until, NULL, 0) &&
	       until == t0 + 120 * S, "the source holds its mail");
	tap_ok(held(s, "other", "x.test", "ip1", "News.Test", t0 + S, &until, NULL, 0) &&
	       until == t0 + 30 * S, "the sender domain holds its mail");
	tap_ok(held(s, SITE, "x.test", "ip2", "news.test", t0 + S, &until, NULL, 0) &&
	       until == t0 + 120 * S, "held by several: until the latest end");
	tap_ok(!held(s, "other", "x.test", "ip1", "y.test", t0 + S, NULL, NULL, 0),
	       "other mail goes");
	tap_ok(!held(s, "", "", "", "", t0 + S, NULL, NULL, 0) &&
	       !held(s, NULL, NULL, NULL, NULL, t0 + S, NULL, NULL, 0),
	       "mail of unknown site, domain, source and sender goes");

	tap_ok(shp_susp_until(s, SHP_SUSP_SITE, SITE, t0 + S) == t0 + 60 * S &&
	       shp_susp_until(s, SHP_SUSP_DOMAIN, SITE, t0 + S) == 0 &&
	       shp_susp_until(s, SHP_SUSP_SITE, SITE, t0 + 60 * S) == 0,
	       "the end of the suspension of a selector in force");
	tap_ok(shp_susp_clear(s, SHP_SUSP_SITE, SITE, t0 + 2 * S, &until) == 0 &&
	       until == t0 + 60 * S, "resume the site: the end it had");
	tap_ok(!held(s, SITE, "x.test", "ip1", "y.test", t0 + 3 * S, NULL, NULL, 0),
	       "the site's mail goes again");
	tap_ok(shp_susp_clear(s, SHP_SUSP_SITE, SITE, t0 + 3 * S, NULL) == -ENOENT,
	       "resuming it again: not suspended");
	tap_ok(shp_susp_clear(s, SHP_SUSP_SENDER_DOMAIN, "news.test", t0 + 31 * S, NULL) ==
	       -ENOENT, "resuming an expired one: not suspended");
	tap_ok(shp_susp_clear(s, SHP_SUSP_DOMAIN, "", t0, NULL) == -ENOENT,
	       "resuming an empty name: not suspended");

	/* Replacing keeps one entry with the new end. */
	tap_ok(shp_susp_set(s, SHP_SUSP_SOURCE, "IP2", "bob", "again", t0 + 5 * S, t0 + 10 * S) ==
	       0 && held(s, NULL, NULL, "ip2", NULL, t0 + 6 * S, &until, why, sizeof(why)) &&
	       until == t0 + 10 * S && strstr(why, "by bob: again") != NULL,
	       "a new suspension of the same selector replaces the old one");
	shp_susp_free(&s);
	tap_ok(s == NULL, "free clears the pointer");
}

static void test_bad_input(void)
{
	struct shp_susp *s;
	uint64_t t0 = 1700000000ull * S, us;
	char longname[400];
	char reason[400];
	unsigned i, n;
	int rc = 0;

	shp_susp_new(&s);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	tap_ok(shp_susp_set(s, SHP_SUSP_DOMAIN, "", NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_DOMAIN, NULL, NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_DOMAIN, longname, NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_DOMAIN, "a b", NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_DOMAIN, "a\nb", NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_NKINDS, "a", NULL, NULL, t0, t0 + S) == -EINVAL &&
	       shp_susp_set(s, SHP_SUSP_DOMAIN, "a", NULL, NULL, t0, t0) == -EINVAL,
	       "empty, long, blank or control names, bad kinds and past ends are refused");
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	reason[3] = '\n';
	reason[4] = '\t';
	tap_ok(shp_susp_set(s, SHP_SUSP_DOMAIN, "a.test", NULL, reason, t0, t0 + S) == 0,
	       "a long reason with control characters is taken");
	{
		char why[600];
		uint64_t until;

		held(s, NULL, "a.test", NULL, NULL, t0, &until, why, sizeof(why));
		tap_ok(strchr(why, '\n') == NULL && strchr(why, '\t') == NULL &&
		       strlen(why) < 40 + SHP_SUSP_REASON_MAX, "... cut, without control characters");
	}
	for (i = 0, n = 0; i < SHP_SUSP_MAX + 5; i++) {
		char name[32];

		snprintf(name, sizeof(name), "d%u.test", i);
		rc = shp_susp_set(s, SHP_SUSP_DOMAIN, name, NULL, NULL, t0, t0 + 10 * S);
		if (rc == 0)
			n++;
		else
			break;
	}
	tap_ok(rc == -ENOSPC && n == SHP_SUSP_MAX - 1, "the table is bounded (%u taken)", n);
	tap_ok(shp_susp_set(s, SHP_SUSP_DOMAIN, "late.test", NULL, NULL, t0 + 20 * S,
			    t0 + 30 * S) == 0, "... and ended entries make room");
	tap_ok(!shp_susp_none(s) && shp_susp_expire(s, t0 + 30 * S) && shp_susp_none(s),
	       "expire drops what ended");

	tap_ok(shp_susp_duration_parse("90s", &us) == 0 && us == 90 * S &&
	       shp_susp_duration_parse("30m", &us) == 0 && us == 1800 * S &&
	       shp_susp_duration_parse("2h", &us) == 0 && us == 7200 * S &&
	       shp_susp_duration_parse("7d", &us) == 0 && us == 7 * 86400 * S,
	       "durations in s, m, h, d");
	tap_ok(shp_susp_duration_parse("", &us) < 0 && shp_susp_duration_parse("h", &us) < 0 &&
	       shp_susp_duration_parse("0h", &us) < 0 && shp_susp_duration_parse("2", &us) < 0 &&
	       shp_susp_duration_parse("2hh", &us) < 0 && shp_susp_duration_parse("-2h", &us) < 0 &&
	       shp_susp_duration_parse("2w", &us) < 0 && shp_susp_duration_parse(NULL, &us) < 0 &&
	       shp_susp_duration_parse("367d", &us) < 0 &&
	       shp_susp_duration_parse("99999999999999999999s", &us) < 0,
	       "bad durations are refused");
	tap_ok(shp_susp_kind_parse("sender_domain") == SHP_SUSP_SENDER_DOMAIN &&
	       shp_susp_kind_parse("site") == SHP_SUSP_SITE && shp_susp_kind_parse("x") < 0 &&
	       shp_susp_kind_parse(NULL) < 0, "selector names");
	shp_susp_free(&s);
}

struct list {
	unsigned n;
	char text[1024];
};

static void list_cb(void *arg, const struct shp_susp_item *it)
{
	struct list *l = arg;
	size_t u = strlen(l->text);

	l->n++;
	snprintf(l->text + u, sizeof(l->text) - u, "%s=%s/%s/%s/%llu/%llu;",
		 shp_susp_kind_name(it->si_kind), it->si_name, it->si_who, it->si_reason,
		 (unsigned long long)it->si_set_us, (unsigned long long)it->si_until_us);
}

static void test_blob(void)
{
	struct shp_susp *a, *b;
	uint64_t t0 = 1700000000ull * S;
	struct list la = { 0, "" }, lb = { 0, "" };
	char *buf;
	size_t n;

	shp_susp_new(&a);
	shp_susp_new(&b);
	shp_susp_set(a, SHP_SUSP_SITE, SITE, "admin", "maintenance", t0, t0 + 100 * S);
	shp_susp_set(a, SHP_SUSP_SENDER_DOMAIN, "news.test", "alice", "", t0, t0 + 200 * S);
	shp_susp_set(a, SHP_SUSP_DOMAIN, "short.test", NULL, "soon over", t0, t0 + 10 * S);
	n = shp_susp_save(a, t0, NULL, 0);
	buf = malloc(n);
	tap_ok(shp_susp_save(a, t0, buf, n) == n && buf[n - 1] == '\0', "save: %zu bytes", n);
	tap_ok(shp_susp_restore(b, buf, n, t0 + 20 * S) == 0, "restore");
	shp_susp_foreach(a, t0 + 20 * S, list_cb, &la);
	shp_susp_foreach(b, t0 + 20 * S, list_cb, &lb);
	tap_ok(la.n == 2 && strcmp(la.text, lb.text) == 0, "the same after a restart: %s",
	       lb.text);
	{
		struct list all = { 0, "" };

		shp_susp_foreach(b, t0, list_cb, &all);
		tap_ok(all.n == 2, "the one that ended while down was dropped");
	}
	/* Damage refused as a whole: the table is left empty. */
	{
		char bad[] = "ringmta-suspensions 1\nS\tsite\tx\t1\tnotanumber\tadmin\t\n";
		char other[] = "ringmta-suspensions 2\n";
		char trunc[] = "ringmta-suspensions 1\nS\tsite\tx\t1\t9";
		char kind[] = "ringmta-suspensions 1\nS\tplanet\tx\t1\t99999999999999999\ta\t\n";
		char empty[] = "ringmta-suspensions 1\n";

		tap_ok(shp_susp_restore(b, bad, sizeof(bad), t0) < 0 && shp_susp_none(b),
		       "a bad number: refused, nothing kept");
		tap_ok(shp_susp_restore(b, other, sizeof(other), t0) < 0, "another version: refused");
		tap_ok(shp_susp_restore(b, trunc, sizeof(trunc) - 1, t0) < 0, "truncated: refused");
		tap_ok(shp_susp_restore(b, kind, sizeof(kind), t0) < 0, "an unknown kind: refused");
		tap_ok(shp_susp_restore(b, buf, 3, t0) < 0, "a torn blob: refused");
		tap_ok(shp_susp_restore(b, empty, sizeof(empty), t0) == 0 && shp_susp_none(b),
		       "an empty table round-trips");
	}
	free(buf);
	shp_susp_free(&a);
	shp_susp_free(&b);
}

int main(void)
{
	test_selectors();
	test_bad_input();
	test_blob();
	return tap_done();
}
