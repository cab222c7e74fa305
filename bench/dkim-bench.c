/*
 * dkim-bench: the raw signing rate of core/dkim. Signs a 1 KiB and a
 * 100 KiB message with RSA-2048 and with Ed25519 (relaxed/relaxed, the
 * default header list) on T threads for D seconds per case, and prints
 * signatures/s in all and per thread. The keys are made with the openssl
 * tool in a temporary directory, removed at the end.
 *
 *   dkim-bench [-t THREADS] [-d SECONDS] [-p PIECE]
 *
 * -t: threads (default: the CPUs online); -d: seconds per case (default
 * 3); -p: the message is handed over in pieces of this many bytes
 * (default 0: one piece), as a queue reading LMDB pages would.
 */
#include "core/dkim/dkim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bench_case {
	const char *name;
	const struct dkim_key *key;
	const char *msg;
	size_t len;
};

struct bench_thread {
	pthread_t tid;
	const struct bench_case *bc;
	size_t piece;
	atomic_bool *stop;
	uint64_t count;
	int failed;
};

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bench_run(void *arg)
{
	struct bench_thread *t = arg;
	struct dkim_sign_spec spec = {
		.key = t->bc->key, .domain = "example.test", .selector = "bench",
		.hcanon = DKIM_CANON_RELAXED, .bcanon = DKIM_CANON_RELAXED,
		.timestamp = 1796400000,
	};
	size_t piece = t->piece ? t->piece : t->bc->len;
	unsigned n = (unsigned)((t->bc->len + piece - 1) / piece);
	struct iovec *iov = calloc(n, sizeof(*iov));
	char err[256];

	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = (char *)t->bc->msg + (size_t)i * piece;
		iov[i].iov_len = i + 1 < n ? piece : t->bc->len - (size_t)i * piece;
	}
	while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
		char *out;
		size_t outlen;

		if (dkim_sign(&spec, 1, iov, n, &out, &outlen, err, sizeof(err)) < 0) {
			fprintf(stderr, "dkim-bench: %s\n", err);
			t->failed = 1;
			break;
		}
		free(out);
		t->count++;
	}
	free(iov);
	return NULL;
}

static int bench_case_run(const struct bench_case *bc, unsigned nthreads, double seconds, size_t piece)
{
	struct bench_thread *t = calloc(nthreads, sizeof(*t));
	atomic_bool stop = false;
	uint64_t total = 0;
	double t0, el;
	int failed = 0;

	t0 = bench_now();
	for (unsigned i = 0; i < nthreads; i++) {
		t[i].bc = bc;
		t[i].piece = piece;
		t[i].stop = &stop;
		pthread_create(&t[i].tid, NULL, bench_run, &t[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, true);
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(t[i].tid, NULL);
		total += t[i].count;
		failed |= t[i].failed;
	}
	el = bench_now() - t0;
	printf("%-20s threads %2u  %10.0f signatures/s  %9.0f per thread  (%.1f MB/s)\n",
	       bc->name, nthreads, total / el, total / el / nthreads, total * bc->len / el / 1e6);
	free(t);
	return failed ? -1 : 0;
}

/* A message of about size bytes: the usual header fields, then lines of
 * text with some runs of whitespace. */
static char *bench_message(size_t size, size_t *len_r)
{
	static const char head[] =
		"From: Sender <sender@example.test>\r\n"
		"To: rcpt@example.org\r\n"
		"Subject: a message for the DKIM bench\r\n"
		"Date: Fri, 04 Dec 2026 18:00:00 +0000\r\n"
		"Message-ID: <bench@example.test>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n";
	static const char line[] =
		"Lorem ipsum dolor sit amet,  consectetur adipiscing elit, sed do eiusmod \t\r\n";
	char *m = malloc(size + sizeof(head) + sizeof(line));
	size_t n = sizeof(head) - 1;

	memcpy(m, head, n);
	while (n < size) {
		memcpy(m + n, line, sizeof(line) - 1);
		n += sizeof(line) - 1;
	}
	*len_r = n;
	return m;
}

static struct dkim_key *bench_key(const char *dir, const char *name, const char *args)
{
	char path[512], cmd[2048], err[512];
	struct dkim_key *k;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(cmd, sizeof(cmd), "openssl genpkey %s -out '%s' 2>/dev/null && chmod 600 '%s'",
		 args, path, path);
	if (system(cmd) != 0) {
		fprintf(stderr, "dkim-bench: openssl genpkey %s failed\n", args);
		return NULL;
	}
	if (dkim_key_load(&k, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "dkim-bench: %s\n", err);
		return NULL;
	}
	unlink(path);
	return k;
}

int main(int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nthreads = ncpu > 0 ? (unsigned)ncpu : 1;
	double seconds = 3;
	size_t piece = 0, l1, l100;
	char dir[] = "/tmp/dkim-bench.XXXXXX";
	struct dkim_key *rsa, *ed;
	char *m1, *m100;
	int opt, rc = 0;

	while ((opt = getopt(argc, argv, "t:d:p:")) != -1) {
		switch (opt) {
		case 't':
			nthreads = (unsigned)atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'p':
			piece = (size_t)atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: dkim-bench [-t threads] [-d seconds] [-p piece]\n");
			return 2;
		}
	}
	if (nthreads == 0 || seconds <= 0) {
		fprintf(stderr, "dkim-bench: -t and -d must be positive\n");
		return 2;
	}
	if (mkdtemp(dir) == NULL) {
		perror("dkim-bench: mkdtemp");
		return 1;
	}
	rsa = bench_key(dir, "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
	ed = bench_key(dir, "ed.pem", "-algorithm ed25519");
	rmdir(dir);
	if (rsa == NULL || ed == NULL)
		return 1;
	m1 = bench_message(1024, &l1);
	m100 = bench_message(100 * 1024, &l100);
	{
		const struct bench_case cases[] = {
			{ "rsa-2048   1 KiB", rsa, m1, l1 },
			{ "rsa-2048 100 KiB", rsa, m100, l100 },
			{ "ed25519    1 KiB", ed, m1, l1 },
			{ "ed25519  100 KiB", ed, m100, l100 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (bench_case_run(&cases[i], nthreads, seconds, piece) < 0)
				rc = 1;
	}
	free(m1);
	free(m100);
	dkim_key_free(rsa);
	dkim_key_free(ed);
	return rc;
}
