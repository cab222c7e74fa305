/*
 * Unit tests for core/dns: routes resolved through a private dnsmasq on
 * loopback, driven by a real io_loop on this thread. Covers MX order,
 * implicit and null MX, NXDOMAIN, MX hosts without address, literals,
 * shared lookups, the cache and its TTL expiry, address and host limits,
 * a truncated answer retried over TCP, a server that never answers and
 * one that refuses (ICMP port unreachable). Takes about 7 s: c-ares
 * gives the silent server 2 s, then 4 s.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/dns/dns.h"
#include "io/loop.h"
#include "tests/unit/tap.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define NULL_MX_ERROR "domain does not accept mail (null MX, RFC 7505)"
#define BIG_MX 40	/* big.test: MX records, more than fit in 512 bytes */

struct req {
	const char *rq_domain;
	int rq_calls;
	bool rq_async;			/* counted in pending */
	uint64_t rq_start_ms, rq_done_ms;
	struct dns_route rq_route;
};

enum {
	R_EXAMPLE, R_EXAMPLE2, R_EXAMPLE_CASE, R_IMPLICIT, R_NULLMX, R_NX,
	R_NOADDR, R_REFUSED, R_LITMX, R_EQ, R_MANY, R_BIG, R_SHORT,
	R_HIT, R_NXHIT, R_SHORT2, R_TIMEOUT, R_UNREACH, R_DROPPED,
	R_LIT4, R_LIT6, R_BADLIT, R_BADNAME,
	R_COUNT
};

static struct req reqs[R_COUNT];
static struct io_loop loop;
static struct dns *dns_main, *dns_silent, *dns_refused;
static unsigned pending;
static int phase;
static uint64_t start_sec, short_done_sec;
static bool short_issued;
static struct dns_stats st_before_short2;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_route(void *ctx, const struct dns_route *r)
{
	struct req *rq = ctx;

	rq->rq_calls++;
	rq->rq_done_ms = now_ms();
	rq->rq_route = *r;
	if (rq == &reqs[R_SHORT])
		short_done_sec = io_loop_now();
	if (rq->rq_async && rq->rq_calls == 1 && --pending == 0)
		io_loop_wake(&loop);
}

/* Resolve domain into reqs[i]; an async one counts in pending. */
static void resolve(struct dns *d, int i, const char *domain, bool async)
{
	reqs[i].rq_domain = domain;
	reqs[i].rq_async = async;
	if (async)
		pending++;
	reqs[i].rq_start_ms = now_ms();
	dns_resolve(d, domain, on_route, &reqs[i]);
}

static bool addr_is(const struct sockaddr_storage *ss, const char *ip)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	else
		return false;
	if (inet_ntop(ss->ss_family, a, buf, sizeof(buf)) == NULL)
		return false;
	return strcmp(buf, ip) == 0;
}

/* One host with one address. */
static bool host_is(const struct dns_route *r, unsigned i, const char *name,
		    unsigned pref, const char *ip)
{
	const struct dns_host *h = &r->dr_hosts[i];

	return i < r->dr_nhosts && strcmp(h->dh_name, name) == 0 &&
	       h->dh_pref == pref && h->dh_naddr == 1 && addr_is(&h->dh_addr[0], ip);
}

static bool same_route(const struct dns_route *a, const struct dns_route *b)
{
	if (a->dr_status != b->dr_status || a->dr_implicit != b->dr_implicit ||
	    a->dr_nhosts != b->dr_nhosts || strcmp(a->dr_error, b->dr_error) != 0)
		return false;
	for (unsigned i = 0; i < a->dr_nhosts; i++) {
		const struct dns_host *x = &a->dr_hosts[i], *y = &b->dr_hosts[i];

		if (strcmp(x->dh_name, y->dh_name) != 0 || x->dh_pref != y->dh_pref ||
		    x->dh_naddr != y->dh_naddr)
			return false;
		for (unsigned j = 0; j < x->dh_naddr; j++)
			if (x->dh_addr[j].ss_family != y->dh_addr[j].ss_family ||
			    (x->dh_addr[j].ss_family == AF_INET &&
			     memcmp(&((const struct sockaddr_in *)&x->dh_addr[j])->sin_addr,
				    &((const struct sockaddr_in *)&y->dh_addr[j])->sin_addr,
				    4) != 0))
				return false;
	}
	return true;
}

static void check_first_round(void)
{
	const struct dns_route *r;
	struct dns_stats st;

	r = &reqs[R_EXAMPLE].rq_route;
	tap_ok(reqs[R_EXAMPLE].rq_calls == 1 && r->dr_status == DNS_OK &&
	       !r->dr_implicit && r->dr_nhosts == 2, "example.test: two MX hosts");
	tap_ok(host_is(r, 0, "mx1.example.test", 10, "127.0.0.2"),
	       "example.test: mx1 (pref 10) first, 127.0.0.2");
	tap_ok(host_is(r, 1, "mx2.example.test", 20, "127.0.0.3"),
	       "example.test: mx2 (pref 20) second, 127.0.0.3");
	tap_ok(r->dr_hosts[0].dh_addr[0].ss_family == AF_INET &&
	       ((const struct sockaddr_in *)&r->dr_hosts[0].dh_addr[0])->sin_port == 0,
	       "addresses carry port 0");
	tap_ok(reqs[R_EXAMPLE2].rq_calls == 1 &&
	       same_route(&reqs[R_EXAMPLE2].rq_route, r),
	       "a second caller of the same lookup gets the same route");
	tap_ok(reqs[R_EXAMPLE_CASE].rq_calls == 1 &&
	       same_route(&reqs[R_EXAMPLE_CASE].rq_route, r),
	       "EXAMPLE.Test. shares it (case, trailing dot)");

	r = &reqs[R_IMPLICIT].rq_route;
	tap_ok(r->dr_status == DNS_OK && r->dr_implicit && r->dr_nhosts == 1 &&
	       host_is(r, 0, "implicit.test", 0, "127.0.0.4"),
	       "implicit.test: no MX, the domain itself (pref 0, 127.0.0.4)");

	r = &reqs[R_NULLMX].rq_route;
	tap_ok(r->dr_status == DNS_NULL_MX && r->dr_nhosts == 0 &&
	       strcmp(r->dr_error, NULL_MX_ERROR) == 0, "nullmx.test: null MX (%s)",
	       r->dr_error);

	r = &reqs[R_NX].rq_route;
	tap_ok(r->dr_status == DNS_NXDOMAIN && r->dr_nhosts == 0 &&
	       strstr(r->dr_error, "nx.test") != NULL, "nx.test: NXDOMAIN (%s)",
	       r->dr_error);

	r = &reqs[R_NOADDR].rq_route;
	tap_ok(r->dr_status == DNS_NO_ADDRESS && r->dr_nhosts == 0 &&
	       r->dr_error[0] != '\0', "noaddr.test: MX host without address (%s)",
	       r->dr_error);

	r = &reqs[R_REFUSED].rq_route;
	tap_ok(r->dr_status == DNS_TEMPFAIL && r->dr_nhosts == 0 && r->dr_error[0] != '\0',
	       "refused.invalid: REFUSED is a temporary failure (%s)", r->dr_error);

	r = &reqs[R_LITMX].rq_route;
	tap_ok(r->dr_status == DNS_OK && r->dr_nhosts == 1 &&
	       host_is(r, 0, "192.0.2.7", 10, "192.0.2.7"),
	       "lit.test: an MX exchange that is an IP address is used as is");

	r = &reqs[R_EQ].rq_route;
	tap_ok(r->dr_status == DNS_OK && r->dr_nhosts == 3 &&
	       host_is(r, 0, "c.eq.test", 5, "127.0.0.7") &&
	       ((host_is(r, 1, "a.eq.test", 10, "127.0.0.5") &&
		 host_is(r, 2, "b.eq.test", 10, "127.0.0.6")) ||
		(host_is(r, 1, "b.eq.test", 10, "127.0.0.6") &&
		 host_is(r, 2, "a.eq.test", 10, "127.0.0.5"))),
	       "eq.test: preference order, the equal pair in either order");

	r = &reqs[R_MANY].rq_route;
	{
		unsigned v6 = 0;

		for (unsigned i = 0; i < r->dr_hosts[0].dh_naddr; i++)
			v6 += r->dr_hosts[0].dh_addr[i].ss_family == AF_INET6;
		tap_ok(r->dr_status == DNS_OK && r->dr_nhosts == 1 &&
		       r->dr_hosts[0].dh_naddr == DNS_MAX_ADDRS && v6 == 2,
		       "many.test: %u addresses kept (%u IPv6): families alternate",
		       r->dr_hosts[0].dh_naddr, v6);
	}

	r = &reqs[R_BIG].rq_route;
	{
		bool ok = r->dr_status == DNS_OK && r->dr_nhosts == DNS_MAX_HOSTS;
		char name[64], ip[32];

		for (unsigned i = 0; ok && i < r->dr_nhosts; i++) {
			snprintf(name, sizeof(name),
				 "mail-exchanger-number-%02u.big.test", i + 1);
			snprintf(ip, sizeof(ip), "127.0.2.%u", i + 1);
			ok = host_is(r, i, name, i + 1, ip);
		}
		if (!tap_ok(ok, "big.test: %d MX records (answer over TCP), the %d best in order",
			    BIG_MX, DNS_MAX_HOSTS))
			printf("# status %d, %u hosts, %s\n", r->dr_status,
			       r->dr_nhosts, r->dr_error);
	}

	r = &reqs[R_SHORT].rq_route;
	tap_ok(r->dr_status == DNS_OK && r->dr_implicit &&
	       host_is(r, 0, "short.test", 0, "127.0.0.8"), "short.test resolves (TTL 1) %s", r->dr_error);

	dns_get_stats(dns_main, &st);
	/* MX queries: 11 domains; address queries (A+AAAA): mx1, mx2,
	 * implicit, nowhere, a, b, c, many, short, 10 of big. lit.test
	 * needs none. */
	tap_ok(st.lookups == 11 + 2 * 19, "stats: %llu queries sent (expect 49)",
	       (unsigned long long)st.lookups);
	tap_ok(st.failures == 4, "stats: %llu failures (null MX, NXDOMAIN, no address, refused)",
	       (unsigned long long)st.failures);
	tap_ok(st.cache_hits == 0, "stats: no cache hits yet");
}

/* Cache hits answer before dns_resolve returns; then the slow cases. */
static void start_second_round(void)
{
	struct dns_stats before, after;

	dns_get_stats(dns_main, &before);
	resolve(dns_main, R_HIT, "Example.test", false);
	dns_get_stats(dns_main, &after);
	tap_ok(reqs[R_HIT].rq_calls == 1 &&
	       same_route(&reqs[R_HIT].rq_route, &reqs[R_EXAMPLE].rq_route),
	       "second lookup of example.test answered at once, same route");
	tap_ok(after.cache_hits == before.cache_hits + 1 &&
	       after.lookups == before.lookups, "...from the cache (hits %llu)",
	       (unsigned long long)after.cache_hits);
	resolve(dns_main, R_NXHIT, "nx.test", false);
	dns_get_stats(dns_main, &after);
	tap_ok(reqs[R_NXHIT].rq_calls == 1 &&
	       reqs[R_NXHIT].rq_route.dr_status == DNS_NXDOMAIN &&
	       after.cache_hits == before.cache_hits + 2 &&
	       after.lookups == before.lookups, "NXDOMAIN is cached too");

	/* The silent server, the refusing port; and short.test once its
	 * 1-second TTL has passed (issued from on_tick). */
	resolve(dns_silent, R_TIMEOUT, "example.test", true);
	resolve(dns_refused, R_UNREACH, "example.test", true);
}

static void on_tick(struct io_loop *lp, uint64_t now)
{
	(void)lp;
	dns_tick(dns_main);
	dns_tick(dns_silent);
	dns_tick(dns_refused);
	if (phase == 1 && !short_issued && now >= short_done_sec + 2) {
		short_issued = true;
		dns_get_stats(dns_main, &st_before_short2);
		resolve(dns_main, R_SHORT2, "short.test", true);
	}
	if (now > start_sec + 25) {
		tap_ok(0, "the test ran out of time (phase %d, %u pending)", phase, pending);
		io_loop_stop(&loop);
	}
}

static void on_wake(struct io_loop *lp)
{
	(void)lp;
	if (pending != 0 || (phase == 1 && !short_issued))
		return;
	if (phase == 0) {
		check_first_round();
		phase = 1;
		start_second_round();
	} else if (phase == 1) {
		phase = 2;
		/* Left in flight: dns_destroy must drop it quietly. */
		resolve(dns_silent, R_DROPPED, "dropped.test", false);
		io_loop_stop(&loop);
	}
}

static void on_accept(struct io_loop *lp, struct io_listener *l, int fd)
{
	(void)lp;
	(void)l;
	close(fd);
}

static const struct io_loop_ops test_ops = {
	.on_accept = on_accept,
	.on_wake = on_wake,
	.on_tick = on_tick,
};

/* A UDP socket bound to a free loopback port; its port in *port_r. */
static int udp_bound(uint16_t *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* Does a server answer a query for example.test MX on port? */
static bool dns_answers(uint16_t port)
{
	static const unsigned char q[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,
		0, 15, 0, 1,
	};
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned char buf[512];
	struct pollfd pfd;
	bool ok = false;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return false;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    send(fd, q, sizeof(q), 0) == (ssize_t)sizeof(q)) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 200) == 1 && recv(fd, buf, sizeof(buf), 0) >= 12)
			ok = buf[0] == 0x12 && buf[1] == 0x34;
	}
	close(fd);
	return ok;
}

static pid_t dnsmasq_start(uint16_t port)
{
	static char big[2 * BIG_MX][96];
	char port_arg[32];
	char *argv[64 + 2 * BIG_MX];
	char *base[] = {
		/* Not --no-daemon: in that mode dnsmasq serves a TCP client
		 * inline and answers no UDP until the connection closes. */
		DNSMASQ, "--keep-in-foreground", "--pid-file", port_arg,
		"--listen-address=127.0.0.1",
		"--bind-interfaces", "--no-resolv", "--no-hosts",
		"--conf-file=/dev/null", "--log-facility=-", "--local=/test/",
		"--local-ttl=600",
		"--mx-host=example.test,mx2.example.test,20",
		"--mx-host=example.test,mx1.example.test,10",
		"--host-record=mx1.example.test,127.0.0.2",
		"--host-record=mx2.example.test,127.0.0.3",
		"--host-record=implicit.test,127.0.0.4",
		"--mx-host=nullmx.test,.,0",
		"--mx-host=noaddr.test,nowhere.noaddr.test,10",
		"--mx-host=lit.test,192.0.2.7,10",
		"--mx-host=eq.test,a.eq.test,10",
		"--mx-host=eq.test,b.eq.test,10",
		"--mx-host=eq.test,c.eq.test,5",
		"--host-record=a.eq.test,127.0.0.5",
		"--host-record=b.eq.test,127.0.0.6",
		"--host-record=c.eq.test,127.0.0.7",
		"--host-record=short.test,127.0.0.8,1",
		/* 10 IPv4 and 2 IPv6 addresses: more than DNS_MAX_ADDRS */
		"--host-record=many.test,127.0.1.1,fd00::1",
		"--host-record=many.test,127.0.1.2,fd00::2",
		"--host-record=many.test,127.0.1.3", "--host-record=many.test,127.0.1.4",
		"--host-record=many.test,127.0.1.5", "--host-record=many.test,127.0.1.6",
		"--host-record=many.test,127.0.1.7", "--host-record=many.test,127.0.1.8",
		"--host-record=many.test,127.0.1.9", "--host-record=many.test,127.0.1.10",
	};
	unsigned n = 0;
	pid_t pid;

	snprintf(port_arg, sizeof(port_arg), "--port=%u", port);
	for (unsigned i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[n++] = base[i];
	/* Listed in reverse preference order, so that sorting shows. */
	for (unsigned i = 0; i < BIG_MX; i++) {
		unsigned pref = BIG_MX - i;

		snprintf(big[2 * i], sizeof(big[0]),
			 "--mx-host=big.test,mail-exchanger-number-%02u.big.test,%u",
			 pref, pref);
		snprintf(big[2 * i + 1], sizeof(big[0]),
			 "--host-record=mail-exchanger-number-%02u.big.test,127.0.2.%u",
			 pref, pref);
		argv[n++] = big[2 * i];
		argv[n++] = big[2 * i + 1];
	}
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		/* Gone with the test, however it ends. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* Keep stdout for TAP: dnsmasq logs to stderr. */
		dup2(2, 1);
		execv(DNSMASQ, argv);
		_exit(127);
	}
	return pid;
}

/* dnsmasq on a free port, answering; its pid, or -1. */
static pid_t dnsmasq_up(uint16_t *port_r)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		uint16_t port;
		int fd = udp_bound(&port);
		pid_t pid;

		if (fd < 0)
			return -1;
		close(fd);
		pid = dnsmasq_start(port);
		if (pid < 0)
			return -1;
		for (int i = 0; i < 50; i++) {
			int status;

			if (waitpid(pid, &status, WNOHANG) == pid) {
				pid = -1;	/* exited: port taken? try another */
				break;
			}
			if (dns_answers(port)) {
				*port_r = port;
				return pid;
			}
			/* Not listening yet: the query met a closed port. */
			usleep(100 * 1000);
		}
		if (pid > 0) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
		}
	}
	return -1;
}

int main(void)
{
	struct io_loop_params params = {
		.entries = 64, .buf_size = 4096, .buf_max = 64, .buf_target = 8,
	};
	char servers[64], err[256];
	struct dns_stats st;
	uint16_t port = 0, silent_port = 0, refused_port = 0;
	int silent_fd, refused_fd, ret;
	pid_t pid;

	pid = dnsmasq_up(&port);
	if (!tap_ok(pid > 0, "dnsmasq answers on 127.0.0.1"))
		return tap_done();
	/* Bound and never read: queries to it simply time out. */
	silent_fd = udp_bound(&silent_port);
	/* Bound then closed: queries to it meet ICMP port unreachable. */
	refused_fd = udp_bound(&refused_port);
	if (refused_fd >= 0)
		close(refused_fd);

	ret = io_loop_init(&loop, &params, &test_ops, NULL);
	tap_ok(ret == 0, "io_loop_init (%d)", ret);
	if (ret != 0 || silent_fd < 0 || refused_fd < 0)
		goto out_dnsmasq;

	tap_ok(dns_init(&dns_main, &loop, "300.0.0.1:53", err, sizeof(err)) < 0 &&
	       dns_main == NULL && err[0] != '\0', "a bad server list is refused (%s)",
	       err);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
	ret = dns_init(&dns_main, &loop, servers, err, sizeof(err));
	tap_ok(ret == 0, "dns_init %s %s", servers, ret == 0 ? "" : err);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", silent_port);
	ret |= dns_init(&dns_silent, &loop, servers, err, sizeof(err));
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", refused_port);
	ret |= dns_init(&dns_refused, &loop, servers, err, sizeof(err));
	tap_ok(ret == 0, "dns_init for the silent and the refusing server");
	if (ret != 0)
		goto out_loop;

	/* Round one: everything in flight at once. */
	resolve(dns_main, R_EXAMPLE, "example.test", true);
	resolve(dns_main, R_EXAMPLE2, "example.test", true);
	resolve(dns_main, R_EXAMPLE_CASE, "EXAMPLE.Test.", true);
	dns_get_stats(dns_main, &st);
	tap_ok(st.lookups == 1 && reqs[R_EXAMPLE].rq_calls == 0,
	       "three resolutions of example.test share one MX query");
	resolve(dns_main, R_IMPLICIT, "implicit.test", true);
	resolve(dns_main, R_NULLMX, "nullmx.test", true);
	resolve(dns_main, R_NX, "nx.test", true);
	resolve(dns_main, R_NOADDR, "noaddr.test", true);
	resolve(dns_main, R_REFUSED, "refused.invalid", true);
	resolve(dns_main, R_LITMX, "lit.test", true);
	resolve(dns_main, R_EQ, "eq.test", true);
	resolve(dns_main, R_MANY, "many.test", true);
	resolve(dns_main, R_BIG, "big.test", true);
	resolve(dns_main, R_SHORT, "short.test", true);

	/* Literals and bad names answer at once, without DNS. */
	dns_get_stats(dns_main, &st);
	resolve(dns_main, R_LIT4, "[127.0.0.9]", false);
	tap_ok(reqs[R_LIT4].rq_calls == 1 && reqs[R_LIT4].rq_route.dr_status == DNS_OK &&
	       reqs[R_LIT4].rq_route.dr_nhosts == 1 &&
	       host_is(&reqs[R_LIT4].rq_route, 0, "[127.0.0.9]", 0, "127.0.0.9"),
	       "[127.0.0.9]: one host, that address, at once");
	resolve(dns_main, R_LIT6, "[IPv6:::1]", false);
	tap_ok(reqs[R_LIT6].rq_calls == 1 && reqs[R_LIT6].rq_route.dr_status == DNS_OK &&
	       reqs[R_LIT6].rq_route.dr_hosts[0].dh_naddr == 1 &&
	       addr_is(&reqs[R_LIT6].rq_route.dr_hosts[0].dh_addr[0], "::1"),
	       "[IPv6:::1]: an IPv6 literal");
	resolve(dns_main, R_BADLIT, "[300.1.2.3]", false);
	tap_ok(reqs[R_BADLIT].rq_calls == 1 &&
	       reqs[R_BADLIT].rq_route.dr_status == DNS_NXDOMAIN &&
	       reqs[R_BADLIT].rq_route.dr_error[0] != '\0',
	       "a malformed literal fails permanently (%s)",
	       reqs[R_BADLIT].rq_route.dr_error);
	resolve(dns_main, R_BADNAME, "bad..example", false);
	tap_ok(reqs[R_BADNAME].rq_calls == 1 &&
	       reqs[R_BADNAME].rq_route.dr_status == DNS_NXDOMAIN,
	       "an empty label fails permanently (%s)",
	       reqs[R_BADNAME].rq_route.dr_error);
	{
		struct dns_stats st2;

		dns_get_stats(dns_main, &st2);
		tap_ok(st2.lookups == st.lookups && st2.cache_hits == 0,
		       "literals and bad names send no query");
	}

	start_sec = io_loop_now();
	ret = io_loop_run(&loop);
	tap_ok(ret == 0 && phase == 2, "the loop ran every round (%d)", ret);

	if (phase == 2) {
		struct req *rq;

		rq = &reqs[R_SHORT2];
		dns_get_stats(dns_main, &st);
		tap_ok(rq->rq_calls == 1 && rq->rq_route.dr_status == DNS_OK &&
		       host_is(&rq->rq_route, 0, "short.test", 0, "127.0.0.8"),
		       "short.test resolves again after its TTL");
		tap_ok(st.cache_hits == st_before_short2.cache_hits &&
		       st.lookups > st_before_short2.lookups,
		       "...with new queries, not from the cache (TTL 1 expired)");

		rq = &reqs[R_TIMEOUT];
		tap_ok(rq->rq_calls == 1 && rq->rq_route.dr_status == DNS_TEMPFAIL &&
		       strstr(rq->rq_route.dr_error, "timed out") != NULL,
		       "silent server: temporary failure (%s)", rq->rq_route.dr_error);
		tap_ok(rq->rq_done_ms - rq->rq_start_ms >= 1000 &&
		       rq->rq_done_ms - rq->rq_start_ms < 15000,
		       "...after %llu ms of retries",
		       (unsigned long long)(rq->rq_done_ms - rq->rq_start_ms));

		rq = &reqs[R_UNREACH];
		tap_ok(rq->rq_calls == 1 && rq->rq_route.dr_status == DNS_TEMPFAIL &&
		       strstr(rq->rq_route.dr_error, "unreachable") != NULL,
		       "refusing port: temporary failure (%s)", rq->rq_route.dr_error);
		tap_ok(rq->rq_done_ms - rq->rq_start_ms < 1500,
		       "...at once, not by timeout (%llu ms)",
		       (unsigned long long)(rq->rq_done_ms - rq->rq_start_ms));
		dns_get_stats(dns_silent, &st);
		tap_ok(st.failures == 1 && st.lookups == 2,
		       "silent server stats: 1 failure, 2 MX queries (one in flight)");
	}

out_loop:
	dns_destroy(&dns_main);
	dns_destroy(&dns_silent);
	dns_destroy(&dns_refused);
	tap_ok(dns_main == NULL && reqs[R_DROPPED].rq_calls == 0,
	       "dns_destroy clears the pointer and drops lookups in flight");
	io_loop_destroy(&loop);
out_dnsmasq:
	if (silent_fd >= 0)
		close(silent_fd);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return tap_done();
}
