/*
 * test_shp_source: the sources state (core/shaping/shp_source.c) on
 * hand-built pools: weights over 1,000 picks, the warm-up cap with spill
 * and with wait (and the next period's start), the period roll-over,
 * sources out of service, reloads, and save/restore with damaged blobs.
 *
 * The warm-up schedule and the rules lookup are stubbed here (the rules
 * loader is tested on its own): struct shp_warmup is this file's, a flat
 * cap for one provider per day or hour.
 */
#include "core/shaping/shp_source.h"
#include "tests/unit/tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct shp_warmup {
	const char *provider;	/* the capped provider */
	uint64_t cap;
	uint64_t period;	/* 86400 or 3600 */
};

uint64_t shp_warmup_cap(const struct shp_source *s, const char *provider, uint64_t now_unix_s,
			uint64_t *period_start_r, uint64_t *period_len_r)
{
	const struct shp_warmup *w = s->ss_warmup;

	if (w == NULL || provider == NULL || strcmp(provider, w->provider) != 0)
		return UINT64_MAX;
	*period_start_r = now_unix_s - now_unix_s % w->period;
	*period_len_r = w->period;
	return w->cap;
}

struct shp_rules {
	const char *const *names;
	unsigned n;
};

const struct shp_source *shp_rules_source_by_name(const struct shp_rules *r, const char *name)
{
	static const struct shp_source any = { .ss_name = "any" };

	for (unsigned i = 0; i < r->n; i++) {
		if (strcmp(r->names[i], name) == 0)
			return &any;
	}
	return NULL;
}

static struct shp_source test_src(const char *name, const char *addr, const struct shp_warmup *w)
{
	struct shp_source s = { .ss_name = name, .ss_warmup = w };
	struct sockaddr_in *in = (struct sockaddr_in *)&s.ss_addr;

	in->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &in->sin_addr);
	s.ss_addrlen = sizeof(*in);
	return s;
}

#define DAY0 (20000u * 86400ull)	/* a UTC midnight */

static void test_weights(void)
{
	struct shp_src_state *s;
	struct shp_source a = test_src("a", "127.0.0.2", NULL), b = test_src("b", "127.0.0.3", NULL),
			  c = test_src("c", "127.0.0.4", NULL);
	const struct shp_source *srcs[] = { &a, &b, &c };
	const uint32_t w[] = { 5, 3, 2 };
	struct shp_pool p = { "p", 3, srcs, w, true };
	unsigned got[3] = { 0 }, run = 0, maxrun = 0;
	const struct shp_source *last = NULL;

	tap_ok(shp_src_state_new(&s) == 0, "state new");
	for (unsigned i = 0; i < 1000; i++) {
		const struct shp_source *r;
		uint64_t at;

		if (shp_src_pick(s, &p, "gmail", DAY0 + i, &r, &at) != SHP_SRC_OK)
			break;
		got[r == &a ? 0 : r == &b ? 1 : 2]++;
		run = r == last ? run + 1 : 1;
		if (run > maxrun)
			maxrun = run;
		last = r;
	}
	tap_ok(got[0] == 500 && got[1] == 300 && got[2] == 200,
	       "weights 5:3:2 over 1,000 picks: %u %u %u", got[0], got[1], got[2]);
	tap_ok(maxrun <= 2, "smooth: no source more than twice in a row (%u)", maxrun);
	shp_src_state_free(&s);
	tap_ok(s == NULL, "free clears the pointer");
}

static void test_cap_spill(void)
{
	struct shp_src_state *s;
	struct shp_warmup wu = { "gmail", 5, 86400 };
	struct shp_source a = test_src("a", "127.0.0.2", &wu), b = test_src("b", "127.0.0.3", NULL);
	const struct shp_source *srcs[] = { &a, &b };
	const uint32_t w[] = { 1, 1 };
	struct shp_pool p = { "p", 2, srcs, w, true };
	unsigned na = 0, nb = 0, other = 0;
	const struct shp_source *r;
	uint64_t at;

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 20; i++) {
		if (shp_src_pick(s, &p, "gmail", DAY0 + 100 + i, &r, &at) != SHP_SRC_OK)
			break;
		shp_src_sent(s, r, "gmail", DAY0 + 100 + i);
		r == &a ? na++ : nb++;
	}
	tap_ok(na == 5 && nb == 15, "spill: a stops at its cap of 5 (a %u, b %u)", na, nb);
	/* The cap is per provider: another provider still gets a. */
	for (unsigned i = 0; i < 4; i++) {
		shp_src_pick(s, &p, "yahoo", DAY0 + 200, &r, &at);
		other += r == &a;
	}
	tap_ok(other == 2, "another provider is not capped (%u of 4 on a)", other);
	/* A new day: a is back. */
	na = 0;
	for (unsigned i = 0; i < 4; i++) {
		shp_src_pick(s, &p, "gmail", DAY0 + 86400 + i, &r, &at);
		na += r == &a;
	}
	tap_ok(na == 2, "period roll-over: a picked again the next day (%u of 4)", na);
	shp_src_state_free(&s);

	/* Every source capped: wait for the earliest next period. */
	struct shp_warmup hour = { "gmail", 1, 3600 };
	struct shp_source c = test_src("c", "127.0.0.4", &hour);
	const struct shp_source *srcs2[] = { &a, &c };
	struct shp_pool p2 = { "p2", 2, srcs2, w, true };

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 6; i++) {
		shp_src_pick(s, &p2, "gmail", DAY0 + 10, &r, &at);
		shp_src_sent(s, r, "gmail", DAY0 + 10);
	}
	tap_ok(shp_src_pick(s, &p2, "gmail", DAY0 + 20, &r, &at) == SHP_SRC_WAIT && r == NULL,
	       "spill with every source capped: WAIT");
	tap_ok(at == DAY0 + 3600, "retry at the start of the earliest next period (%llu)",
	       (unsigned long long)(at - DAY0));
	tap_ok(shp_src_pick(s, &p2, "gmail", DAY0 + 3600, &r, &at) == SHP_SRC_OK && r == &c,
	       "the hourly source is back at the next hour");
	shp_src_state_free(&s);
}

static void test_cap_wait(void)
{
	struct shp_src_state *s;
	struct shp_warmup wu = { "gmail", 5, 86400 };
	struct shp_source a = test_src("a", "127.0.0.2", &wu);
	const struct shp_source *srcs[] = { &a };
	const uint32_t w[] = { 1 };
	struct shp_pool p = { "solo", 1, srcs, w, false };
	const struct shp_source *r;
	uint64_t at = 0;
	unsigned ok = 0;

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 5; i++) {
		if (shp_src_pick(s, &p, "gmail", DAY0 + 50, &r, &at) == SHP_SRC_OK) {
			ok++;
			shp_src_sent(s, r, "gmail", DAY0 + 50);
		}
	}
	tap_ok(ok == 5, "five messages under the cap");
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 60, &r, &at) == SHP_SRC_WAIT,
	       "the sixth waits");
	tap_ok(at == DAY0 + 86400, "until the next day's start");
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 86400, &r, &at) == SHP_SRC_OK && r == &a,
	       "the next day it goes");
	shp_src_state_free(&s);

	/* Two sources, no spill: the capped one's turns wait, the other
	 * does not take them over. */
	struct shp_source b = test_src("b", "127.0.0.3", NULL);
	const struct shp_source *srcs2[] = { &a, &b };
	const uint32_t w2[] = { 1, 1 };
	struct shp_pool p2 = { "pair", 2, srcs2, w2, false };
	unsigned nwait = 0, nb = 0;

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 20; i++) {
		enum shp_src_pick_result res = shp_src_pick(s, &p2, "gmail", DAY0 + 70, &r, &at);

		if (res == SHP_SRC_WAIT)
			nwait++;
		else if (res == SHP_SRC_OK && r == &b)
			nb++;
		if (res == SHP_SRC_OK)
			shp_src_sent(s, r, "gmail", DAY0 + 70);
	}
	tap_ok(nb == 10 && nwait == 5, "wait: b keeps its share (%u), a's turns past the cap wait"
	       " (%u)", nb, nwait);
	shp_src_state_free(&s);
}

/* Picks made before any of their messages is sent hold places under the
 * cap: six picks in a row, none sent yet, give five sources and a wait. */
static void test_picks_in_flight(void)
{
	struct shp_src_state *s;
	struct shp_warmup wu = { "gmail", 5, 86400 };
	struct shp_source a = test_src("a", "127.0.0.2", &wu);
	const struct shp_source *srcs[] = { &a };
	const uint32_t w[] = { 1 };
	struct shp_pool p = { "solo", 1, srcs, w, false };
	const struct shp_source *r;
	uint64_t at;
	unsigned ok = 0;

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 6; i++)
		ok += shp_src_pick(s, &p, "gmail", DAY0 + 1, &r, &at) == SHP_SRC_OK;
	tap_ok(ok == 5, "six picks before any send: five places, then wait (%u)", ok);
	shp_src_unpicked(s, &a, "gmail", DAY0 + 2);
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 3, &r, &at) == SHP_SRC_OK,
	       "a place given back is taken again");
	for (unsigned i = 0; i < 5; i++)
		shp_src_sent(s, &a, "gmail", DAY0 + 4);
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 5, &r, &at) == SHP_SRC_WAIT,
	       "sent messages take their places, never two each");
	shp_src_unpicked(s, &a, "gmail", DAY0 + 6);
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 7, &r, &at) == SHP_SRC_WAIT,
	       "giving back more than was held frees nothing");
	tap_ok(shp_src_pick(s, &p, "gmail", DAY0 + 86400, &r, &at) == SHP_SRC_OK,
	       "a new period starts with no places held");
	shp_src_state_free(&s);
}

static void test_out_of_service(void)
{
	struct shp_src_state *s;
	struct shp_source a = test_src("a", "192.0.2.1", NULL), b = test_src("b", "127.0.0.3", NULL);
	const struct shp_source *srcs[] = { &a, &b };
	const uint32_t w[] = { 3, 1 };
	struct shp_pool p = { "p", 2, srcs, w, false };
	const struct shp_source *r;
	uint64_t at;
	unsigned na = 0;
	const char *names[] = { "a", "b" };
	struct shp_rules rules = { names, 2 };

	shp_src_state_new(&s);
	shp_src_bind_failed(s, &a, 99);
	shp_src_bind_failed(s, &a, 99);	/* logged once */
	for (unsigned i = 0; i < 50; i++) {
		if (shp_src_pick(s, &p, NULL, DAY0, &r, &at) == SHP_SRC_OK && r == &a)
			na++;
	}
	tap_ok(na == 0, "a source out of service is never picked");
	shp_src_bind_failed(s, &b, 99);
	tap_ok(shp_src_pick(s, &p, NULL, DAY0, &r, &at) == SHP_SRC_NONE && r == NULL,
	       "all out of service: NONE");
	shp_src_reloaded(s, &rules);
	tap_ok(shp_src_pick(s, &p, NULL, DAY0, &r, &at) == SHP_SRC_OK,
	       "a reload puts them back in service");
	shp_src_state_free(&s);
}

struct test_seen {
	unsigned n;
	uint64_t sent[8];
	char src[8][8], prov[8][8];
	int out[8];
};

static void test_seen_fn(void *arg, const char *source, const char *provider, uint64_t sent,
			 int out)
{
	struct test_seen *t = arg;

	if (t->n == 8)
		return;
	snprintf(t->src[t->n], 8, "%s", source);
	snprintf(t->prov[t->n], 8, "%s", provider ? provider : "-");
	t->sent[t->n] = sent;
	t->out[t->n] = out;
	t->n++;
}

static void test_save_restore(void)
{
	struct shp_src_state *s, *s2;
	struct shp_warmup wu = { "gmail", 3, 86400 };
	struct shp_source a = test_src("a", "127.0.0.2", &wu), b = test_src("b", "127.0.0.3", NULL);
	const struct shp_source *srcs[] = { &a };
	const uint32_t w[] = { 1 };
	struct shp_pool p = { "p", 1, srcs, w, false };
	const struct shp_source *r;
	struct test_seen seen = { 0 };
	uint64_t at;
	size_t need, got;
	unsigned char *blob;
	const char *names[] = { "a" };
	struct shp_rules rules = { names, 1 };

	shp_src_state_new(&s);
	for (unsigned i = 0; i < 3; i++)
		shp_src_sent(s, &a, "gmail", DAY0 + 5);
	shp_src_sent(s, &b, NULL, DAY0 + 5);
	need = shp_src_save(s, NULL, 0);
	blob = malloc(need);
	got = shp_src_save(s, blob, need);
	tap_ok(got == need && need > 16, "save: the size asked for is the size written (%zu)", need);
	shp_src_state_free(&s);

	shp_src_state_new(&s2);
	tap_ok(shp_src_restore(s2, blob, need) == 0, "restore a good blob");
	tap_ok(shp_src_pick(s2, &p, "gmail", DAY0 + 6, &r, &at) == SHP_SRC_WAIT,
	       "the restored count keeps a at its cap");
	shp_src_foreach(s2, test_seen_fn, &seen);
	tap_ok(seen.n == 2 && strcmp(seen.src[0], "a") == 0 && strcmp(seen.prov[0], "gmail") == 0 &&
	       seen.sent[0] == 3 && strcmp(seen.prov[1], "-") == 0 && seen.sent[1] == 1 &&
	       !seen.out[0], "foreach: each source's counts per provider");
	shp_src_reloaded(s2, &rules);
	seen.n = 0;
	shp_src_foreach(s2, test_seen_fn, &seen);
	tap_ok(seen.n == 1 && strcmp(seen.src[0], "a") == 0,
	       "a reload forgets a source gone from the rules");
	shp_src_state_free(&s2);

	/* Damaged blobs change nothing. */
	shp_src_state_new(&s2);
	blob[need / 2] ^= 0x40;
	tap_ok(shp_src_restore(s2, blob, need) < 0, "a flipped bit is refused");
	blob[need / 2] ^= 0x40;
	tap_ok(shp_src_restore(s2, blob, need - 1) < 0, "a truncated blob is refused");
	tap_ok(shp_src_restore(s2, blob, 3) < 0 && shp_src_restore(s2, NULL, 0) < 0,
	       "a blob shorter than its header is refused");
	blob[4] = 2;	/* version 2, checksum fixed up: still refused */
	{
		uint32_t h = 2166136261u;

		for (size_t i = 0; i < need - 4; i++)
			h = (h ^ blob[i]) * 16777619u;
		for (unsigned i = 0; i < 4; i++)
			blob[need - 4 + i] = (unsigned char)(h >> (8 * i));
	}
	tap_ok(shp_src_restore(s2, blob, need) < 0, "an unknown version is refused");
	seen.n = 0;
	shp_src_foreach(s2, test_seen_fn, &seen);
	tap_ok(seen.n == 0, "nothing was taken from the refused blobs");
	tap_ok(shp_src_pick(s2, &p, "gmail", DAY0 + 6, &r, &at) == SHP_SRC_OK,
	       "so a is free to send");
	shp_src_state_free(&s2);
	free(blob);
}

int main(void)
{
	test_weights();
	test_cap_spill();
	test_cap_wait();
	test_picks_in_flight();
	test_out_of_service();
	test_save_restore();
	return tap_done();
}
