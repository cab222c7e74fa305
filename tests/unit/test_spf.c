/*
 * test_spf.c: the libspf2 wrapper and its c-ares DNS layer against a
 * dnsmasq on loopback that answers only from the records given here
 * (skipped, exit 77, without /usr/sbin/dnsmasq). Also dns_sync's record
 * types and its answer for a server that does not answer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/dns/dns_sync.h"
#include "core/spf/spf.h"
#include "core/spf/spf_inbound.h"
#include "tests/unit/tap.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

static pid_t test_dnsmasq;

static int test_free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static const char *const test_records[] = {
	"--txt-record=pass.test,v=spf1 ip4:127.0.0.2 -all",
	"--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
	"--txt-record=neutral.test,v=spf1 ?all",
	"--txt-record=inc.test,v=spf1 include:pass.test -all",
	"--host-record=mx.a.test,127.0.0.3",
	"--txt-record=a.test,v=spf1 a:mx.a.test -all",
	"--mx-host=m.test,mx.a.test,10",
	"--txt-record=m.test,v=spf1 mx -all",
	"--txt-record=bad.test,v=spf1 foo:bar -all",
	"--txt-record=six.test,v=spf1 ip6:2001:db8::5 -all",
	/* Two strings, joined without a blank (RFC 7208 3.3). */
	"--txt-record=long.test,v=spf1 ip4:192.0.2.9 ip4:127.0.,0.4 -all",
	"--txt-record=helo.test,v=spf1 ip4:127.0.0.5 -all",
	"--txt-record=exp.test,v=spf1 -all exp=why.exp.test",
	"--txt-record=why.exp.test,%{i} may not send for %{d}",
	"--txt-record=nospf.test,some other text",
	NULL,
};

static int test_start_dnsmasq(int port)
{
	char portarg[32];
	const char *args[64];
	int n = 0;

	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	args[n++] = DNSMASQ;
	args[n++] = "--keep-in-foreground";
	args[n++] = portarg;
	args[n++] = "--listen-address=127.0.0.1";
	args[n++] = "--bind-interfaces";
	args[n++] = "--no-resolv";
	args[n++] = "--no-hosts";
	args[n++] = "--conf-file=/dev/null";
	args[n++] = "--pid-file=";
	args[n++] = "--local=/test/";
	args[n++] = "--log-facility=/dev/null";
	args[n++] = "--user=root";
	for (int i = 0; test_records[i] != NULL; i++)
		args[n++] = test_records[i];
	args[n] = NULL;
	test_dnsmasq = fork();
	if (test_dnsmasq < 0)
		return -1;
	if (test_dnsmasq == 0) {
		execv(DNSMASQ, (char *const *)args);
		_exit(127);
	}
	return 0;
}

static void test_stop_dnsmasq(void)
{
	if (test_dnsmasq > 0) {
		kill(test_dnsmasq, SIGTERM);
		waitpid(test_dnsmasq, NULL, 0);
		test_dnsmasq = 0;
	}
}

static struct sockaddr_storage test_addr(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return ss;
}

static void spf_is(struct spf *spf, const char *ip, const char *helo, const char *from,
		   enum spf_result want)
{
	struct sockaddr_storage ss = test_addr(ip);
	char why[256];
	enum spf_result got = spf_check(spf, (struct sockaddr *)&ss, helo, from, why, sizeof(why));

	tap_ok(got == want, "spf(%s, %s, %s) = %s (got %s: %s)", ip, helo ? helo : "-", from,
	       spf_result_name(want), spf_result_name(got), why);
}

static void test_dns_sync(const char *servers)
{
	struct dns_sync *d;
	struct dns_sync_result r;
	char err[256], name[80];
	unsigned char a[16];

	if (!tap_ok(dns_sync_new(&d, servers, 1000, err, sizeof(err)) == 0, "dns_sync_new: %s",
		    err))
		return;
	tap_ok(dns_sync_lookup(d, "long.test", DNS_SYNC_TXT, &r) == DNS_SYNC_OK && r.ds_n == 1 &&
	       strcmp(r.ds_rr[0].dr_text, "v=spf1 ip4:192.0.2.9 ip4:127.0.0.4 -all") == 0,
	       "TXT strings joined: %s", r.ds_n ? r.ds_rr[0].dr_text : r.ds_error);
	dns_sync_result_free(&r);
	tap_ok(dns_sync_lookup(d, "m.test", DNS_SYNC_MX, &r) == DNS_SYNC_OK && r.ds_n == 1 &&
	       r.ds_rr[0].dr_pref == 10 && strcmp(r.ds_rr[0].dr_text, "mx.a.test") == 0,
	       "MX with its preference");
	dns_sync_result_free(&r);
	inet_pton(AF_INET, "127.0.0.3", a);
	tap_ok(dns_sync_lookup(d, "mx.a.test", DNS_SYNC_A, &r) == DNS_SYNC_OK && r.ds_n == 1 &&
	       memcmp(r.ds_rr[0].dr_addr, a, 4) == 0, "A record");
	dns_sync_result_free(&r);
	tap_ok(dns_sync_lookup(d, "mx.a.test", DNS_SYNC_AAAA, &r) == DNS_SYNC_NODATA, "no AAAA: %s",
	       dns_sync_status_name(r.ds_status));
	dns_sync_result_free(&r);
	tap_ok(dns_sync_lookup(d, "none.test", DNS_SYNC_TXT, &r) == DNS_SYNC_NXDOMAIN, "NXDOMAIN: %s",
	       dns_sync_status_name(r.ds_status));
	dns_sync_result_free(&r);
	tap_ok(dns_sync_lookup(d, "mx.a.test", DNS_SYNC_PTR, &r) == DNS_SYNC_NODATA ||
	       r.ds_status == DNS_SYNC_NXDOMAIN, "no PTR");
	dns_sync_result_free(&r);
	dns_sync_reverse_name(AF_INET, a, name, sizeof(name));
	tap_ok(strcmp(name, "3.0.0.127.in-addr.arpa") == 0, "reverse name %s", name);
	inet_pton(AF_INET6, "2001:db8::5", a);
	dns_sync_reverse_name(AF_INET6, a, name, sizeof(name));
	tap_ok(strcmp(name, "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
	       == 0, "reverse name %s", name);
	dns_sync_free(&d);
}

/* dns_sync's answer walker on hand-made answers. */
static void test_dns_parse(void)
{
	/* Header (1 question, 1 answer), question x.test TXT IN, answer
	 * with a pointer to the question name, TXT "ab" "cd". */
	static const unsigned char good[] = {
		0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		1, 'x', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1,
		0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 6, 2, 'a', 'b', 2, 'c', 'd',
	};
	unsigned char bad[sizeof(good)];
	struct dns_sync_result r;

	memset(&r, 0, sizeof(r));
	tap_ok(dns_sync_parse(good, sizeof(good), DNS_SYNC_TXT, &r) == 0 && r.ds_n == 1 &&
	       strcmp(r.ds_rr[0].dr_text, "abcd") == 0 && r.ds_rr[0].dr_ttl == 60,
	       "TXT parsed and joined");
	dns_sync_result_free(&r);
	memset(&r, 0, sizeof(r));
	tap_ok(dns_sync_parse(good, sizeof(good), DNS_SYNC_MX, &r) == 0 && r.ds_n == 0,
	       "other types are passed over");
	dns_sync_result_free(&r);
	for (size_t cut = 0; cut < sizeof(good); cut++) {
		memset(&r, 0, sizeof(r));
		if (dns_sync_parse(good, (int)cut, DNS_SYNC_TXT, &r) == 0 && r.ds_n > 0) {
			tap_ok(0, "a truncated answer (%zu bytes) is refused", cut);
			dns_sync_result_free(&r);
			return;
		}
		dns_sync_result_free(&r);
	}
	tap_ok(1, "every truncated answer is refused");
	memcpy(bad, good, sizeof(bad));
	bad[sizeof(bad) - 3] = 9;		/* "cd" claims 9 bytes */
	memset(&r, 0, sizeof(r));
	tap_ok(dns_sync_parse(bad, sizeof(bad), DNS_SYNC_TXT, &r) < 0, "TXT string overrun refused");
	dns_sync_result_free(&r);
	memcpy(bad, good, sizeof(bad));
	bad[24] = 0xc0;
	bad[25] = 24;				/* the answer name points at itself */
	memset(&r, 0, sizeof(r));
	tap_ok(dns_sync_parse(bad, sizeof(bad), DNS_SYNC_TXT, &r) < 0, "pointer loop refused");
	dns_sync_result_free(&r);
}

/* The Authentication-Results field (RFC 8601) of spf_inbound. */
static void test_auth_results(void)
{
	static const struct {
		enum spf_result r;
		const char *from, *helo, *want;
	} cases[] = {
		{ SPF_RES_PASS, "a@example.com", "h.example",
		  "Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.com\r\n" },
		{ SPF_RES_FAIL, "", "h.example",
		  "Authentication-Results: mx.test; spf=fail smtp.helo=h.example\r\n" },
		{ SPF_RES_TEMPERROR, "", "odd \"helo\"; x=y",
		  "Authentication-Results: mx.test; spf=temperror smtp.helo=\"odd \\\"helo\\\"; x=y\"\r\n" },
		{ SPF_RES_NONE, "", NULL,
		  "Authentication-Results: mx.test; spf=none smtp.helo=unknown\r\n" },
		{ SPF_RES_SOFTFAIL, "\"q@x\"@b.example", NULL,
		  "Authentication-Results: mx.test; spf=softfail smtp.mailfrom=b.example\r\n" },
	};
	char buf[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = spf_auth_results(buf, sizeof(buf), "mx.test", cases[i].r, cases[i].from,
					 cases[i].helo);

		tap_ok(n > 0 && strcmp(buf, cases[i].want) == 0 && (size_t)n == strlen(buf),
		       "auth results %zu: %s", i, n > 0 ? buf : "error");
	}
	tap_ok(spf_auth_results(buf, 30, "mx.test", SPF_RES_PASS, "a@example.com", NULL) < 0,
	       "a small buffer is refused");
}

/* ---- a slow DNS server: every answer comes 150 ms late ---- */

static int test_slow_fd = -1;
static volatile int test_slow_stop;
static atomic_uint test_slow_asked;	/* queries the slow server received */

/* name as labels into out; returns the length. */
static size_t test_put_name(unsigned char *out, const char *name)
{
	size_t o = 0;

	while (*name != '\0') {
		size_t l = strcspn(name, ".");

		out[o++] = (unsigned char)l;
		memcpy(out + o, name, l);
		o += l;
		name += l;
		if (*name == '.')
			name++;
	}
	out[o++] = 0;
	return o;
}

/* One answer record for the question's name (a pointer to offset 12). */
static size_t test_put_rr(unsigned char *out, unsigned type, const unsigned char *rd, size_t rdlen)
{
	unsigned char h[12] = { 0xc0, 12, 0, (unsigned char)type, 0, 1, 0, 0, 0, 60,
				(unsigned char)(rdlen >> 8), (unsigned char)rdlen };

	memcpy(out, h, 12);
	memcpy(out + 12, rd, rdlen);
	return 12 + rdlen;
}

/*
 * slow.test's record names nine MX mechanisms, each of ten hosts (the
 * most RFC 7208 4.6.4 allows): about a hundred lookups, each answered
 * in time for a 200 ms try, but 15 s in all.
 */
static void *test_slow_main(void *arg)
{
	static const char rec[] = "v=spf1 mx:m1.slow.test mx:m2.slow.test mx:m3.slow.test"
				  " mx:m4.slow.test mx:m5.slow.test mx:m6.slow.test"
				  " mx:m7.slow.test mx:m8.slow.test mx:m9.slow.test -all";
	(void)arg;
	while (!test_slow_stop) {
		unsigned char q[512], a[2048], rd[300];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(test_slow_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
		size_t qend = 12, o, rdlen;
		unsigned qtype, an = 0;

		if (n < 17)
			continue;
		atomic_fetch_add(&test_slow_asked, 1);
		while (qend < (size_t)n && q[qend] != 0)
			qend += q[qend] + 1u;
		qend += 5;
		if (qend > (size_t)n)
			continue;
		qtype = (unsigned)q[qend - 4] << 8 | q[qend - 3];
		memcpy(a, q, qend);
		a[2] = 0x81;
		a[3] = 0x80;
		a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
		o = qend;
		if (qtype == 16) {		/* TXT */
			rd[0] = (unsigned char)(sizeof(rec) - 1);
			memcpy(rd + 1, rec, sizeof(rec) - 1);
			o += test_put_rr(a + o, 16, rd, sizeof(rec));
			an = 1;
		} else if (qtype == 15) {	/* MX: ten hosts */
			for (unsigned i = 0; i < 10; i++) {
				char host[32];

				snprintf(host, sizeof(host), "h%u.slow.test", i);
				rd[0] = 0;
				rd[1] = (unsigned char)i;
				rdlen = 2 + test_put_name(rd + 2, host);
				o += test_put_rr(a + o, 15, rd, rdlen);
			}
			an = 10;
		} else if (qtype == 1) {	/* A: never the client */
			memcpy(rd, "\xc0\x00\x02\x01", 4);
			o += test_put_rr(a + o, 1, rd, 4);
			an = 1;
		}
		a[7] = (unsigned char)an;
		usleep(150000);
		sendto(test_slow_fd, a, o, 0, (struct sockaddr *)&from, flen);
	}
	return NULL;
}

/* A check whose every lookup is answered in time but whose lookups take
 * far longer in all ends with temperror (RFC 7208 4.6.4's time limit),
 * not after the sum of all of them: a domain's slow DNS would otherwise
 * hold a pool thread for minutes, and a few such senders all of them. */
static void test_slow_dns(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	struct timeval tv = { 0, 200000 };
	char servers[64], err[256], why[256];
	struct sockaddr_storage ss = test_addr("127.0.0.2");
	pthread_t th;
	struct spf *spf;
	enum spf_result r;
	unsigned asked;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	test_slow_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (test_slow_fd < 0 || bind(test_slow_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(test_slow_fd, (struct sockaddr *)&sin, &len) < 0 ||
	    setsockopt(test_slow_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    pthread_create(&th, NULL, test_slow_main, NULL) != 0) {
		tap_ok(0, "slow DNS server");
		return;
	}
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", ntohs(sin.sin_port));
	if (tap_ok(spf_new(&spf, servers, "mx.ringmta.test", 200, err, sizeof(err)) == 0,
		   "spf_new (slow server): %s", err)) {
		r = spf_check(spf, (struct sockaddr *)&ss, "client.test", "a@slow.test", why,
			      sizeof(why));
		asked = atomic_load(&test_slow_asked);
		tap_ok(r == SPF_RES_TEMPERROR, "slow DNS in all: %s (%s), after %u queries",
		       spf_result_name(r), why, asked);
		/* A count, not a time: the limit (ten tries' timeouts, 2 s)
		 * leaves room for about 13 of these 150 ms answers; a check
		 * that ran every lookup would have asked about a hundred. */
		tap_ok(asked < 50, "the check ends long before its ~100 lookups (%u asked)", asked);
		spf_free(&spf);
	}
	test_slow_stop = 1;
	pthread_join(th, NULL);
	close(test_slow_fd);
}

int main(void)
{
	struct spf *spf;
	char servers[64], err[256];
	int port;

	if (access(DNSMASQ, X_OK) != 0) {
		printf("1..0 # SKIP no %s\n", DNSMASQ);
		return 77;
	}
	spf_lib_init();
	test_auth_results();
	test_dns_parse();
	port = test_free_port();
	if (port < 0 || test_start_dnsmasq(port) < 0) {
		printf("1..0 # SKIP cannot start dnsmasq\n");
		return 77;
	}
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	/* Wait until it answers. */
	for (int i = 0; i < 100; i++) {
		struct dns_sync *d;
		struct dns_sync_result r;
		enum dns_sync_status st = DNS_SYNC_TEMP;

		if (dns_sync_new(&d, servers, 100, err, sizeof(err)) == 0) {
			st = dns_sync_lookup(d, "pass.test", DNS_SYNC_TXT, &r);
			dns_sync_result_free(&r);
			dns_sync_free(&d);
		}
		if (st == DNS_SYNC_OK)
			break;
		usleep(50000);
	}
	test_dns_sync(servers);

	if (!tap_ok(spf_new(&spf, servers, "mx.ringmta.test", 1000, err, sizeof(err)) == 0,
		    "spf_new: %s", err)) {
		test_stop_dnsmasq();
		return tap_done();
	}
	spf_is(spf, "127.0.0.2", "client.test", "a@pass.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.9", "client.test", "a@pass.test", SPF_RES_FAIL);
	spf_is(spf, "::ffff:127.0.0.2", "client.test", "a@pass.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.9", "client.test", "a@soft.test", SPF_RES_SOFTFAIL);
	spf_is(spf, "127.0.0.9", "client.test", "a@neutral.test", SPF_RES_NEUTRAL);
	spf_is(spf, "127.0.0.2", "client.test", "a@inc.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.9", "client.test", "a@inc.test", SPF_RES_FAIL);
	spf_is(spf, "127.0.0.3", "client.test", "a@a.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.3", "client.test", "a@m.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.2", "client.test", "a@m.test", SPF_RES_FAIL);
	spf_is(spf, "127.0.0.2", "client.test", "a@bad.test", SPF_RES_PERMERROR);
	spf_is(spf, "2001:db8::5", "client.test", "a@six.test", SPF_RES_PASS);
	spf_is(spf, "2001:db8::6", "client.test", "a@six.test", SPF_RES_FAIL);
	spf_is(spf, "127.0.0.4", "client.test", "a@long.test", SPF_RES_PASS);
	spf_is(spf, "127.0.0.2", "client.test", "a@nospf.test", SPF_RES_NONE);
	spf_is(spf, "127.0.0.2", "client.test", "a@nxdomain.test", SPF_RES_NONE);
	/* The null sender: the HELO identity. */
	spf_is(spf, "127.0.0.5", "helo.test", "", SPF_RES_PASS);
	spf_is(spf, "127.0.0.6", "helo.test", "", SPF_RES_FAIL);
	{
		struct sockaddr_storage ss = test_addr("127.0.0.7");
		char why[256];

		spf_check(spf, (struct sockaddr *)&ss, "c.test", "x@exp.test", why, sizeof(why));
		tap_ok(strstr(why, "127.0.0.7 is not allowed to send mail for exp.test") != NULL,
		       "fail explained: %s", why);
	}
	spf_free(&spf);
	test_stop_dnsmasq();

	/* A server that does not answer: temperror, within the timeouts. */
	if (tap_ok(spf_new(&spf, servers, "mx.ringmta.test", 200, err, sizeof(err)) == 0,
		   "spf_new: %s", err)) {
		spf_is(spf, "127.0.0.2", "client.test", "a@pass.test", SPF_RES_TEMPERROR);
		spf_free(&spf);
	}
	tap_ok(spf_new(&spf, "not-an-ip", "h", 200, err, sizeof(err)) < 0, "bad server list: %s",
	       err);
	test_slow_dns();
	return tap_done();
}
