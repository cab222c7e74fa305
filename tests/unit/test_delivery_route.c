/*
 * Unit tests for core/delivery_route.c: which addresses are private,
 * which address:port reaches one of our own listeners (specific and
 * wildcard), and how a route is cut down (ourselves and MX hosts not
 * better than us dropped; private addresses dropped unless trusted or
 * allowed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/config/config.h"
#include "core/delivery/delivery_internal.h"
#include "tests/unit/tap.h"

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, ip, &in->sin_addr);
	}
	return ss;
}

static void listen_on(struct config *cfg, const char *ip, uint16_t port)
{
	cfg->listen[cfg->listen_count].cl_addr = addr(ip, port);
	cfg->listen_count++;
}

static void host(struct dns_route *r, const char *name, uint16_t pref, const char *ip)
{
	struct dns_host *h = &r->dr_hosts[r->dr_nhosts++];

	memset(h, 0, sizeof(*h));
	snprintf(h->dh_name, sizeof(h->dh_name), "%s", name);
	h->dh_pref = pref;
	h->dh_naddr = 1;
	h->dh_addr[0] = addr(ip, 0);
}

static void test_private(void)
{
	static const struct { const char *ip; bool priv; } t[] = {
		{ "127.0.0.1", true }, { "127.1.2.3", true }, { "10.0.0.1", true },
		{ "172.16.0.1", true }, { "172.31.255.255", true }, { "172.32.0.1", false },
		{ "192.168.1.1", true }, { "169.254.169.254", true }, { "0.0.0.0", true },
		{ "100.64.0.1", true }, { "224.0.0.1", true }, { "255.255.255.255", true },
		{ "192.0.2.1", false }, { "8.8.8.8", false }, { "11.0.0.1", false },
		{ "::1", true }, { "::", true }, { "fc00::1", true }, { "fd12::1", true },
		{ "fe80::1", true }, { "ff02::1", true }, { "::ffff:127.0.0.1", true },
		{ "::ffff:10.1.1.1", true }, { "::ffff:192.0.2.1", false },
		{ "2001:db8::1", false }, { "2a00:1450::1", false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sockaddr_storage a = addr(t[i].ip, 0);

		tap_ok(dlv_addr_private(&a) == t[i].priv, "%s is %s", t[i].ip,
		       t[i].priv ? "private" : "public");
	}
}

static void test_self(void)
{
	struct config cfg;
	struct sockaddr_storage ifs[2] = { addr("192.0.2.7", 0), addr("2001:db8::7", 0) };
	struct sockaddr_storage a;

	memset(&cfg, 0, sizeof(cfg));
	listen_on(&cfg, "127.0.0.1", 2525);
	listen_on(&cfg, "192.0.2.9", 25);
	a = addr("127.0.0.1", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 2525, ifs, 2), "own address and port");
	tap_ok(!dlv_addr_self(&cfg, &a, 25, ifs, 2), "own address, other port");
	a = addr("127.0.0.2", 0);
	tap_ok(!dlv_addr_self(&cfg, &a, 2525, ifs, 2), "127.0.0.2 does not reach 127.0.0.1");
	a = addr("::ffff:127.0.0.1", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 2525, ifs, 2), "v4-mapped own address");
	a = addr("0.0.0.0", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 2525, ifs, 2), "0.0.0.0 connects to loopback");
	a = addr("192.0.2.9", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), "a specific listener");
	a = addr("192.0.2.7", 0);
	tap_ok(!dlv_addr_self(&cfg, &a, 25, ifs, 2), "an interface address, no wildcard");

	memset(&cfg, 0, sizeof(cfg));
	listen_on(&cfg, "0.0.0.0", 25);
	a = addr("192.0.2.7", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), "wildcard: an interface address");
	a = addr("127.0.0.5", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), "wildcard: any of 127/8");
	a = addr("192.0.2.8", 0);
	tap_ok(!dlv_addr_self(&cfg, &a, 25, ifs, 2), "wildcard: another machine");
	a = addr("2001:db8::7", 0);
	tap_ok(!dlv_addr_self(&cfg, &a, 25, ifs, 2), "0.0.0.0 does not take IPv6");
	memset(&cfg, 0, sizeof(cfg));
	listen_on(&cfg, "::", 25);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), ":: takes an IPv6 interface address");
	a = addr("::1", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), ":: takes ::1");
	a = addr("192.0.2.7", 0);
	tap_ok(dlv_addr_self(&cfg, &a, 25, ifs, 2), ":: takes IPv4 too");
}

static void test_filter(void)
{
	struct config cfg;
	struct dns_route r;

	memset(&cfg, 0, sizeof(cfg));
	listen_on(&cfg, "127.0.0.1", 25);

	memset(&r, 0, sizeof(r));
	host(&r, "a", 10, "192.0.2.1");
	host(&r, "me", 20, "127.0.0.1");
	host(&r, "b", 20, "192.0.2.2");
	host(&r, "c", 30, "192.0.2.3");
	tap_ok(dlv_route_filter(&cfg, false, 25, &r, NULL, 0) == DLV_ROUTE_OK &&
	       r.dr_nhosts == 1 && strcmp(r.dr_hosts[0].dh_name, "a") == 0,
	       "hosts not better than ourselves are dropped");

	memset(&r, 0, sizeof(r));
	host(&r, "me", 10, "127.0.0.1");
	host(&r, "b", 20, "192.0.2.2");
	tap_ok(dlv_route_filter(&cfg, true, 25, &r, NULL, 0) == DLV_ROUTE_LOOP,
	       "best MX is ourselves: loop, even when trusted");

	memset(&r, 0, sizeof(r));
	host(&r, "me", 10, "127.0.0.1");
	tap_ok(dlv_route_filter(&cfg, false, 2525, &r, NULL, 0) == DLV_ROUTE_PRIVATE,
	       "loopback on another port: private, not a loop");

	memset(&r, 0, sizeof(r));
	host(&r, "p", 10, "10.0.0.1");
	host(&r, "q", 20, "192.0.2.2");
	tap_ok(dlv_route_filter(&cfg, false, 25, &r, NULL, 0) == DLV_ROUTE_OK &&
	       r.dr_nhosts == 1 && strcmp(r.dr_hosts[0].dh_name, "q") == 0,
	       "a private MX host is skipped, the public one kept");

	memset(&r, 0, sizeof(r));
	host(&r, "p", 10, "10.0.0.1");
	tap_ok(dlv_route_filter(&cfg, true, 25, &r, NULL, 0) == DLV_ROUTE_OK &&
	       r.dr_nhosts == 1, "a trusted (relayhost) route keeps private addresses");

	memset(&r, 0, sizeof(r));
	host(&r, "p", 10, "10.0.0.1");
	cfg.smtp_allow_private_destinations = true;
	tap_ok(dlv_route_filter(&cfg, false, 25, &r, NULL, 0) == DLV_ROUTE_OK &&
	       r.dr_nhosts == 1, "smtp_allow_private_destinations keeps them");
}

int main(void)
{
	test_private();
	test_self();
	test_filter();
	return tap_done();
}
