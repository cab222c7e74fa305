/*
 * Unit tests for the committer's wakes (queue/queue.c, README "Queue
 * storage"): many producers against a committer that sleeps, gathers and
 * wakes, with nothing lost and no wakeup missed (every wait is bounded, so
 * a lost wakeup fails instead of hanging); a message that finds the
 * committer idle is committed at once, a gathering ends when its batch is
 * full or its time is up, and one that did not pay is not tried again
 * at once; each sink is notified once per batch; the
 * commit listener runs once per batch, after the updates' qu_done, also
 * for a batch without new messages; a sink whose owner frees it as soon
 * as its message is back is never notified after that.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "tests/unit/tap.h"

#define WAIT_MS 10000	/* any single wait; far above a commit on a busy box */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A sink with a notify counter and a bounded wait for its messages. */
struct tsink {
	struct queue_sink s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int notified;		/* notifies not yet waited for */
	int notifies;		/* all of them */
	int back;		/* messages taken */
	int failed;		/* of them, not committed */
};

static void tsink_notify(void *ctx)
{
	struct tsink *t = ctx;

	pthread_mutex_lock(&t->lock);
	t->notified++;
	t->notifies++;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void tsink_init(struct tsink *t)
{
	pthread_condattr_t ca;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	queue_sink_init(&t->s, tsink_notify, t);
}

static void tsink_destroy(struct tsink *t)
{
	queue_sink_destroy(&t->s);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

/* Wait until `want` messages came back in all, each wait at most
 * WAIT_MS; false on a timeout (a lost wakeup). */
static bool tsink_wait(struct tsink *t, int want)
{
	while (t->back < want) {
		struct timespec ts;
		uint64_t end = now_ms() + WAIT_MS;
		int rc = 0;

		ts.tv_sec = (time_t)(end / 1000u);
		ts.tv_nsec = (long)(end % 1000u) * 1000000L;
		pthread_mutex_lock(&t->lock);
		while (t->notified == 0 && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		t->notified = 0;
		pthread_mutex_unlock(&t->lock);
		for (struct queue_msg *m = queue_sink_take(&t->s); m != NULL; m = m->qm_next) {
			t->back++;
			t->failed += m->qm_status != 0;
		}
		if (rc == ETIMEDOUT && t->back < want)
			return false;
	}
	return true;
}

static const struct qrcpt rcpt = { QRCPT_PENDING, 0, 0, "r@example.com", 13, NULL, 0, 0, 0,
				   NULL, 0 };
static const struct iovec body = { "Subject: x\r\n\r\nbody\r\n", 20 };
static _Atomic uint64_t next_id = 1;

static void msg_init(struct queue_msg *m, struct tsink *t)
{
	memset(m, 0, sizeof(*m));
	m->qm_sink = &t->s;
	m->qm_id = atomic_fetch_add(&next_id, 1);
	m->qm_rec.sender = "from@example.org";
	m->qm_rec.sender_len = 16;
	m->qm_rec.nrcpt = 1;
	m->qm_rec.rcpts = &rcpt;
	m->qm_iov = &body;
	m->qm_iovcnt = 1;
}

/* ---- the listener: a gate that holds the committer, and what it saw ---- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_armed, gate_held, gate_open;
static _Atomic unsigned listener_calls, listener_ids, updates_done, dones_at_listener;

static void listener(void *ctx, const uint64_t *ids, unsigned n)
{
	(void)ctx;
	(void)ids;
	atomic_fetch_add(&listener_calls, 1);
	atomic_fetch_add(&listener_ids, n);
	atomic_store(&dones_at_listener, atomic_load(&updates_done));
	pthread_mutex_lock(&gate_lock);
	if (gate_armed) {
		gate_armed = false;
		gate_held = true;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open)
			pthread_cond_wait(&gate_cond, &gate_lock);
	}
	pthread_mutex_unlock(&gate_lock);
}

/* Wait until the listener ran for every batch committed so far (it runs
 * after the sinks are notified), so the next gate holds the next batch. */
static void listener_settle(struct queue *q)
{
	struct queue_stats st;

	for (int i = 0; i < 1000; i++) {
		queue_get_stats(q, &st);
		if (atomic_load(&listener_calls) >= st.commits)
			return;
		usleep(5000);
	}
}

static void gate_arm(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_armed = true;
	gate_held = gate_open = false;
	pthread_mutex_unlock(&gate_lock);
}

static void gate_wait_held(void)
{
	pthread_mutex_lock(&gate_lock);
	while (!gate_held)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* Hold the committer in the listener of a batch of one message while a
 * second one comes (so the commit ends under "load"), then let it go:
 * the ms until the sink has `want` messages back (WAIT_MS on a timeout). */
static uint64_t held_then_one(struct queue *q, struct tsink *t, struct queue_msg *m1,
			      struct queue_msg *m2, int want)
{
	uint64_t t0;

	listener_settle(q);
	gate_arm();
	msg_init(m1, t);
	queue_submit(q, m1);
	gate_wait_held();
	msg_init(m2, t);
	queue_submit(q, m2);
	t0 = now_ms();
	gate_release();
	return tsink_wait(t, want) ? now_ms() - t0 : WAIT_MS;
}

static void update_done(struct queue_update *u)
{
	(void)u;
	atomic_fetch_add(&updates_done, 1);
}

/* ---- many producers ---- */

enum { PRODUCERS = 8, PER_PRODUCER = 400 };

struct producer {
	struct queue *q;
	unsigned seed;
	struct tsink sink;
	struct queue_msg msgs[PER_PRODUCER];
	struct queue_update ups[PER_PRODUCER / 4];
	bool ok;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	int sent = 0, nup = 0;

	p->ok = true;
	while (sent < PER_PRODUCER) {
		/* A burst of 1..8, then wait for all of it (as sessions do),
		 * sometimes after a pause that lets the committer go idle. */
		int burst = 1 + (int)(rand_r(&p->seed) % 8);

		for (int i = 0; i < burst && sent < PER_PRODUCER; i++) {
			msg_init(&p->msgs[sent], &p->sink);
			queue_submit(p->q, &p->msgs[sent++]);
			if (sent % 4 == 0 && nup < PER_PRODUCER / 4) {
				struct queue_update *u = &p->ups[nup++];

				memset(u, 0, sizeof(*u));	/* events alone: none */
				u->qu_done = update_done;
				queue_submit_update(p->q, u);
			}
		}
		if (!tsink_wait(&p->sink, sent)) {
			p->ok = false;
			return NULL;
		}
		if (rand_r(&p->seed) % 4 == 0)
			usleep(rand_r(&p->seed) % 700);
	}
	return NULL;
}

static void test_producers(const char *dir, uint64_t linger_ns, unsigned gmin, unsigned want,
			   const char *what)
{
	static struct producer prod[PRODUCERS];
	pthread_t th[PRODUCERS];
	struct queue *q;
	char err[256] = "";
	uint64_t count = 0, t0;
	int ok = 1, failed = 0;

	atomic_store(&updates_done, 0);
	if (!tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
		    "%s: queue opens %s", what, err))
		return;
	queue_set_gather(q, linger_ns, gmin, want);
	t0 = now_ms();
	for (int i = 0; i < PRODUCERS; i++) {
		prod[i].q = q;
		prod[i].seed = (unsigned)i * 7919u + 1;
		tsink_init(&prod[i].sink);
		pthread_create(&th[i], NULL, producer_main, &prod[i]);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		ok &= prod[i].ok && prod[i].sink.back == PER_PRODUCER;
		failed += prod[i].sink.failed;
	}
	tap_ok(ok, "%s: %d producers got all %d messages back, no wait timed out (%llu ms)",
	       what, PRODUCERS, PRODUCERS * PER_PRODUCER, (unsigned long long)(now_ms() - t0));
	tap_ok(failed == 0, "%s: every message committed (%d failed)", what, failed);
	queue_close(&q);	/* commits what is left: the last updates */
	tap_ok(atomic_load(&updates_done) == PRODUCERS * (PER_PRODUCER / 4),
	       "%s: every update's qu_done ran (%u)", what, atomic_load(&updates_done));
	if (!tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_RDONLY, err, sizeof(err)) == 0,
		    "%s: the queue reopens", what))
		return;
	if (queue_admin_count(q, &count) != 0)
		count = 0;
	tap_ok(count == PRODUCERS * PER_PRODUCER, "%s: all %d stored (%llu)", what,
	       PRODUCERS * PER_PRODUCER, (unsigned long long)count);
	queue_close(&q);
	for (int i = 0; i < PRODUCERS; i++)
		tsink_destroy(&prod[i].sink);
}

/* ---- one batch at a time, held by the gate ---- */

static void test_gather(const char *dir)
{
	struct queue *q;
	struct tsink a, b;
	struct queue_msg m[8];
	struct queue_update u[3];
	struct queue_stats st0, st1;
	char err[256] = "";
	uint64_t t, dt;
	int nota, notb;

	if (!tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
		    "gather: queue opens %s", err))
		return;
	queue_set_listener(q, listener, NULL);
	atomic_store(&listener_calls, 0);
	tsink_init(&a);
	tsink_init(&b);
	/* A lone message to an idle committer is committed at once, even
	 * with a long gathering allowed. */
	queue_set_gather(q, 3000000000u, 1, 4);	/* 3 s, from one item, up to 4 */
	msg_init(&m[0], &a);
	t = now_ms();
	queue_submit(q, &m[0]);
	dt = tsink_wait(&a, 1) ? now_ms() - t : WAIT_MS;
	tap_ok(dt < 1500, "a lone message is committed at once (%llu ms)", (unsigned long long)dt);

	/* Hold the committer in the listener of the next batch; what comes
	 * meanwhile makes "load": the committer then gathers until the
	 * batch is full (4 items), interleaved over two sinks. */
	listener_settle(q);
	gate_arm();
	msg_init(&m[1], &a);
	queue_submit(q, &m[1]);
	gate_wait_held();
	msg_init(&m[2], &a);
	queue_submit(q, &m[2]);	/* 1 waiting when the commit ends */
	queue_get_stats(q, &st0);
	nota = a.notifies;
	notb = b.notifies;
	gate_release();
	tap_ok(tsink_wait(&a, 2), "the held batch came back");
	usleep(50000);	/* the committer is gathering now, for up to 3 s */
	msg_init(&m[3], &b);
	queue_submit(q, &m[3]);
	msg_init(&m[4], &a);
	queue_submit(q, &m[4]);
	t = now_ms();
	msg_init(&m[5], &b);
	queue_submit(q, &m[5]);	/* the 4th item: the batch is full */
	dt = tsink_wait(&a, 4) && tsink_wait(&b, 2) ? now_ms() - t : WAIT_MS;
	tap_ok(dt < 1500, "a full batch ends the gathering at once (%llu ms)",
	       (unsigned long long)dt);
	queue_get_stats(q, &st1);
	tap_ok(st1.commits - st0.commits == 1 && st1.messages - st0.messages == 4,
	       "the 4 items in one commit (%llu commits, %llu messages)",
	       (unsigned long long)(st1.commits - st0.commits),
	       (unsigned long long)(st1.messages - st0.messages));
	tap_ok(a.notifies - nota == 1 && b.notifies - notb == 1,
	       "each sink notified once per batch (a %d, b %d)", a.notifies - nota,
	       b.notifies - notb);

	/* The gathering's time bound: 200 ms, a batch that never fills. */
	queue_set_gather(q, 200000000u, 1, 100);
	dt = held_then_one(q, &a, &m[6], &m[7], 6);
	tap_ok(dt >= 150 && dt < 3000, "a batch that does not fill waits for the linger, no more"
	       " (%llu ms)", (unsigned long long)dt);

	/* That gathering brought nothing: the next chances are skipped (one
	 * session, or a few each waiting for its own 250, gain nothing). */
	dt = held_then_one(q, &a, &m[6], &m[7], 8);
	tap_ok(dt < 150, "after a gathering that did not pay, the next one is skipped (%llu ms)",
	       (unsigned long long)dt);

	/* Updates alone: the listener runs once for the batch, after every
	 * qu_done, with no ids. */
	queue_set_gather(q, 0, 1, 1);
	listener_settle(q);
	gate_arm();
	msg_init(&m[0], &a);
	m[0].qm_id = atomic_fetch_add(&next_id, 1);
	queue_submit(q, &m[0]);
	gate_wait_held();
	atomic_store(&updates_done, 0);
	for (int i = 0; i < 3; i++) {
		memset(&u[i], 0, sizeof(u[i]));
		u[i].qu_done = update_done;
		queue_submit_update(q, &u[i]);
	}
	{
		unsigned calls = atomic_load(&listener_calls), nids = atomic_load(&listener_ids);

		gate_release();
		tap_ok(tsink_wait(&a, 9), "the held message came back");
		for (int i = 0; i < 500 && atomic_load(&updates_done) < 3; i++)
			usleep(10000);
		for (int i = 0; i < 500 && atomic_load(&listener_calls) < calls + 1; i++)
			usleep(10000);
		usleep(20000);
		tap_ok(atomic_load(&listener_calls) == calls + 1 &&
		       atomic_load(&listener_ids) == nids && atomic_load(&dones_at_listener) == 3,
		       "a batch of updates alone: one listener call, after the 3 qu_done, no ids"
		       " (%u calls, %u done before)", atomic_load(&listener_calls) - calls,
		       atomic_load(&dones_at_listener));
	}
	queue_close(&q);
	tsink_destroy(&a);
	tsink_destroy(&b);
}

/* ---- a sink its owner frees as soon as its messages are back ---- */

/* The victim: its owner polls it, and once its message is back treats
 * it as freed (dead); a notify after that is a use after free (late). */
struct vsink {
	struct queue_sink s;
	_Atomic int dead, late, notifies;
};

static void vsink_notify(void *ctx)
{
	struct vsink *v = ctx;

	if (atomic_load(&v->dead))
		atomic_fetch_add(&v->late, 1);
	atomic_fetch_add(&v->notifies, 1);
}

/* The other sink of the batch: its notify holds the committer until
 * the test lets it go (2 s at most). */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static bool hold_in, hold_go;

static void hsink_notify(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&hold_lock);
	hold_in = true;
	pthread_cond_broadcast(&hold_cond);
	while (!hold_go && pthread_cond_timedwait(&hold_cond, &hold_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&hold_lock);
}

/* The owner's poll: its message back within ms? */
static struct queue_msg *vsink_poll(struct vsink *v, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	struct queue_msg *m;

	while ((m = queue_sink_take(&v->s)) == NULL && now_ms() < end)
		usleep(1000);
	return m;
}

/*
 * One batch returns messages to two sinks, H first, then V. While H's
 * notify holds the committer, V's owner polls V: a message it finds
 * there before V's notify ran lets it free V (HTTP injection waits on
 * a sink on its stack), and the notify that follows touches freed
 * memory. Each sink must get its messages and its notify in one step.
 */
static void test_sink_lifetime(const char *dir)
{
	struct tsink first, hs;
	struct vsink v;
	struct queue_msg m0, mh, mv, *got;
	struct queue *q;
	char err[256] = "";

	if (!tap_ok(queue_open(&q, dir, 64u << 20, QUEUE_F_COMMITTER, err, sizeof(err)) == 0,
		    "lifetime: queue opens %s", err))
		return;
	queue_set_gather(q, 0, 1, 1);
	queue_set_listener(q, listener, NULL);
	tsink_init(&first);
	tsink_init(&hs);
	hs.s.qs_notify = hsink_notify;
	memset(&v, 0, sizeof(v));
	queue_sink_init(&v.s, vsink_notify, &v);
	/* The committer held after a first batch, while H's and V's come. */
	listener_settle(q);
	gate_arm();
	msg_init(&m0, &first);
	queue_submit(q, &m0);
	gate_wait_held();
	msg_init(&mh, &hs);
	queue_submit(q, &mh);
	msg_init(&mv, &first);
	mv.qm_sink = &v.s;
	queue_submit(q, &mv);
	gate_release();
	pthread_mutex_lock(&hold_lock);
	while (!hold_in)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	/* H's notify runs; V's owner looks. */
	got = vsink_poll(&v, 300);
	if (got != NULL)
		atomic_store(&v.dead, 1);
	pthread_mutex_lock(&hold_lock);
	hold_go = true;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	if (got == NULL) {
		got = vsink_poll(&v, WAIT_MS);
		atomic_store(&v.dead, 1);
	}
	for (uint64_t end = now_ms() + WAIT_MS; atomic_load(&v.notifies) == 0 && now_ms() < end;)
		usleep(1000);
	tap_ok(got == &mv && got->qm_status == 0, "lifetime: the message came back committed");
	tap_ok(atomic_load(&v.late) == 0 && atomic_load(&v.notifies) == 1,
	       "lifetime: no notify after its owner took its message (%d late of %d)",
	       atomic_load(&v.late), atomic_load(&v.notifies));
	queue_set_listener(q, NULL, NULL);
	queue_close(&q);
	queue_sink_take(&first.s);
	queue_sink_take(&hs.s);
	queue_sink_destroy(&v.s);
	tsink_destroy(&first);
	tsink_destroy(&hs);
}

int main(void)
{
	char dir[512], sub[600];
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/ringmta-test-queue-wake-XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sub, sizeof(sub), "%s/default", dir);
	test_producers(sub, 500000u, 4, 128, "default gathering");
	snprintf(sub, sizeof(sub), "%s/eager", dir);
	test_producers(sub, 1000000u, 1, 3, "gathering from 1 item, batches of 3");
	snprintf(sub, sizeof(sub), "%s/off", dir);
	test_producers(sub, 0, 1, 1, "no gathering");
	snprintf(sub, sizeof(sub), "%s/gather", dir);
	test_gather(sub);
	snprintf(sub, sizeof(sub), "%s/lifetime", dir);
	test_sink_lifetime(sub);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return tap_done();
}
