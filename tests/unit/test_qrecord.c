/*
 * Unit tests for queue/qrecord.c and the queue ids: records of every
 * version (v3, v4, v5) encoded and decoded, damage refused, ids printed
 * and parsed. Moved out of test_queue.c, which tests the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qrecord.h"
#include "queue/queue.h"
#include "tests/unit/qrecord_v3.h"
#include "tests/unit/tap.h"

static void test_record(void)
{
	struct qrcpt rcpts[2] = {
		{ QRCPT_PENDING, 0, 111, "a@example.org", 13, NULL, 0, 0, 0, NULL, 0 },
		{ QRCPT_FAILED, 3, 222, "b@example.net", 13, "550 5.1.1 no", 12, 0, 0, NULL, 0 },
	};
	struct qrecord r = { .arrival = 5, .next_attempt = 6, .size = 7, .flags = 1,
			     .sender = "s@x.org", .sender_len = 7, .client = "127.0.0.1",
			     .client_len = 9, .helo = "h", .helo_len = 1, .nrcpt = 2,
			     .rcpts = rcpts };
	size_t n = qrecord_encoded_size(&r), off = 0;
	unsigned char *buf = malloc(n);
	struct qrecord d;
	struct qrcpt rc;
	int ok;

	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == 0, "record decodes");
	tap_ok(d.arrival == 5 && d.next_attempt == 6 && d.size == 7 && d.flags == 1 &&
	       d.nrcpt == 2, "record fixed fields round-trip");
	tap_ok(d.sender_len == 7 && memcmp(d.sender, "s@x.org", 7) == 0 &&
	       d.client_len == 9 && d.helo_len == 1, "record strings round-trip");
	ok = qrecord_rcpt_next(&d, &off, &rc) && rc.state == QRCPT_PENDING &&
	     rc.next_attempt == 111 && rc.addr_len == 13 &&
	     memcmp(rc.addr, "a@example.org", 13) == 0;
	ok = ok && qrecord_rcpt_next(&d, &off, &rc) && rc.state == QRCPT_FAILED &&
	     rc.attempts == 3 && rc.next_attempt == 222 && rc.reply_len == 12 &&
	     memcmp(rc.reply, "550 5.1.1 no", 12) == 0;
	ok = ok && !qrecord_rcpt_next(&d, &off, &rc);
	tap_ok(ok, "recipients round-trip with their state");
	for (size_t cut = 0; cut < n; cut++)
		if (qrecord_decode(buf, cut, &d) == 0) {
			tap_ok(0, "truncated record at %zu rejected", cut);
			goto out;
		}
	tap_ok(1, "every truncation of a record is rejected");
	buf[0] ^= 0xff;
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "bad magic rejected");
	buf[0] ^= 0xff;
	buf[32] = 3;		/* nrcpt 3 with data for 2 */
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "recipient count mismatch rejected");
out:
	free(buf);
}

/* Fields since v4 (written as v5): the class per recipient, the pool,
 * the byte range to strip. */
static void test_record_v4(void)
{
	struct qrcpt rcpts[2] = {
		{ QRCPT_PENDING, 2, 111, "a@example.org", 13, "421 4.7.28 slow", 15, 5, 0, NULL, 0 },
		{ QRCPT_FAILED, 3, 222, "b@example.net", 13, "550 5.1.1 no", 12, 1, 0, NULL, 0 },
	};
	struct qrecord r = { .arrival = 5, .next_attempt = 6, .size = 700, .flags = 1,
			     .sender = "s@x.org", .sender_len = 7, .client = "127.0.0.1",
			     .client_len = 9, .helo = "h", .helo_len = 1,
			     .pool = "bulk", .pool_len = 4, .strip_off = 40, .strip_len = 25,
			     .nrcpt = 2, .rcpts = rcpts };
	size_t n = qrecord_encoded_size(&r), off = 0, cut;
	unsigned char *buf = malloc(n);
	struct qrecord d;
	struct qrcpt rc;
	int ok;

	qrecord_encode(&r, buf);
	tap_ok(memcmp(buf, "RMQ5", 4) == 0, "v4: encode writes RMQ5");
	tap_ok(qrecord_decode(buf, n, &d) == 0 && d.version == 5, "v4: decodes as version 5");
	tap_ok(d.dsn_ret == 0 && d.envid_len == 0, "v5: no DSN parameters given, none read");
	tap_ok(d.pool_len == 4 && memcmp(d.pool, "bulk", 4) == 0 && d.strip_off == 40 &&
	       d.strip_len == 25 && d.size == 700 && d.nrcpt == 2,
	       "v4: pool and strip range round-trip");
	ok = qrecord_rcpt_next(&d, &off, &rc) && rc.bclass == 5 && rc.attempts == 2 &&
	     rc.reply_len == 15 && memcmp(rc.addr, "a@example.org", 13) == 0;
	ok = ok && qrecord_rcpt_next(&d, &off, &rc) && rc.bclass == 1 &&
	     rc.state == QRCPT_FAILED && rc.attempts == 3;
	tap_ok(ok && !qrecord_rcpt_next(&d, &off, &rc), "v4: recipients keep their class");
	for (cut = 0; cut < n; cut++)
		if (qrecord_decode(buf, cut, &d) == 0)
			break;
	tap_ok(cut == n, "v4: every truncation is rejected");
	free(buf);
	/* A strip range outside the message is damage, not an instruction. */
	r.strip_off = 690;
	r.strip_len = 11;
	buf = malloc(n);
	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "v4: strip range past the end rejected");
	r.strip_off = UINT64_MAX;
	r.strip_len = 2;
	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "v4: strip range that wraps rejected");
	r.strip_len = 0;
	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == 0 && d.strip_len == 0,
	       "v4: strip_len 0 means nothing to strip, whatever the offset");
	free(buf);
}

static void test_record_v3(void)
{
	unsigned char buf[256];
	size_t n = v3_record(buf, 77), off = 0;
	struct qrecord d;
	struct qrcpt rc;
	int ok;

	tap_ok(qrecord_decode(buf, n, &d) == 0 && d.version == 3,
	       "v3: a record of the previous release decodes");
	tap_ok(d.arrival == 1000 && d.next_attempt == 77 && d.nrcpt == 2 &&
	       d.sender_len == 15 && memcmp(d.sender, "old@example.org", 15) == 0 &&
	       d.helo_len == 15, "v3: its fields are read");
	tap_ok(d.pool != NULL && d.pool_len == 0 && d.strip_len == 0 && d.strip_off == 0,
	       "v3: default pool, nothing to strip");
	ok = qrecord_rcpt_next(&d, &off, &rc) && rc.state == QRCPT_PENDING &&
	     rc.attempts == 4 && rc.bclass == 0 && rc.reply_len == 15;
	ok = ok && qrecord_rcpt_next(&d, &off, &rc) && rc.state == QRCPT_DELIVERED &&
	     rc.bclass == 0 && memcmp(rc.addr, "r2@example.com", 14) == 0;
	tap_ok(ok && !qrecord_rcpt_next(&d, &off, &rc),
	       "v3: recipients read, the pad byte is not a class");
	for (size_t cut = 0; cut < n; cut++)
		if (qrecord_decode(buf, cut, &d) == 0) {
			tap_ok(0, "v3: truncation at %zu rejected", cut);
			return;
		}
	tap_ok(1, "v3: every truncation is rejected");
}

/* An RMQ4 record as the previous release wrote it: pool, strip range,
 * a class per recipient, no DSN parameters. */
static size_t v4_record(unsigned char *buf)
{
	unsigned char *p = buf;

	p = v3_put(p, 0x34514d52u, 4);		/* "RMQ4" */
	p = v3_put(p, 1000, 8);			/* arrival */
	p = v3_put(p, 88, 8);			/* next_attempt */
	p = v3_put(p, 500, 8);			/* size */
	p = v3_put(p, 1, 4);			/* flags */
	p = v3_put(p, 2, 4);			/* nrcpt */
	p = v3_str(p, "v4@example.org");
	p = v3_str(p, "192.0.2.4");
	p = v3_str(p, "v4.example.org");
	p = v3_str(p, "bulk");
	p = v3_put(p, 40, 8);			/* strip_off */
	p = v3_put(p, 25, 4);			/* strip_len */
	*p++ = QRCPT_PENDING;
	*p++ = 5;				/* class */
	p = v3_put(p, 2, 2);
	p = v3_put(p, 88, 8);
	p = v3_str(p, "r1@example.com");
	p = v3_str(p, "421 4.7.28 slow");
	*p++ = QRCPT_FAILED;
	*p++ = 1;
	p = v3_put(p, 3, 2);
	p = v3_put(p, 0, 8);
	p = v3_str(p, "r2@example.com");
	p = v3_str(p, "550 5.1.1 no");
	return (size_t)(p - buf);
}

static void test_record_v4_read(void)
{
	unsigned char buf[256];
	size_t n = v4_record(buf), off = 0, cut;
	struct qrecord d;
	struct qrcpt rc;
	int ok;

	tap_ok(qrecord_decode(buf, n, &d) == 0 && d.version == 4,
	       "v4: a record of the previous release decodes");
	tap_ok(d.pool_len == 4 && memcmp(d.pool, "bulk", 4) == 0 && d.strip_off == 40 &&
	       d.strip_len == 25 && d.size == 500 && d.next_attempt == 88,
	       "v4: its fields are read");
	tap_ok(d.dsn_ret == 0 && d.envid != NULL && d.envid_len == 0,
	       "v4: no DSN parameters (RET, ENVID)");
	ok = qrecord_rcpt_next(&d, &off, &rc) && rc.bclass == 5 && rc.attempts == 2 &&
	     rc.notify == 0 && rc.orcpt_len == 0 && memcmp(rc.addr, "r1@example.com", 14) == 0;
	ok = ok && qrecord_rcpt_next(&d, &off, &rc) && rc.state == QRCPT_FAILED &&
	     rc.bclass == 1 && rc.notify == 0 && rc.orcpt_len == 0 && rc.reply_len == 12;
	tap_ok(ok && !qrecord_rcpt_next(&d, &off, &rc),
	       "v4: recipients read, without NOTIFY or ORCPT");
	for (cut = 0; cut < n; cut++)
		if (qrecord_decode(buf, cut, &d) == 0)
			break;
	tap_ok(cut == n, "v4: every truncation is rejected");
}

/* v5: the DSN parameters, RET and ENVID per message, NOTIFY and ORCPT
 * per recipient. */
static void test_record_v5(void)
{
	struct qrcpt rcpts[2] = {
		{ .state = QRCPT_PENDING, .addr = "a@example.org", .addr_len = 13,
		  .notify = QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE,
		  .orcpt = "rfc822;A+2Bx@example.org", .orcpt_len = 24 },
		{ .state = QRCPT_PENDING, .addr = "b@example.net", .addr_len = 13,
		  .notify = QRCPT_NOTIFY_NEVER },
	};
	struct qrecord r = { .arrival = 5, .next_attempt = 6, .size = 70,
			     .sender = "s@x.org", .sender_len = 7, .client = "127.0.0.1",
			     .client_len = 9, .helo = "h", .helo_len = 1, .nrcpt = 2,
			     .rcpts = rcpts, .dsn_ret = QRECORD_RET_HDRS,
			     .envid = "QQ+2B314", .envid_len = 8 };
	size_t n = qrecord_encoded_size(&r), off = 0, cut;
	unsigned char *buf = malloc(n);
	struct qrecord d;
	struct qrcpt rc;
	int ok;

	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == 0 && d.version == 5 &&
	       d.dsn_ret == QRECORD_RET_HDRS && d.envid_len == 8 &&
	       memcmp(d.envid, "QQ+2B314", 8) == 0, "v5: RET and ENVID round-trip");
	ok = qrecord_rcpt_next(&d, &off, &rc) &&
	     rc.notify == (QRCPT_NOTIFY_SUCCESS | QRCPT_NOTIFY_FAILURE) && rc.orcpt_len == 24 &&
	     memcmp(rc.orcpt, "rfc822;A+2Bx@example.org", 24) == 0 &&
	     memcmp(rc.addr, "a@example.org", 13) == 0;
	ok = ok && qrecord_rcpt_next(&d, &off, &rc) && rc.notify == QRCPT_NOTIFY_NEVER &&
	     rc.orcpt_len == 0 && memcmp(rc.addr, "b@example.net", 13) == 0;
	tap_ok(ok && !qrecord_rcpt_next(&d, &off, &rc), "v5: NOTIFY and ORCPT round-trip");
	for (cut = 0; cut < n; cut++)
		if (qrecord_decode(buf, cut, &d) == 0)
			break;
	tap_ok(cut == n, "v5: every truncation is rejected");
	r.dsn_ret = 3;
	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "v5: an unknown RET value is damage");
	r.dsn_ret = QRECORD_RET_FULL;
	rcpts[1].notify = 0x40;
	qrecord_encode(&r, buf);
	tap_ok(qrecord_decode(buf, n, &d) == -EBADMSG, "v5: unknown NOTIFY bits are damage");
	free(buf);
}

static void test_ids(void)
{
	char s[17];
	uint64_t id;

	queue_id_str(0x0123456789abcdefULL, s);
	tap_ok(strcmp(s, "0123456789abcdef") == 0, "id formats as 16 hex digits");
	tap_ok(queue_id_parse(s, &id) == 0 && id == 0x0123456789abcdefULL, "id parses back");
	tap_ok(queue_id_parse("xyz", &id) < 0 && queue_id_parse("", &id) < 0 &&
	       queue_id_parse("00000000000000000", &id) < 0, "bad ids rejected");
}

int main(void)
{
	test_record();
	test_record_v4();
	test_record_v3();
	test_record_v4_read();
	test_record_v5();
	test_ids();
	return tap_done();
}
