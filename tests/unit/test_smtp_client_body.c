/*
 * test_smtp_client_body: the outbound body as it goes on the wire
 * (smtp_client_body_window in core/outbound/smtp_client_body.c): the
 * pool header field's octets left out, with windows of every size so
 * the range straddles window edges at every offset, and dot-stuffing
 * still right on both sides of the hole.
 */
#include "core/outbound/smtp_client.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

struct test_wire {
	char buf[8192];
	size_t len;
};

static int test_put(void *ctx, const char *p, size_t n)
{
	struct test_wire *w = ctx;

	if (w->len + n > sizeof(w->buf))
		return -1;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* The expected wire form: the range cut out, then stuffed, then the end. */
static size_t test_expect(const char *msg, size_t len, size_t so, size_t sl, char *out)
{
	char cut[8192];
	size_t n = 0, o = 0;
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		if (i >= so && i < so + sl)
			continue;
		cut[n++] = msg[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (bol && cut[i] == '.')
			out[o++] = '.';
		out[o++] = cut[i];
		bol = cut[i] == '\n';
	}
	if (n >= 2 && cut[n - 2] == '\r' && cut[n - 1] == '\n') {
		memcpy(out + o, ".\r\n", 3);
		o += 3;
	} else {
		memcpy(out + o, "\r\n.\r\n", 5);
		o += 5;
	}
	return o;
}

/* Send msg window by window of size win, as cl_body_more does. */
static size_t test_send(const char *msg, size_t len, size_t win, uint64_t so, uint32_t sl,
			struct test_wire *w)
{
	bool bol = true;

	w->len = 0;
	for (uint64_t off = 0; off < len;) {
		uint64_t end = len - off > win ? off + win : len;

		if (smtp_client_body_window(msg, len, off, end, so, sl, &bol, test_put, w) != 0)
			return 0;
		off = end;
	}
	bol = smtp_client_body_ends_crlf(msg, len, so, sl);
	test_put(w, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
	return w->len;
}

/* Every window size from 1 to the message length: the result is the
 * expected wire form each time. */
static void test_all_windows(const char *what, const char *msg, size_t so, size_t sl)
{
	size_t len = strlen(msg), bad = 0;
	char want[8192];
	size_t wl = test_expect(msg, len, so, sl, want);
	struct test_wire w;

	for (size_t win = 1; win <= len; win++) {
		if (test_send(msg, len, win, so, sl, &w) != wl || memcmp(w.buf, want, wl) != 0)
			bad++;
	}
	tap_ok(bad == 0, "%s: every window size 1..%zu (%zu wrong)", what, len, bad);
}

/*
 * Bodies longer than a block (the stuffing scan looks at 64 octets at a
 * time): lines of every length from 0 to 140, some starting with a dot,
 * some ending in a bare LF or CR, so that a dot after an LF falls at
 * every offset of a block, the LF on either side of the block's edge.
 */
static void test_long_bodies(void)
{
	static char msg[3000];
	size_t bad = 0, dots = 0;

	srand(4522);
	for (int t = 0; t < 40; t++) {
		size_t n = 0, so, sl;
		char want[8192];
		size_t wl;
		struct test_wire w;

		while (n < sizeof(msg) - 160) {
			size_t k = (size_t)rand() % 141;

			if (rand() % 3 == 0)
				msg[n++] = '.', dots++;
			memset(msg + n, 'x', k);
			n += k;
			if (rand() % 8 == 0)
				msg[n++] = rand() % 2 ? '\r' : '.';
			else
				msg[n++] = '\r', msg[n++] = '\n';
			if (rand() % 8 == 0)
				msg[n++] = '\n';
		}
		msg[n] = '\0';
		so = t % 2 ? (size_t)rand() % n : 0;
		sl = t % 2 ? (size_t)rand() % (n - so) : 0;
		wl = test_expect(msg, n, so, sl, want);
		for (size_t win = 1; win <= n; win += 1 + (size_t)rand() % 97)
			if (test_send(msg, n, win, so, sl, &w) != wl || memcmp(w.buf, want, wl) != 0)
				bad++;
		if (test_send(msg, n, n, so, sl, &w) != wl || memcmp(w.buf, want, wl) != 0)
			bad++;
	}
	tap_ok(bad == 0 && dots > 400, "40 bodies of 3 KB, %zu dot lines, windows of many sizes "
	       "(%zu wrong)", dots, bad);
}

int main(void)
{
	static const char m1[] =
		"Received: from x\r\n"
		"X-Ringmta-Pool: bulk\r\n"
		"Subject: hi\r\n"
		"\r\n"
		".leading dot\r\n"
		"body\r\n";
	static const char m2[] =
		"Subject: a\r\n"
		"x-ringmta-pool: one\r\n"
		"\tfolded two\r\n"
		".Dot-Header: after the hole\r\n"
		"\r\n"
		"..\r\n";
	static const char m3[] = "X-Ringmta-Pool: last\r\n";
	const size_t s1 = strlen("Received: from x\r\n"), l1 = strlen("X-Ringmta-Pool: bulk\r\n");
	const size_t s2 = strlen("Subject: a\r\n"),
		     l2 = strlen("x-ringmta-pool: one\r\n\tfolded two\r\n");
	struct test_wire w;
	char want[4096];
	size_t wl;

	test_all_windows("no strip range", m1, 0, 0);
	test_all_windows("a header field cut out", m1, s1, l1);
	test_all_windows("a folded field, a dot line right after it", m2, s2, l2);
	test_all_windows("the field at offset 0", m1 + s1, 0, l1);
	test_all_windows("the whole message is the field", m3, 0, strlen(m3));
	wl = test_expect(m1, strlen(m1), s1, l1, want);
	tap_ok(memmem(want, wl, "Pool", 4) == NULL && memmem(want, wl, "\r\n..leading", 11) != NULL,
	       "the reference itself: no pool field, the dot line stuffed");
	/* A range that does not fit the message is ignored, never read past. */
	test_send(m1, strlen(m1), 7, strlen(m1) - 2, 10, &w);
	wl = test_expect(m1, strlen(m1), 0, 0, want);
	tap_ok(w.len == wl && memcmp(w.buf, want, wl) == 0,
	       "a range past the end of the message: nothing cut");
	test_long_bodies();
	return tap_done();
}
