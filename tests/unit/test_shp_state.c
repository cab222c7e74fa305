/*
 * test_shp_state.c: the shaping state machine (shp_state.h): actions and
 * their expiry, the ramp's steps, health backoff with exactly one probe,
 * the learned per-connection limit, the domain -> site cache, and the
 * persistence round trip (and that a damaged blob is refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_state.h"
#include "tap.h"

#define S 1000000ull
#define SITE "mx1.gmail-test.example,mx2.gmail-test.example"

static uint64_t backoff(void *arg, unsigned level)
{
	(void)arg;
	return (uint64_t)level * 10 * S;	/* 10 s, 20 s, 30 s ... */
}

struct count {
	unsigned n;
	char kinds[512];
};

static void count_cb(void *arg, const struct shp_state_item *it)
{
	struct count *c = arg;

	c->n++;
	snprintf(c->kinds + strlen(c->kinds), sizeof(c->kinds) - strlen(c->kinds), "%s%s:%s",
		 c->kinds[0] ? "," : "", it->sti_kind, it->sti_rule);
}

static void test_actions(void)
{
	struct shp_state *st;
	struct shp_verdict v;
	struct shp_action susp = { SHP_ACT_SUSPEND, 0, { 0, 0, 0 }, 60 * S };
	struct shp_action site = { SHP_ACT_SUSPEND_SITE, 0, { 0, 0, 0 }, 30 * S };
	struct shp_action maxc = { SHP_ACT_MAX_CONNECTIONS, 2, { 0, 0, 0 }, 100 * S };
	struct shp_action rate = { SHP_ACT_MESSAGE_RATE, 0, { 5, S, 0 }, 100 * S };
	struct shp_action bnc = { SHP_ACT_BOUNCE, 0, { 0, 0, 0 }, 10 * S };
	struct shp_limits l = { .sl_max_connections = 20, .sl_message_rate = { 100, S, 0 } };
	uint64_t t0 = 1700000000ull * S, until;

	shp_state_new(&st);
	shp_state_check(st, SITE, "ip1", t0, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN && v.sv_max_conns == 0, "a new path is open");

	until = shp_state_fire(st, SITE, "ip1", "tss04", &susp, t0);
	tap_ok(until == t0 + 60 * S, "suspend expires after its duration");
	shp_state_check(st, SITE, "ip1", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 60 * S &&
	       strstr(v.sv_reason, "tss04") != NULL, "suspended (site, source): %s", v.sv_reason);
	shp_state_check(st, SITE, "ip2", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN, "another source of the site is not suspended");
	shp_state_check(st, SITE, "ip1", t0 + 60 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN, "open again at expiry");

	shp_state_fire(st, SITE, "ip1", "whole", &site, t0);
	shp_state_check(st, SITE, "ip2", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 30 * S,
	       "suspend_site holds every source");

	shp_state_fire(st, SITE, "ip1", "lower", &maxc, t0);
	shp_state_fire(st, SITE, "ip1", "slow", &rate, t0);
	shp_state_check(st, SITE, "ip1", t0 + 61 * S, true, &v);
	shp_verdict_apply(&v, &l);
	tap_ok(v.sv_gate == SHP_GATE_OPEN && l.sl_max_connections == 2 &&
	       l.sl_message_rate.sr_count == 5, "max_connections and message_rate lower the limits");
	{
		struct shp_action faster = { SHP_ACT_MESSAGE_RATE, 0, { 50, S, 0 }, 100 * S };
		struct shp_limits l2 = { .sl_max_connections = 1, .sl_message_rate = { 1, S, 0 } };

		shp_state_fire(st, SITE, "ip1", "fast", &faster, t0);
		shp_state_check(st, SITE, "ip1", t0 + 31 * S, true, &v);
		tap_ok(v.sv_rate.sr_count == 5, "a faster rate does not replace a slower active one");
		shp_verdict_apply(&v, &l2);
		tap_ok(l2.sl_max_connections == 1 && l2.sl_message_rate.sr_count == 1,
		       "actions never raise a configured limit");
	}
	shp_state_check(st, SITE, "ip1", t0 + 101 * S, true, &v);
	tap_ok(v.sv_max_conns == 0 && v.sv_rate.sr_count == 0, "lowered limits expire");

	shp_state_fire(st, "other", "ip1", "bouncer", &bnc, t0);
	shp_state_check(st, "other", "ip1", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_BOUNCE && strstr(v.sv_reason, "bouncer") != NULL,
	       "bounce action names the rule");
	{
		struct count c = { 0, "" };

		shp_state_foreach(st, t0 + 2 * S, count_cb, &c);
		tap_ok(c.n == 5, "foreach lists the active actions: %s", c.kinds);
	}
	shp_state_expire(st, t0 + 200 * S);
	{
		struct count c = { 0, "" };

		shp_state_foreach(st, t0 + 200 * S, count_cb, &c);
		tap_ok(c.n == 0, "nothing left after expiry");
	}
	shp_state_free(&st);
}

static void test_ramp(void)
{
	struct shp_state *st;
	struct shp_verdict v;
	struct shp_action ramp = { SHP_ACT_RAMP, 2, { 0, 0, 0 }, 3 * S };
	uint64_t t0 = 1700000000ull * S;

	shp_state_new(&st);
	shp_state_fire(st, SITE, "ip1", "gmail-4.7.28", &ramp, t0);
	shp_state_check(st, SITE, "ip2", t0 + S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 3 * S,
	       "ramp: the site pauses for every source");
	shp_state_delivered(st, SITE, 4, t0 + S);
	shp_state_check(st, SITE, "ip1", t0 + 3 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN && v.sv_max_conns == 1,
	       "ramp: one connection after the pause (no step counted while paused)");
	shp_state_delivered(st, SITE, 4, t0 + 4 * S);
	shp_state_check(st, SITE, "ip1", t0 + 4 * S, true, &v);
	tap_ok(v.sv_max_conns == 1, "ramp: still one after one success (step 2)");
	shp_state_delivered(st, SITE, 4, t0 + 4 * S);
	shp_state_check(st, SITE, "ip1", t0 + 4 * S, true, &v);
	tap_ok(v.sv_max_conns == 2, "ramp: two after two successes");
	for (int i = 0; i < 4; i++)
		shp_state_delivered(st, SITE, 4, t0 + 5 * S);
	shp_state_check(st, SITE, "ip1", t0 + 5 * S, true, &v);
	tap_ok(v.sv_max_conns == 0 && v.sv_gate == SHP_GATE_OPEN,
	       "ramp: ends at the configured limit (4)");
	shp_state_fire(st, SITE, "ip1", "gmail-4.7.28", &ramp, t0 + 6 * S);
	shp_state_check(st, SITE, "ip1", t0 + 7 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED, "ramp: a new firing pauses again");
	shp_state_free(&st);
}

static void test_health(void)
{
	struct shp_state *st;
	struct shp_verdict v;
	uint64_t t0 = 1700000000ull * S, until;
	unsigned probes = 0;

	shp_state_new(&st);
	until = shp_state_conn_failed(st, "dead", t0, backoff, NULL);
	tap_ok(until == t0 + 10 * S, "health: first failure suspends for backoff(1)");
	until = shp_state_conn_failed(st, "dead", t0 + S, backoff, NULL);
	tap_ok(until == t0 + 10 * S, "health: rounds already under way do not step again");
	shp_state_check(st, "dead", "ip1", t0 + 5 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 10 * S &&
	       !v.sv_probe_wait, "health: suspended until the backoff ends: %s", v.sv_reason);
	shp_state_check(st, "dead", "ip1", t0 + 10 * S, false, &v);
	tap_ok(v.sv_gate == SHP_GATE_PROBE, "health: a look says the probe is due ...");
	for (int i = 0; i < 10; i++) {
		shp_state_check(st, "dead", "ip1", t0 + 10 * S + (uint64_t)i, true, &v);
		if (v.sv_gate == SHP_GATE_PROBE)
			probes++;
		else
			tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_probe_wait,
			       "health: others wait for the probe");
	}
	tap_ok(probes == 1, "health: exactly one probe when the backoff ends (%u)", probes);
	until = shp_state_conn_failed(st, "dead", t0 + 11 * S, backoff, NULL);
	tap_ok(until == t0 + 31 * S, "health: failed probe -> backoff(2)");
	shp_state_check(st, "dead", NULL, t0 + 31 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_PROBE, "health: second probe due");
	shp_state_check(st, "dead", NULL, t0 + 31 * S + SHP_PROBE_STALE_US, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_PROBE, "health: a lost probe is replaced after a while");
	shp_state_conn_ok(st, "dead", t0 + 32 * S);
	shp_state_check(st, "dead", "ip1", t0 + 32 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN, "health: success reopens the site");
	until = shp_state_conn_failed(st, "dead", t0 + 40 * S, backoff, NULL);
	tap_ok(until == t0 + 50 * S, "health: after a success the backoff starts over");
	shp_state_free(&st);
}

/* Sites that failed once and never had mail again: with thousands of
 * dead domains (each a site of its own), their health must not stay in
 * memory and in the saved blob for ever. */
static void test_health_forgotten(void)
{
	struct shp_state *st;
	struct shp_verdict v;
	uint64_t t0 = 1700000000ull * S, later = t0 + 2 * SHP_HEALTH_FORGET_US;
	char site[64], blob[256];
	struct count c = { 0, "" };
	size_t n;

	shp_state_new(&st);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(site, sizeof(site), "dead%u.example", i);
		shp_state_conn_failed(st, site, t0, backoff, NULL);
	}
	shp_state_conn_failed(st, "busy.example", later - 5 * S, backoff, NULL);
	shp_state_expire(st, t0 + 20 * S);
	shp_state_foreach(st, t0 + 20 * S, count_cb, &c);
	tap_ok(c.n == 1001, "health: kept while the probe is recent (%u)", c.n);
	shp_state_expire(st, later);
	c.n = 0;
	c.kinds[0] = '\0';
	shp_state_foreach(st, later, count_cb, &c);
	tap_ok(c.n == 1, "health: forgotten a while after the suspension ended unprobed (%u)",
	       c.n);
	shp_state_check(st, "busy.example", NULL, later, false, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED, "health: a site suspended just now stays");
	n = shp_state_save(st, later, blob, sizeof(blob));
	tap_ok(n < sizeof(blob) && strstr(blob, "dead") == NULL,
	       "health: the blob no longer carries forgotten sites (%zu bytes)", n);
	shp_state_free(&st);
}

static void test_learned_and_cache(void)
{
	struct shp_state *st;
	struct shp_verdict v;
	struct shp_limits l = { .sl_max_messages_per_connection = 100 };
	char site[100], prov[40];
	uint64_t t0 = 1700000000ull * S;

	shp_state_new(&st);
	tap_ok(shp_state_learn_max_msgs(st, "yahoo", "ip1", 20, t0), "learned 20");
	tap_ok(!shp_state_learn_max_msgs(st, "yahoo", "ip1", 25, t0), "25 does not raise it");
	tap_ok(shp_state_learn_max_msgs(st, "yahoo", "ip1", 15, t0), "15 lowers it");
	shp_state_check(st, "yahoo", "ip1", t0, true, &v);
	shp_verdict_apply(&v, &l);
	tap_ok(v.sv_max_msgs == 15 && l.sl_max_messages_per_connection == 15,
	       "the learned limit lowers max_messages_per_connection");
	shp_state_check(st, "yahoo", "ip2", t0, true, &v);
	tap_ok(v.sv_max_msgs == 0, "learned per (site, source)");

	shp_state_site_put(st, "a.example", "mx.example", "prov", t0 + 10 * S);
	shp_state_site_put(st, "b.example", "mx.example", "", t0 + 10 * S);
	tap_ok(shp_state_site_get(st, "a.example", t0, site, sizeof(site), prov, sizeof(prov)) &&
	       strcmp(site, "mx.example") == 0 && strcmp(prov, "prov") == 0,
	       "site cache: a.example -> mx.example (prov)");
	shp_state_site_put(st, "a.example", "mx2.example", "prov", t0 + 20 * S);
	tap_ok(shp_state_site_get(st, "a.example", t0 + 15 * S, site, sizeof(site), prov,
				  sizeof(prov)) && strcmp(site, "mx2.example") == 0,
	       "site cache: an update replaces the entry");
	tap_ok(!shp_state_site_get(st, "b.example", t0 + 10 * S, site, sizeof(site), prov,
				   sizeof(prov)), "site cache: expired entries are not used");
	tap_ok(!shp_state_site_get(st, "c.example", t0, site, sizeof(site), prov, sizeof(prov)),
	       "site cache: unknown domain");
	shp_state_free(&st);
}

static void test_blob(void)
{
	struct shp_state *st, *st2;
	struct shp_verdict v;
	struct shp_action susp = { SHP_ACT_SUSPEND, 0, { 0, 0, 0 }, 600 * S };
	struct shp_action rate = { SHP_ACT_MESSAGE_RATE, 0, { 7, 60 * S, 2 }, 600 * S };
	struct shp_action ramp = { SHP_ACT_RAMP, 1, { 0, 0, 0 }, 600 * S };
	uint64_t t0 = 1700000000ull * S;
	char buf[4096], bad[4096];
	size_t n;

	shp_state_new(&st);
	shp_state_new(&st2);
	shp_state_fire(st, SITE, "ip1", "tss04", &susp, t0);
	shp_state_fire(st, "s2", "ip1", "slow rule", &rate, t0);
	shp_state_fire(st, "s3", NULL, "gmail", &ramp, t0);
	shp_state_conn_failed(st, "dead", t0, backoff, NULL);
	shp_state_learn_max_msgs(st, "yahoo", "ip1", 20, t0);
	tap_ok(shp_state_take_dirty(st) && !shp_state_take_dirty(st), "dirty flag taken once");
	n = shp_state_save(st, t0 + S, buf, sizeof(buf));
	tap_ok(n > 0 && n <= sizeof(buf) && shp_state_save(st, t0 + S, NULL, 0) == n,
	       "saved %zu bytes (size query agrees)", n);
	tap_ok(shp_state_restore(st2, buf, n) == 0, "restored");
	shp_state_check(st2, SITE, "ip1", t0 + 2 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 600 * S &&
	       strstr(v.sv_reason, "tss04"), "round trip: suspension and its rule");
	shp_state_check(st2, "s2", "ip1", t0 + 2 * S, true, &v);
	tap_ok(v.sv_rate.sr_count == 7 && v.sv_rate.sr_period_us == 60 * S &&
	       v.sv_rate.sr_burst == 2, "round trip: lowered rate");
	shp_state_check(st2, "s3", "ip9", t0 + 2 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 600 * S,
	       "round trip: ramp pause");
	shp_state_check(st2, "dead", "ip1", t0 + 2 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_SUSPENDED && v.sv_until_us == t0 + 10 * S,
	       "round trip: health suspension");
	shp_state_check(st2, "yahoo", "ip1", t0 + 2 * S, true, &v);
	tap_ok(v.sv_max_msgs == 20, "round trip: learned limit");
	{
		size_t n2 = shp_state_save(st2, t0 + S, bad, sizeof(bad));

		tap_ok(n2 == n, "saving the restored state gives the same size");
	}

	memcpy(bad, buf, n);
	bad[0] = 'X';
	tap_ok(shp_state_restore(st2, bad, n) < 0, "damaged magic refused");
	shp_state_check(st2, SITE, "ip1", t0 + 2 * S, true, &v);
	tap_ok(v.sv_gate == SHP_GATE_OPEN, "a refused blob leaves the state empty");
	memcpy(bad, buf, n);
	bad[n / 2] = '\t';
	tap_ok(shp_state_restore(st2, bad, n) < 0, "damaged line refused");
	tap_ok(shp_state_restore(st2, buf, n - 5) < 0, "truncated blob refused");
	memcpy(bad, buf, n);
	memcpy(bad + strlen("ringmta-shaping-state "), "9", 1);
	tap_ok(shp_state_restore(st2, bad, n) < 0, "unknown version refused");
	tap_ok(shp_state_restore(st2, "", 0) < 0, "empty blob refused");
	shp_state_free(&st);
	shp_state_free(&st2);
}

int main(void)
{
	test_actions();
	test_ramp();
	test_health();
	test_health_forgotten();
	test_learned_and_cache();
	test_blob();
	return tap_done();
}
