/*
 * test_tls_ticket: the session ticket key ring (tls/tls_ticket.c) on an
 * explicit clock: the first key, rotation after one interval, the old
 * key decrypting (and asking for renewal) until two intervals after its
 * birth, an idle ring that skips a stale key, and a failed random source.
 */
#include "tls/tls_ticket.h"
#include "tests/unit/tap.h"

#include <string.h>

static uint8_t test_next = 1;
static int test_fail;

/* Distinct, predictable bytes; fails when test_fail is set. */
static int test_fill(uint8_t *p, size_t n)
{
	if (test_fail)
		return -1;
	for (size_t i = 0; i < n; i++)
		p[i] = test_next++;
	return 0;
}

static int test_find(const struct tls_ticket_ring *r, const struct tls_ticket_key *k)
{
	struct tls_ticket_key got;
	int rc = tls_ticket_ring_find(r, k->tk_name, &got);

	if (rc != 0 && memcmp(&got, k, sizeof(got)) != 0)
		return -1;	/* found under its name, but another key */
	return rc;
}

int main(void)
{
	struct tls_ticket_ring r = { .tr_interval = 100 };
	struct tls_ticket_key a, b, c;
	uint8_t unknown[TLS_TICKET_NAME_LEN] = { 0 };

	tap_ok(tls_ticket_ring_at(&r, 1000, test_fill) == 0 && r.tr_cur.tk_set &&
	       !r.tr_prev.tk_set && r.tr_cur.tk_born == 1000, "the first use makes a key");
	a = r.tr_cur;
	tap_ok(tls_ticket_ring_at(&r, 1099, test_fill) == 0 &&
	       memcmp(&r.tr_cur, &a, sizeof(a)) == 0, "within its interval the key stays");
	tap_ok(test_find(&r, &a) == 1, "its tickets decrypt as current");
	tap_ok(tls_ticket_ring_find(&r, unknown, &c) == 0, "an unknown name finds nothing");

	tap_ok(tls_ticket_ring_at(&r, 1100, test_fill) == 0 && r.tr_cur.tk_born == 1100 &&
	       memcmp(r.tr_cur.tk_name, a.tk_name, TLS_TICKET_NAME_LEN) != 0,
	       "an interval later a new key encrypts");
	b = r.tr_cur;
	tap_ok(test_find(&r, &b) == 1 && test_find(&r, &a) == 2,
	       "the old key still decrypts, and asks for the ticket to be renewed");

	tap_ok(tls_ticket_ring_at(&r, 1200, test_fill) == 0, "the next rotation");
	c = r.tr_cur;
	tap_ok(test_find(&r, &c) == 1 && test_find(&r, &b) == 2 && test_find(&r, &a) == 0,
	       "then the key before the old one decrypts nothing");

	/* Idle for more than two intervals: c made no ticket for an interval
	 * past its own, so nothing under it is young enough to keep. */
	tap_ok(tls_ticket_ring_at(&r, 1500, test_fill) == 0 && !r.tr_prev.tk_set &&
	       test_find(&r, &c) == 0 && test_find(&r, &b) == 0,
	       "after a long idle time only the new key is kept");

	/* Sparse use: the key born at 1500 rotates late, at 1690, and still
	 * decrypts until 1700, two intervals after its birth, not until the
	 * next rotation (as BoringSSL's own keys). */
	c = r.tr_cur;
	tap_ok(tls_ticket_ring_at(&r, 1690, test_fill) == 0 && test_find(&r, &c) == 2,
	       "a key rotated late still decrypts");
	tap_ok(tls_ticket_ring_at(&r, 1699, test_fill) == 0 && test_find(&r, &c) == 2 &&
	       tls_ticket_ring_at(&r, 1700, test_fill) == 0 && test_find(&r, &c) == 0,
	       "until two intervals after its birth");

	test_fail = 1;
	c = r.tr_cur;
	tap_ok(tls_ticket_ring_at(&r, 1800, test_fill) == -1 &&
	       memcmp(&r.tr_cur, &c, sizeof(c)) == 0, "no random bytes: the key stays");
	test_fail = 0;
	return tap_done();
}
