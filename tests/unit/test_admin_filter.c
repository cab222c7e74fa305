/*
 * test_admin_filter: the admin API's message filter: every name's values,
 * good and bad, durations, states, and matching against encoded records
 * (sender forms, recipient and domain case, pending-only domains, class,
 * ages, held and in-flight states); and the header splitter of
 * admin_msg.c (folding, stray lines, non-UTF-8 octets).
 */
#include "core/admin/admin_filter.h"
#include "core/admin/admin_msg.h"
#include "core/bounce/bclass.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1800000000000000ull		/* unix us */

static int test_set(struct admin_filter *f, const char *n, const char *v)
{
	char err[256];

	return admin_filter_set(f, n, v, err, sizeof(err));
}

static void test_parse(void)
{
	static const struct { const char *n, *v; } bad[] = {
		{ "domain", "" }, { "domain", "a@b" }, { "domain", "a b" }, { "sender", "<a@b>" },
		{ "recipient", "a\"b" }, { "min_age", "" }, { "min_age", "-1" }, { "min_age", "5x" },
		{ "min_age", "5mm" }, { "max_age", "99999999999999999999" }, { "max_age", "4000d" },
		{ "state", "" }, { "state", "ready," }, { "state", "nope" }, { "state", "Ready" },
		{ "class", "none" }, { "class", "" }, { "limit", "0" }, { "limit", "10001" },
		{ "limit", "-1" }, { "limit", "1x" }, { "cursor", "0000000000000000" },
		{ "cursor", "xyz" }, { "recipient", "\x01" },
	};
	struct admin_filter f;
	uint64_t s = 0;
	char err[256], longv[400];

	admin_filter_init(&f);
	tap_ok(f.af_class == -1 && f.af_limit == ADMIN_FILTER_LIMIT_DEFAULT && !f.af_selects,
	       "defaults");
	tap_ok(test_set(&f, "limit", "5") == 0 && test_set(&f, "cursor", "00000000000000ff") == 0 &&
	       f.af_limit == 5 && f.af_cursor == 0xff && !f.af_selects,
	       "limit and cursor do not select");
	tap_ok(test_set(&f, "colour", "red") == 1, "unknown name: 1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		admin_filter_init(&f);
		err[0] = '\0';
		tap_ok(admin_filter_set(&f, bad[i].n, bad[i].v, err, sizeof(err)) == -1 &&
		       strstr(err, bad[i].n) != NULL, "bad %s=%s: %s", bad[i].n, bad[i].v, err);
	}
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	tap_ok(test_set(&f, "recipient", longv) == -1 && test_set(&f, "sender", longv) == -1,
	       "over-long addresses refused");
	tap_ok(admin_filter_duration("90", &s) == 0 && s == 90 &&
	       admin_filter_duration("5m", &s) == 0 && s == 300 &&
	       admin_filter_duration("2h", &s) == 0 && s == 7200 &&
	       admin_filter_duration("1d", &s) == 0 && s == 86400 &&
	       admin_filter_duration("1w", &s) == 0 && s == 604800 &&
	       admin_filter_duration("0s", &s) == 0 && s == 0, "durations");
	admin_filter_init(&f);
	tap_ok(test_set(&f, "state", "ready,held") == 0 &&
	       f.af_states == (ADMIN_ST_READY | ADMIN_ST_HELD) && f.af_selects, "states");
	tap_ok(test_set(&f, "class", "mailbox-full") == 0 && f.af_class == BCLASS_MAILBOX_FULL,
	       "class by name");
	tap_ok(test_set(&f, "sender", "<>") == 0 && strcmp(f.af_sender, "<>") == 0, "null sender");
}

struct test_msg {
	unsigned char buf[4096];
	struct qrecord r;
};

static void test_msg(struct test_msg *m, const char *sender, uint64_t age_s, uint32_t flags,
		     uint64_t next, const struct qrcpt *rc, unsigned n)
{
	struct qrecord r = {
		.arrival = NOW - age_s * 1000000u, .next_attempt = next, .size = 100,
		.flags = flags, .sender = sender, .sender_len = (uint16_t)strlen(sender),
		.client = "127.0.0.1", .client_len = 9, .helo = "h", .helo_len = 1,
		.nrcpt = n, .rcpts = rc,
	};

	qrecord_encode(&r, m->buf);
	if (qrecord_decode(m->buf, qrecord_encoded_size(&r), &m->r) != 0)
		abort();
}

static bool test_match(const char *n, const char *v, const struct qrecord *r, bool inflight)
{
	struct admin_filter f;

	admin_filter_init(&f);
	if (n != NULL && test_set(&f, n, v) != 0)
		abort();
	return admin_filter_match(&f, 1, r, NOW, inflight);
}

static void test_matching(void)
{
	struct qrcpt rc[3] = {
		{ .state = QRCPT_PENDING, .addr = "Ann@Dest.Example", .addr_len = 16,
		  .bclass = BCLASS_MAILBOX_FULL },
		{ .state = QRCPT_DELIVERED, .addr = "bob@gone.example", .addr_len = 16 },
		{ .state = QRCPT_PENDING, .addr = "cy@other.example", .addr_len = 16 },
	};
	struct test_msg m, held, nul;

	test_msg(&m, "From@Sender.Example", 600, 0, NOW + 60000000u, rc, 3);
	test_msg(&held, "x@y.example", 10, QRECORD_F_HELD, QRECORD_HELD_NEXT, rc, 1);
	test_msg(&nul, "", 10, 0, NOW, rc + 2, 1);
	tap_ok(test_match(NULL, NULL, &m.r, false), "empty filter matches");
	tap_ok(test_match("domain", "dest.example", &m.r, false) &&
	       test_match("domain", "OTHER.example", &m.r, false) &&
	       !test_match("domain", "gone.example", &m.r, false) &&
	       !test_match("domain", "est.example", &m.r, false),
	       "domain: pending recipients, any case, whole domain");
	tap_ok(test_match("recipient", "ann@dest.example", &m.r, false) &&
	       test_match("recipient", "bob@gone.example", &m.r, false) &&
	       !test_match("recipient", "ann@dest.exampl", &m.r, false), "recipient: any state");
	tap_ok(test_match("sender", "from@sender.example", &m.r, false) &&
	       test_match("sender", "@SENDER.example", &m.r, false) &&
	       !test_match("sender", "@ender.example", &m.r, false) &&
	       !test_match("sender", "<>", &m.r, false) && test_match("sender", "<>", &nul.r, false) &&
	       !test_match("sender", "@y.example", &nul.r, false), "sender forms");
	tap_ok(test_match("min_age", "5m", &m.r, false) && !test_match("min_age", "11m", &m.r, false) &&
	       test_match("max_age", "10m", &m.r, false) && !test_match("max_age", "9m", &m.r, false),
	       "ages");
	tap_ok(test_match("class", "mailbox-full", &m.r, false) &&
	       !test_match("class", "policy", &m.r, false), "class");
	tap_ok(test_match("state", "scheduled", &m.r, false) && !test_match("state", "ready", &m.r, false) &&
	       test_match("state", "ready", &nul.r, false) && test_match("state", "inflight", &m.r, true) &&
	       !test_match("state", "scheduled", &m.r, true) && test_match("state", "held", &held.r, false) &&
	       !test_match("state", "ready,scheduled", &held.r, false) &&
	       test_match("state", "held", &held.r, true), "states");
	tap_ok(admin_filter_state(&held.r, NOW, true) == (ADMIN_ST_HELD | ADMIN_ST_INFLIGHT),
	       "held and in flight");
}

static void test_headers(void)
{
	static const char msg[] =
		"Received: from a\r\n\tby b\r\n  with c\r\nSubject: hi\r\n stray\r\n"
		"not a field\r\nX-Bin: \xff\xfe ok\r\n:empty name\r\nEmpty:\r\n\r\nbody: no\r\n";
	json_t *h = admin_msg_headers(msg, sizeof(msg) - 1), *e;
	const char *names[] = { "Received", "Subject", "X-Bin", "Empty" };
	const char *values[] = { "from a\tby b  with c", "hi stray", "\xef\xbf\xbd\xef\xbf\xbd ok", "" };
	bool ok = json_array_size(h) == 4;

	for (size_t i = 0; ok && i < 4; i++) {
		e = json_array_get(h, i);
		ok = strcmp(json_string_value(json_object_get(e, "name")), names[i]) == 0 &&
		     strcmp(json_string_value(json_object_get(e, "value")), values[i]) == 0;
		if (!ok)
			printf("# %zu: %s: %s\n", i, json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "value")));
	}
	tap_ok(ok, "header fields: folding joined, junk skipped, bad octets replaced");
	json_decref(h);
	h = admin_msg_headers("", 0);
	tap_ok(json_array_size(h) == 0, "no header");
	json_decref(h);
	h = admin_msg_headers("A: b", 4);
	tap_ok(json_array_size(h) == 1, "no line end");
	json_decref(h);
	e = admin_msg_text("a\0b", 3);
	tap_ok(json_string_length(e) == 5, "NUL replaced");
	json_decref(e);
}

int main(void)
{
	test_parse();
	test_matching();
	test_headers();
	return tap_done();
}
