/*
 * test_events: the event records (core/events/event_render.c) and their
 * store (queue/queue_events.c): JSON of each record, the Message-ID read
 * across body pieces, ids put in front when sent, the type filter; and
 * the store numbering records in commit order, with a message or alone,
 * trimming, and ids that continue after everything was trimmed and the
 * queue reopened.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/events/events_internal.h"
#include "queue/queue.h"
#include "tests/unit/tap.h"

/* The emit functions only ask whether events are on; they never look
 * inside struct events, so any non-NULL pointer turns them on here. */
static char test_on;
#define TEST_EV ((struct events *)&test_on)

static json_t *test_load(const struct queue_event *e)
{
	return e != NULL ? json_loadb(e->qe_data, e->qe_len, 0, NULL) : NULL;
}

static const char *test_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "(null)";
}

static void test_msgid(void)
{
	static const char *pieces[] = { "Received: from x\r\n\tby y\r\nMESSAGE-", "ID:  <a@",
					"b>\r\n (c)\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n" };
	struct iovec iov[3];
	char out[64];

	for (int i = 0; i < 3; i++) {
		iov[i].iov_base = (void *)pieces[i];
		iov[i].iov_len = strlen(pieces[i]);
	}
	event_msgid(iov, 3, out, sizeof(out));
	tap_ok(strcmp(out, "<a@b> (c)") == 0, "Message-ID across pieces, folded: '%s'", out);
	iov[0].iov_base = "Subject: x\r\nX-Message-ID: <no>\r\n\r\nMessage-ID: <body>\r\n";
	iov[0].iov_len = strlen(iov[0].iov_base);
	event_msgid(iov, 1, out, sizeof(out));
	tap_ok(out[0] == '\0', "none in the header: the body's does not count ('%s')", out);
	iov[0].iov_base = "Message-ID: <0123456789abcdefghijklmnopqrstuvwxyz@example.org>\r\n\r\n";
	iov[0].iov_len = strlen(iov[0].iov_base);
	event_msgid(iov, 1, out, 16);
	tap_ok(strlen(out) == 15, "cut to the buffer");
}

static void test_reception(void)
{
	struct qrcpt rc[2] = { { .addr = "a@example.com", .addr_len = 13 },
			       { .addr = "b\xff@example.com", .addr_len = 14 } };
	struct iovec iov[2] = { { "Received: x\r\n", 13 },
				{ "Message-ID: <m@x>\r\n\r\nbody\r\n", 27 } };
	struct event_origin o = { "192.0.2.1", "user1", "127.0.0.1:25", NULL };
	struct queue_msg m;
	json_t *j;

	memset(&m, 0, sizeof(m));
	m.qm_id = 0x0123456789abcdefULL;
	m.qm_rec.sender = "s@example.org";
	m.qm_rec.sender_len = 13;
	m.qm_rec.nrcpt = 2;
	m.qm_rec.rcpts = rc;
	m.qm_iov = iov;
	m.qm_iovcnt = 2;
	tap_ok(events_reception(NULL, &m, &o) == 0 && m.qm_events == NULL,
	       "events off: nothing rendered");
	tap_ok(events_reception(TEST_EV, &m, &o) == 0 && m.qm_events != NULL, "reception rendered");
	j = test_load(m.qm_events);
	tap_ok(j != NULL && strncmp(m.qm_events->qe_data, "{\"type\":\"reception\",\"time\":\"",
				    28) == 0, "type then time first: %.40s", m.qm_events->qe_data);
	tap_ok(strcmp(test_str(j, "queue_id"), "0123456789abcdef") == 0 &&
	       strcmp(test_str(j, "sender"), "s@example.org") == 0 &&
	       strcmp(test_str(j, "client"), "192.0.2.1") == 0 &&
	       strcmp(test_str(j, "identity"), "user1") == 0 &&
	       strcmp(test_str(j, "listener"), "127.0.0.1:25") == 0 &&
	       strcmp(test_str(j, "message_id"), "<m@x>") == 0 &&
	       json_integer_value(json_object_get(j, "size")) == 40, "reception members");
	tap_ok(json_array_size(json_object_get(j, "recipients")) == 2 &&
	       strcmp(json_string_value(json_array_get(json_object_get(j, "recipients"), 1)),
		      "b\xef\xbf\xbd@example.com") == 0, "a non-UTF-8 address is made valid");
	tap_ok(event_record_type(m.qm_events->qe_data, m.qm_events->qe_len) == EVENT_RECEPTION,
	       "the type read back from the stored bytes");
	json_decref(j);
	queue_events_free(&m.qm_events);
}

static void test_rcpt(void)
{
	struct event_rcpt r = {
		.er_queue_id = 1, .er_sender = "s@x", .er_rcpt = "r@y", .er_site = "y",
		.er_remote = "mx.y[192.0.2.9]:25", .er_source = "ip1", .er_tls = "TLSv1.3 X",
		.er_reply = "451 4.7.1 later", .er_ecode = "4.7.1", .er_bclass = "policy",
		.er_duration_us = 1500000, .er_attempt = 2, .er_outcome = EVENT_DEFERRED,
		.er_next_us = 1796476239123456ull,
	};
	struct queue_event *list = NULL;
	json_t *a, *d;

	tap_ok(events_rcpt(TEST_EV, &list, &r) == 0 && list != NULL && list->qe_next != NULL,
	       "attempt and outcome");
	a = test_load(list);
	d = test_load(list->qe_next);
	tap_ok(strcmp(test_str(a, "type"), "attempt") == 0 &&
	       strcmp(test_str(a, "mx"), "mx.y[192.0.2.9]:25") == 0 &&
	       strcmp(test_str(a, "source"), "ip1") == 0 &&
	       strcmp(test_str(a, "tls"), "TLSv1.3 X") == 0 &&
	       strcmp(test_str(a, "status"), "deferred") == 0 &&
	       json_integer_value(json_object_get(a, "duration_ms")) == 1500 &&
	       json_integer_value(json_object_get(a, "attempt")) == 2, "attempt members");
	tap_ok(strcmp(test_str(d, "type"), "deferred") == 0 &&
	       strcmp(test_str(d, "next_retry"), "2026-12-05T13:10:39.123Z") == 0,
	       "deferred with next_retry as RFC 3339: %s", test_str(d, "next_retry"));
	json_decref(a);
	json_decref(d);
	queue_events_free(&list);
	r.er_no_attempt = true;
	tap_ok(events_rcpt(TEST_EV, &list, &r) == 0 && list != NULL && list->qe_next == NULL,
	       "no attempt made: the outcome alone");
	queue_events_free(&list);
}

static void test_helpers(void)
{
	static const char rec[] = "{\"type\":\"admin\",\"time\":\"t\"}";
	char err[200];
	uint32_t mask;
	size_t n;
	char *s = event_with_id(42, rec, sizeof(rec) - 1, &n);

	tap_ok(s != NULL && strcmp(s, "{\"id\":\"42\",\"type\":\"admin\",\"time\":\"t\"}") == 0 &&
	       n == strlen(s), "the id goes first: %s", s ? s : "");
	free(s);
	s = event_with_id(7, "{}", 2, &n);
	tap_ok(s != NULL && strcmp(s, "{\"id\":\"7\"}") == 0, "an empty object");
	free(s);
	tap_ok(event_type_mask("reception, bounced", &mask, err, sizeof(err)) == 0 &&
	       mask == ((1u << EVENT_RECEPTION) | (1u << EVENT_BOUNCED)), "a type list");
	tap_ok(event_type_mask("", &mask, err, sizeof(err)) == 0 &&
	       mask == (1u << EVENT_NTYPES) - 1, "empty: every type");
	tap_ok(event_type_mask("reception,bogus", &mask, err, sizeof(err)) < 0 &&
	       strstr(err, "bogus") != NULL, "an unknown type is named: %s", err);
	tap_ok(event_record_type("{\"id\":1}", 8) < 0, "no type first: unknown");
}

/* The store. */
struct test_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

struct test_update {
	struct queue_update tu_u;	/* first: qu_done gets its address */
	struct test_wait *tu_wait;
};

static void test_update_done(struct queue_update *u)
{
	struct test_wait *w = ((struct test_update *)u)->tu_wait;

	pthread_mutex_lock(&w->lock);
	w->done++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Store n admin records as one events-only update; wait for the commit. */
static void test_store(struct queue *q, int n)
{
	struct test_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	struct test_update tu;
	struct queue_event *list = NULL;

	for (int i = 0; i < n; i++) {
		json_t *o = event_new(EVENT_ADMIN);

		json_object_set_new(o, "n", json_integer(i));
		event_append(&list, o);
	}
	memset(&tu, 0, sizeof(tu));
	tu.tu_u.qu_events = list;
	tu.tu_u.qu_done = test_update_done;
	tu.tu_wait = &w;
	queue_submit_update(q, &tu.tu_u);
	pthread_mutex_lock(&w.lock);
	while (w.done == 0)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	queue_events_free(&list);
}

struct test_read {
	uint64_t seqs[64];
	unsigned n;
};

static int test_read_one(void *ctx, uint64_t seq, const char *data, size_t len)
{
	struct test_read *r = ctx;

	if (r->n < 64 && event_record_type(data, len) == EVENT_ADMIN)
		r->seqs[r->n++] = seq;
	return 0;
}

static void test_queue_store(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512], err[256], cmd[600];
	struct test_read r = { { 0 }, 0 };
	struct queue *q;
	uint64_t n, count, first;

	snprintf(dir, sizeof(dir), "%s/test_events.%d", tmp ? tmp : "/tmp", (int)getpid());
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "queue opens");
	test_store(q, 3);
	test_store(q, 2);
	tap_ok(queue_events_last(q) == 5, "five records numbered 1..5");
	tap_ok(queue_events_read(q, 2, 10, test_read_one, &r) == 0 && r.n == 3 &&
	       r.seqs[0] == 3 && r.seqs[2] == 5, "read after 2: 3, 4, 5");
	r.n = 0;
	tap_ok(queue_events_read(q, 0, 2, test_read_one, &r) == 0 && r.n == 2, "at most max");
	tap_ok(queue_events_trim(q, 3, &n) == 0 && n == 3, "trim up to 3");
	tap_ok(queue_events_stat(q, &count, &first) == 0 && count == 2 && first == 4,
	       "two left from 4");
	tap_ok(queue_events_trim(q, 5, &n) == 0 && n == 2 &&
	       queue_events_stat(q, &count, &first) == 0 && count == 0, "all trimmed");
	queue_close(&q);
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "queue opens again");
	tap_ok(queue_events_last(q) == 5, "the numbering continues after a reopen of an empty"
	       " store: last %llu", (unsigned long long)queue_events_last(q));
	test_store(q, 1);
	r.n = 0;
	tap_ok(queue_events_read(q, 0, 10, test_read_one, &r) == 0 && r.n == 1 &&
	       r.seqs[0] == 6, "the next record is 6, never an id given before");
	queue_close(&q);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_ok(0, "cleanup");
}

/* The whole path for an admin action: event_admin() -> the committer ->
 * the event log sink's thread -> a JSON line in the file. */
static void test_admin_to_log(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512], path[600], err[256], line[1024] = "", cmd[1300];
	struct config cfg;
	struct queue *q;
	struct events *ev = NULL;
	FILE *f;
	json_t *j;

	snprintf(dir, sizeof(dir), "%s/test_events_log.%d", tmp ? tmp : "/tmp", (int)getpid());
	snprintf(path, sizeof(path), "%s.log", dir);
	config_defaults(&cfg);
	tap_ok(config_set(&cfg, "queue_dir", dir, err, sizeof(err)) == 0 &&
	       config_set(&cfg, "event_log", path, err, sizeof(err)) == 0 &&
	       config_set(&cfg, "event_log_format", "json", err, sizeof(err)) == 0, "settings");
	tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
	       "queue opens");
	tap_ok(events_start(&ev, &cfg, q, err, sizeof(err)) == 0 && ev != NULL, "events start");
	event_admin(ev, "queue.delete", "{\"queue_id\":\"0123456789abcdef\"}", NULL);
	event_admin(ev, "note", "plain text", "{\"ids\":[\"0123456789abcdef\"]}");
	for (int i = 0; i < 500; i++) {	/* up to 5 s */
		f = fopen(path, "r");
		if (f != NULL) {
			int n = 0;

			while (fgets(line, sizeof(line), f) != NULL)
				n++;
			fclose(f);
			if (n == 2)
				break;
		}
		usleep(10000);
	}
	line[strcspn(line, "\n")] = '\0';
	j = json_loads(line, 0, NULL);
	tap_ok(j != NULL && strcmp(test_str(j, "id"), "2") == 0 &&
	       strcmp(test_str(j, "type"), "admin") == 0 &&
	       strcmp(test_str(j, "detail"), "plain text") == 0, "second admin line: %s", line);
	tap_ok(j != NULL && json_is_object(json_object_get(j, "result")) &&
	       json_array_size(json_object_get(json_object_get(j, "result"), "ids")) == 1,
	       "the admin record carries the action's result");
	json_decref(j);
	events_stop(&ev);
	queue_close(&q);
	config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, path);
	if (system(cmd) != 0)
		tap_ok(0, "cleanup");
}

int main(void)
{
	test_msgid();
	test_reception();
	test_rcpt();
	test_helpers();
	test_queue_store();
	test_admin_to_log();
	return tap_done();
}
