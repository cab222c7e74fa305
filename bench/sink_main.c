/*
 * sink_main.c: smtp-sink's main thread. It parses the options, opens one
 * SO_REUSEPORT listening socket per worker, starts the workers, and then
 * only waits for signals: SIGUSR1 prints the counters, SIGTERM/SIGINT
 * stops the workers (through their eventfds) and prints them; once a second
 * the counters go to the -s file (written to a temporary name, renamed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

void sink_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("smtp-sink: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

struct sink_snap {
	uint64_t sn_sessions, sn_rejected, sn_messages, sn_bytes, sn_mail;
	uint64_t sn_rcpt[3], sn_data[3];
	uint64_t sn_cur, sn_peak;
};

static void sink_snap_take(struct sink_worker *ws, unsigned n,
			   struct sink_shared *sh, struct sink_snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	for (unsigned i = 0; i < n; i++) {
		struct sink_counters *c = &ws[i].w_ctr;

		sn->sn_sessions += sink_stat_get(&c->ct_sessions);
		sn->sn_rejected += sink_stat_get(&c->ct_rejected);
		sn->sn_messages += sink_stat_get(&c->ct_messages);
		sn->sn_bytes += sink_stat_get(&c->ct_bytes);
		sn->sn_mail += sink_stat_get(&c->ct_mail);
		for (int k = 0; k < 3; k++) {
			sn->sn_rcpt[k] += sink_stat_get(&c->ct_rcpt[k]);
			sn->sn_data[k] += sink_stat_get(&c->ct_data[k]);
		}
	}
	sn->sn_cur = atomic_load_explicit(&sh->sh_cur, memory_order_relaxed);
	sn->sn_peak = atomic_load_explicit(&sh->sh_peak, memory_order_relaxed);
}

/* One line: "key=value ..." for people, or a JSON object for scripts. */
static void sink_snap_print(FILE *f, const struct sink_snap *sn, bool json)
{
	const struct { const char *k; uint64_t v; } kv[] = {
		{ "sessions", sn->sn_sessions }, { "rejected", sn->sn_rejected },
		{ "messages", sn->sn_messages }, { "bytes", sn->sn_bytes },
		{ "mail", sn->sn_mail },
		{ "rcpt_2xx", sn->sn_rcpt[0] }, { "rcpt_4xx", sn->sn_rcpt[1] },
		{ "rcpt_5xx", sn->sn_rcpt[2] }, { "data_2xx", sn->sn_data[0] },
		{ "data_4xx", sn->sn_data[1] }, { "data_5xx", sn->sn_data[2] },
		{ "cur_sessions", sn->sn_cur }, { "peak_sessions", sn->sn_peak },
	};
	size_t n = sizeof(kv) / sizeof(kv[0]);

	if (json)
		fputc('{', f);
	for (size_t i = 0; i < n; i++) {
		if (json)
			fprintf(f, "\"%s\": %llu%s", kv[i].k, (unsigned long long)kv[i].v,
				i + 1 < n ? ", " : "}\n");
		else
			fprintf(f, "%s=%llu%s", kv[i].k, (unsigned long long)kv[i].v,
				i + 1 < n ? " " : "\n");
	}
}

/* Write the counters as JSON to path.tmp.PID, then rename over path. */
static void sink_snap_write(const char *path, const struct sink_snap *sn)
{
	char tmp[PATH_MAX];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (f == NULL) {
		fprintf(stderr, "smtp-sink: %s: %s\n", tmp, strerror(errno));
		return;
	}
	sink_snap_print(f, sn, true);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "smtp-sink: %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
}

static void sink_usage(void) __attribute__((noreturn));

static void sink_usage(void)
{
	fputs("usage: smtp-sink [options] HOST:PORT\n"
	      "  -w N     worker threads, each with its own ring and socket (1)\n"
	      "  -c N     cap on concurrent sessions; excess get 421 (0: none)\n"
	      "  -L MS    latency before each final DATA reply\n"
	      "  -r SPEC  reply mix, e.g. rcpt:4xx=5,rcpt:5xx=2,data:4xx=1,data:5xx=1;\n"
	      "           data:421=10: 421 4.7.28 (rate) after the data, then close\n"
	      "  -d SPEC  per-domain rules, e.g. slow.test=latency:200,bad.test=rcpt:550,\n"
	      "           busy.test=rcpt:450+data:451 (latency, rcpt:CODE, data:CODE)\n"
	      "  -s FILE  write counters (JSON) to FILE every second and at exit\n"
	      "  -t SEC   idle timeout (300; 0: none)\n"
	      "  -q       quiet\n"
	      "Recipients tempfail@... get 450 4.2.1, permfail@... get 550 5.1.1.\n"
	      "SIGUSR1 prints the counters; SIGTERM/SIGINT print them and exit.\n",
	      stderr);
	exit(2);
}

/* ---- listening ---- */

static void sink_parse_addr(const char *arg, struct sockaddr_storage *ss,
			    socklen_t *len_r)
{
	char *copy = strdup(arg), *host, *port;
	struct addrinfo hints, *res;
	int ret;

	if (copy == NULL)
		sink_fatal("out of memory");
	if (copy[0] == '[') {
		char *rb = strchr(copy, ']');

		if (rb == NULL || rb[1] != ':')
			sink_fatal("bad address '%s'", arg);
		*rb = '\0';
		host = copy + 1;
		port = rb + 2;
	} else {
		char *colon = strrchr(copy, ':');

		if (colon == NULL)
			sink_fatal("bad address '%s' (want HOST:PORT)", arg);
		*colon = '\0';
		host = copy;
		port = colon + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	ret = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
	if (ret != 0)
		sink_fatal("%s: %s", arg, gai_strerror(ret));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	free(copy);
}

static int sink_listen(struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		sink_fatal("socket: %s", strerror(errno));
	/* TCP_NODELAY is inherited by accepted sockets: no call per session. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		sink_fatal("setsockopt: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)ss, len) != 0)
		sink_fatal("bind: %s", strerror(errno));
	if (listen(fd, 4096) != 0)
		sink_fatal("listen: %s", strerror(errno));
	/* Port 0: the kernel chose one; the other workers bind the same. */
	if (getsockname(fd, (struct sockaddr *)ss, &len) != 0)
		sink_fatal("getsockname: %s", strerror(errno));
	return fd;
}

static void sink_addr_string(const struct sockaddr_storage *ss, socklen_t len,
			     char *buf, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* ---- main: signals, counters file, worker start and stop ---- */

int main(int argc, char **argv)
{
	struct sink_conf conf;
	struct sink_shared sh;
	struct sink_worker *ws;
	struct sockaddr_storage ss;
	struct sink_snap sn;
	struct timespec next, now;
	socklen_t sslen;
	sigset_t sigs;
	char where[NI_MAXHOST + NI_MAXSERV + 4];
	int opt, failed;

	memset(&conf, 0, sizeof(conf));
	conf.sc_workers = 1;
	conf.sc_idle_s = 300;
	while ((opt = getopt(argc, argv, "w:c:L:r:d:s:t:qh")) != -1) {
		switch (opt) {
		case 'w':
			conf.sc_workers = sink_parse_uint(optarg, SINK_MAX_WORKERS, "-w");
			if (conf.sc_workers == 0)
				sink_fatal("-w must be at least 1");
			break;
		case 'c':
			conf.sc_max_sessions = sink_parse_uint(optarg, 10000000, "-c");
			break;
		case 'L':
			conf.sc_latency_ms = sink_parse_uint(optarg, 3600000, "-L");
			break;
		case 'r':
			sink_parse_mix(&conf, optarg);
			break;
		case 'd':
			sink_parse_domains(&conf, optarg);
			break;
		case 's':
			conf.sc_stats_path = optarg;
			break;
		case 't':
			conf.sc_idle_s = sink_parse_uint(optarg, 86400, "-t");
			break;
		case 'q':
			conf.sc_quiet = true;
			break;
		default:
			sink_usage();
		}
	}
	if (optind + 1 != argc)
		sink_usage();
	sink_conf_texts(&conf);
	sink_parse_addr(argv[optind], &ss, &sslen);

	/* Workers inherit the mask; only main takes these signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sh, 0, sizeof(sh));
	sem_init(&sh.sh_ready, 0, 0);
	ws = aligned_alloc(64, conf.sc_workers * sizeof(*ws));
	if (ws == NULL)
		sink_fatal("out of memory");
	memset(ws, 0, conf.sc_workers * sizeof(*ws));
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		struct sink_worker *w = &ws[i];

		w->w_conf = &conf;
		w->w_shared = &sh;
		w->w_index = i;
		w->w_lfd = sink_listen(&ss, sslen);
		w->w_wake_fd = eventfd(0, EFD_CLOEXEC);
		if (w->w_wake_fd < 0)
			sink_fatal("eventfd: %s", strerror(errno));
	}
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		if (pthread_create(&ws[i].w_thread, NULL, sink_worker_main, &ws[i]) != 0)
			sink_fatal("pthread_create failed");
	}
	for (unsigned i = 0; i < conf.sc_workers; i++)
		sem_wait(&sh.sh_ready);
	for (unsigned i = 0; i < conf.sc_workers; i++)
		if (ws[i].w_init_err < 0)
			sink_fatal("io_uring setup: %s", strerror(-ws[i].w_init_err));
	sink_addr_string(&ss, sslen, where, sizeof(where));
	if (!conf.sc_quiet)
		fprintf(stderr, "smtp-sink: listening on %s, %u worker%s\n", where,
			conf.sc_workers, conf.sc_workers == 1 ? "" : "s");

	clock_gettime(CLOCK_MONOTONIC, &next);
	next.tv_sec++;
	for (;;) {
		struct timespec wait;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		wait.tv_sec = next.tv_sec - now.tv_sec;
		wait.tv_nsec = next.tv_nsec - now.tv_nsec;
		if (wait.tv_nsec < 0) {
			wait.tv_sec--;
			wait.tv_nsec += 1000000000L;
		}
		if (wait.tv_sec < 0)
			wait.tv_sec = wait.tv_nsec = 0;
		sig = sigtimedwait(&sigs, NULL, &wait);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGUSR1) {
			sink_snap_take(ws, conf.sc_workers, &sh, &sn);
			sink_snap_print(stdout, &sn, false);
			fflush(stdout);
			continue;
		}
		if (sig < 0 && errno != EAGAIN)
			continue;	/* EINTR */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < next.tv_sec ||
		    (now.tv_sec == next.tv_sec && now.tv_nsec < next.tv_nsec))
			continue;
		next.tv_sec++;
		if (conf.sc_stats_path != NULL) {
			sink_snap_take(ws, conf.sc_workers, &sh, &sn);
			sink_snap_write(conf.sc_stats_path, &sn);
		}
	}

	for (unsigned i = 0; i < conf.sc_workers; i++) {
		uint64_t one = 1;

		if (write(ws[i].w_wake_fd, &one, sizeof(one)) != sizeof(one))
			sink_fatal("eventfd write: %s", strerror(errno));
	}
	for (unsigned i = 0; i < conf.sc_workers; i++) {
		pthread_join(ws[i].w_thread, NULL);
		close(ws[i].w_lfd);
		close(ws[i].w_wake_fd);
	}
	sink_snap_take(ws, conf.sc_workers, &sh, &sn);
	if (conf.sc_stats_path != NULL)
		sink_snap_write(conf.sc_stats_path, &sn);
	if (!conf.sc_quiet)
		sink_snap_print(stdout, &sn, false);
	fflush(stdout);
	failed = atomic_load(&sh.sh_failed);
	free(ws);
	sem_destroy(&sh.sh_ready);
	sink_conf_free(&conf);
	return failed ? 1 : 0;
}
