/*
 * load_main.c: smtp-load's options, setup and main (bench/README.md).
 * It parses the command line into struct load_opts (read-only afterwards),
 * resolves the server, raises RLIMIT_NOFILE, lets load_text.c, load_tls.c
 * and load_ring.c set up, runs, and prints the summary.
 *
 * Exit: 0 when every message (or handshake) went through, 1 when some
 * failed, 2 on usage or setup errors, 3 on a second SIGINT/SIGTERM.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

volatile sig_atomic_t load_signalled;

static void load_on_signal(int sig)
{
	(void)sig;
	load_signalled++;
}

void load_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("smtp-load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

uint64_t load_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LOAD_NS + (uint64_t)ts.tv_nsec;
}

static void load_resolve(struct load *L, const char *hostport)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	const char *colon = strrchr(hostport, ':');
	size_t hl;
	int rc;

	if (colon == NULL || colon == hostport || colon[1] == '\0')
		load_die("-s wants HOST:PORT, not '%s'", hostport);
	hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && colon[-1] == ']') {
		hostport++;
		hl -= 2;
	}
	if (hl >= sizeof(L->l_host))
		load_die("host name too long");
	memcpy(L->l_host, hostport, hl);
	L->l_host[hl] = '\0';
	rc = getaddrinfo(L->l_host, colon + 1, &hints, &res);
	if (rc != 0)
		load_die("%s: %s", L->l_host, gai_strerror(rc));
	memcpy(&L->l_addr, res->ai_addr, res->ai_addrlen);
	L->l_addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* RLIMIT_NOFILE bounds the registered file table (-c slots) and, without
 * a table, the plain descriptors (-c plus a few). Raise it as far as that
 * needs, and as far as the hard limit allows. */
static void load_raise_nofile(unsigned sessions)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)sessions + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit hard = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &hard) == 0)	/* root, usually */
			return;
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || want < sessions)
		load_die("-c %u needs RLIMIT_NOFILE >= %u; the hard limit is %llu",
			 sessions, sessions, (unsigned long long)rl.rlim_max);
}

static void load_usage(FILE *f)
{
	fprintf(f,
		"usage: smtp-load -s HOST:PORT [-c SESSIONS] [-n MESSAGES | -d SECONDS]\n"
		"                 [-z SIZE | -z SIZE:WEIGHT,...] [-D DOMAIN[:WEIGHT],...]\n"
		"                 [-R NDOMAINS] [-r RCPTS] [-m PER_CONN] [-P] [-T] [-S] [-I]\n"
		"                 [-q] [-j]\n"
		"                 [-t TIMEOUT] [-b N] [-H HELO] [-F DOMAIN]\n"
		"  -s HOST:PORT  server (numeric or name; [v6]:port)\n"
		"  -c N          concurrent sessions (default 50, up to %u)\n"
		"  -n N          messages in all (default 10000 unless -d is given);\n"
		"                with -S, handshakes\n"
		"  -d SECONDS    run this long (with -n: whichever comes first)\n"
		"  -z BYTES      message size, headers included (default 1024), or a mix\n"
		"                SIZE:WEIGHT,... such as 1024:70,10240:25,102400:5: each\n"
		"                message picks its size by weight\n"
		"  -D DOMAINS    recipient domains DOMAIN[:WEIGHT],... such as\n"
		"                a.test:80,b.test:20: each recipient picks its domain by\n"
		"                weight (default example.com)\n"
		"  -R N          recipient domains d0.test .. dN-1.test (instead of -D),\n"
		"                taken in turn, recipient after recipient: each domain\n"
		"                gets the same share (fan-out runs)\n"
		"  -F DOMAIN     sender domain: From: and MAIL FROM are\n"
		"                smtp-load@DOMAIN (default load.example)\n"
		"  -r N          recipients per message (default 1)\n"
		"  -m N          messages per connection (default 1; 0 = no limit)\n"
		"  -P            use PIPELINING: MAIL, RCPT.., DATA in one write; the\n"
		"                next group (or QUIT) follows the dot in one write\n"
		"  -T            STARTTLS after EHLO, handshake, EHLO again, then the mail\n"
		"                over TLS (BoringSSL; no certificate check, no resumption)\n"
		"  -S            handshakes only: connect, EHLO, STARTTLS, handshake, QUIT,\n"
		"                over and over; reports handshakes per second (implies -T)\n"
		"  -I            idle: after EHLO hold the sessions until -d (default 30 s)\n"
		"                runs out, then QUIT; prints 'idle: N of M ...' on stderr\n"
		"                when every session has settled\n"
		"  -t SECONDS    per-connection timeout without progress (default 30)\n"
		"  -b N          spread source addresses over 127.0.0.1..127.0.0.N\n"
		"  -H NAME       EHLO name (default smtp-load.example)\n"
		"  -q            no progress line on stderr\n"
		"  -j            print the summary as one JSON line instead of text\n"
		"Exit: 0 all messages accepted, 1 some failed, 2 usage or setup error.\n",
		LOAD_MAX_SESSIONS);
}

static unsigned long long load_num(const char *arg, char opt, unsigned long long min,
				   unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max)
		load_die("-%c: want a number from %llu to %llu, not '%s'", opt, min, max, arg);
	return v;
}

int main(int argc, char **argv)
{
	struct load_opts o = {
		.lo_helo = "smtp-load.example",
		.lo_sizes = "1024",
		.lo_domains = "example.com",
		.lo_from = "load.example",
		.lo_sessions = 50,
		.lo_rcpts = 1,
		.lo_per_conn = 1,
		.lo_timeout = 30,
	};
	struct sigaction sa;
	struct load *L;
	int opt;

	while ((opt = getopt(argc, argv, "s:c:n:d:z:D:R:F:r:m:t:b:H:PTSIqjh")) != -1) {
		switch (opt) {
		case 's': o.lo_server = optarg; break;
		case 'c': o.lo_sessions = (unsigned)load_num(optarg, 'c', 1, LOAD_MAX_SESSIONS); break;
		case 'n': o.lo_messages = load_num(optarg, 'n', 1, UINT64_MAX / 2); break;
		case 'd': o.lo_duration = (unsigned)load_num(optarg, 'd', 1, 86400); break;
		case 'z': o.lo_sizes = optarg; break;	/* checked by load_text_init */
		case 'D': o.lo_domains = optarg; break;
		case 'R': o.lo_rdomains = (unsigned)load_num(optarg, 'R', 1, 100000000); break;
		case 'F':
			if (optarg[0] == '\0' || strlen(optarg) > 253 ||
			    strpbrk(optarg, "<>@ \t\r\n") != NULL)
				load_die("-F: '%s' is not a domain", optarg);
			o.lo_from = optarg;
			break;
		case 'r': o.lo_rcpts = (unsigned)load_num(optarg, 'r', 1, LOAD_MAX_RCPTS); break;
		case 'm': o.lo_per_conn = (unsigned)load_num(optarg, 'm', 0, UINT32_MAX); break;
		case 't': o.lo_timeout = (unsigned)load_num(optarg, 't', 1, 3600); break;
		case 'b': o.lo_src_addrs = (unsigned)load_num(optarg, 'b', 1, 65534); break;
		case 'H': o.lo_helo = optarg; break;
		case 'P': o.lo_pipelining = true; break;
		case 'T': o.lo_tls = true; break;
		case 'S': o.lo_tls = o.lo_hs_only = true; break;
		case 'I': o.lo_idle = true; break;
		case 'q': o.lo_quiet = true; break;
		case 'j': o.lo_json = true; break;
		case 'h': load_usage(stdout); return 0;
		default: load_usage(stderr); return 2;
		}
	}
	if (o.lo_server == NULL || optind != argc) {
		load_usage(stderr);
		return 2;
	}
	if (o.lo_idle && o.lo_hs_only)
		load_die("-I and -S do not go together");
	if (o.lo_messages == 0 && o.lo_duration == 0) {
		if (o.lo_idle)
			o.lo_duration = 30;
		else
			o.lo_messages = 10000;
	}

	L = calloc(1, sizeof(*L));
	if (L == NULL)
		load_die("out of memory");
	L->l_opts = &o;
	L->l_sess = calloc(o.lo_sessions, sizeof(*L->l_sess));
	L->l_reopen = calloc(o.lo_sessions, sizeof(*L->l_reopen));
	if (L->l_sess == NULL || L->l_reopen == NULL)
		load_die("out of memory");
	for (unsigned i = 0; i < o.lo_sessions; i++)
		L->l_sess[i].ls_fd = -1;
	load_text_init(L);
	load_resolve(L, o.lo_server);
	load_raise_nofile(o.lo_sessions);
	load_tls_init(L);
	load_ring_init(L);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = load_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	load_run(L);
	load_report(L);
	io_uring_queue_exit(&L->l_ring);
	return L->l_failed > 0 || (o.lo_idle && L->l_idle_lost > 0) ? 1 : 0;
}
