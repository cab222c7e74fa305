/*
 * test_netacl.c: table-driven tests of core/netacl: parsing (separators,
 * bare addresses, prefix edges, bad tokens), matching of IPv4, IPv6 and
 * IPv4-mapped IPv6 clients, canonical formatting and freeing.
 */
#include "core/config/netacl.h"
#include "tests/unit/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Build a sockaddr_in or sockaddr_in6 from text; false if it is neither. */
static bool test_addr(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(25);
		return true;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(25);
		return true;
	}
	return false;
}

static const struct {
	const char *spec;
	const char *addr;
	bool match;
} test_matches[] = {
	/* IPv4 networks, IPv4 and mapped clients */
	{ "127.0.0.0/8", "127.0.0.1", true },
	{ "127.0.0.0/8", "127.255.255.255", true },
	{ "127.0.0.0/8", "126.255.255.255", false },
	{ "127.0.0.0/8", "128.0.0.0", false },
	{ "127.0.0.0/8", "::ffff:127.0.0.1", true },
	{ "127.0.0.0/8", "::ffff:128.0.0.1", false },
	{ "127.0.0.0/8", "::1", false },
	{ "127.0.0.0/8", "::127.0.0.1", false },	/* compatible, not mapped */
	/* a bare address is /32 or /128 */
	{ "10.1.2.3", "10.1.2.3", true },
	{ "10.1.2.3", "10.1.2.4", false },
	{ "10.1.2.3", "::ffff:10.1.2.3", true },
	{ "::1", "::1", true },
	{ "::1", "::2", false },
	{ "::1", "127.0.0.1", false },
	{ "::1", "::ffff:0.0.0.1", false },
	/* edges: /0, /32, /128 */
	{ "0.0.0.0/0", "1.2.3.4", true },
	{ "0.0.0.0/0", "255.255.255.255", true },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", true },
	{ "0.0.0.0/0", "::1", false },
	{ "0.0.0.0/0", "2001:db8::1", false },
	{ "::/0", "2001:db8::1", true },
	{ "::/0", "::", true },
	{ "::/0", "1.2.3.4", false },
	{ "::/0", "::ffff:1.2.3.4", false },
	{ "0.0.0.0/0, ::/0", "::ffff:1.2.3.4", true },
	{ "0.0.0.0/0 ::/0", "2001:db8::1", true },
	{ "10.1.2.3/32", "10.1.2.3", true },
	{ "10.1.2.3/32", "10.1.2.2", false },
	{ "0.0.0.0/32", "0.0.0.0", true },
	{ "0.0.0.0/32", "0.0.0.1", false },
	{ "255.255.255.255/32", "255.255.255.255", true },
	{ "255.255.255.255/32", "255.255.255.254", false },
	{ "2001:db8::1/128", "2001:db8::1", true },
	{ "2001:db8::1/128", "2001:db8::", false },
	{ "::/128", "::", true },
	{ "::/128", "::1", false },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", false },
	/* /1 splits the space in halves */
	{ "128.0.0.0/1", "128.0.0.0", true },
	{ "128.0.0.0/1", "127.255.255.255", false },
	{ "8000::/1", "8000::", true },
	{ "8000::/1", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false },
	/* prefixes that do not end on a byte */
	{ "192.168.1.0/25", "192.168.1.127", true },
	{ "192.168.1.0/25", "192.168.1.128", false },
	{ "192.168.1.0/31", "192.168.1.1", true },
	{ "192.168.1.0/31", "192.168.1.2", false },
	{ "2001:db8::/33", "2001:db8:7fff::1", true },
	{ "2001:db8::/33", "2001:db8:8000::", false },
	{ "2001:db8::/127", "2001:db8::1", true },
	{ "2001:db8::/127", "2001:db8::2", false },
	{ "2001:db8::/32", "2001:db8:ffff:ffff::1", true },
	{ "2001:db8::/32", "2001:db9::", false },
	/* host bits set are masked off */
	{ "10.1.2.3/8", "10.200.0.1", true },
	{ "10.1.2.3/8", "11.0.0.0", false },
	{ "2001:db8::1/64", "2001:db8::ffff", true },
	{ "2001:db8::1/64", "2001:db8:0:1::", false },
	/* an entry written as a mapped address is an IPv4 entry */
	{ "::ffff:10.0.0.0/104", "10.1.1.1", true },
	{ "::ffff:10.0.0.0/104", "::ffff:10.1.1.1", true },
	{ "::ffff:10.0.0.0/104", "11.0.0.1", false },
	{ "::ffff:10.1.2.3", "10.1.2.3", true },
	{ "::ffff:0.0.0.0/96", "1.2.3.4", true },
	/* lists and separators */
	{ "127.0.0.0/8, ::1/128 10.0.0.0/8", "10.9.9.9", true },
	{ "127.0.0.0/8, ::1/128 10.0.0.0/8", "::1", true },
	{ "127.0.0.0/8, ::1/128 10.0.0.0/8", "127.0.0.2", true },
	{ "127.0.0.0/8, ::1/128 10.0.0.0/8", "192.168.0.1", false },
	{ "  10.0.0.0/8,,\t192.168.0.0/16 , ", "192.168.5.5", true },
	{ "10.0.0.0/8,192.168.0.0/16", "192.168.5.5", true },
	{ "10.0.0.0/8,192.168.0.0/16", "172.16.0.1", false },
	/* empty lists match nothing */
	{ "", "127.0.0.1", false },
	{ " ,, ", "::1", false },
};

static const struct {
	const char *spec;
	const char *bad;	/* the token the message must name */
} test_bad[] = {
	{ "10.0.0.0/33", "'10.0.0.0/33'" },
	{ "::/129", "'::/129'" },
	{ "10.0.0.0/", "'10.0.0.0/'" },
	{ "/8", "'/8'" },
	{ "10.0.0.256", "'10.0.0.256'" },
	{ "10.0.0", "'10.0.0'" },
	{ "10.0.0.0/-1", "'10.0.0.0/-1'" },
	{ "10.0.0.0/+8", "'10.0.0.0/+8'" },
	{ "10.0.0.0/8x", "'10.0.0.0/8x'" },
	{ "10.0.0.0/0008", "'10.0.0.0/0008'" },
	{ "10.0.0.0/8/8", "'10.0.0.0/8/8'" },
	{ "10.0.0.0/99999999999999999999", "'10.0.0.0/99999999999999999999'" },
	{ "hello", "'hello'" },
	{ "localhost", "'localhost'" },
	{ "fe80::1%eth0", "'fe80::1%eth0'" },
	{ "[::1]", "'[::1]'" },
	{ "::1/", "'::1/'" },
	{ "1:2:3:4:5:6:7:8:9", "'1:2:3:4:5:6:7:8:9'" },
	{ "127.0.0.0/8, bogus ::1", "'bogus'" },
	{ "127.0.0.0/8;10.0.0.0/8", "'127.0.0.0/8;10.0.0.0/8'" },
	{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
	  "too long" },
};

static const struct {
	const char *spec;
	const char *canonical;
	size_t count;
} test_formats[] = {
	{ "", "", 0 },
	{ "127.0.0.0/8, ::1", "127.0.0.0/8, ::1/128", 2 },
	{ "10.1.2.3/8 2001:db8::1/64 ::ffff:10.0.0.0/104 1.2.3.4",
	  "10.0.0.0/8, 2001:db8::/64, 10.0.0.0/8, 1.2.3.4/32", 4 },
	{ "0.0.0.0/0,::/0", "0.0.0.0/0, ::/0", 2 },
	{ "192.168.1.77/25", "192.168.1.0/25", 1 },
};

static void test_match_table(void)
{
	struct sockaddr_storage ss;
	struct netacl *acl;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(test_matches) / sizeof(test_matches[0]); i++) {
		acl = NULL;
		rc = netacl_parse(test_matches[i].spec, &acl, err, sizeof(err));
		if (!tap_ok(rc == 0 && acl != NULL, "parse '%s'",
			    test_matches[i].spec)) {
			printf("# %s\n", err);
			continue;
		}
		if (!test_addr(test_matches[i].addr, &ss)) {
			tap_ok(0, "test address '%s' parses",
			       test_matches[i].addr);
			netacl_free(&acl);
			continue;
		}
		tap_ok(netacl_match(acl, (struct sockaddr *)&ss) ==
		       test_matches[i].match, "'%s' %s '%s'",
		       test_matches[i].spec,
		       test_matches[i].match ? "matches" : "does not match",
		       test_matches[i].addr);
		netacl_free(&acl);
	}
}

static void test_bad_table(void)
{
	struct netacl *acl, *const sentinel = (struct netacl *)&acl;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(test_bad) / sizeof(test_bad[0]); i++) {
		acl = sentinel;
		strcpy(err, "(unset)");
		rc = netacl_parse(test_bad[i].spec, &acl, err, sizeof(err));
		tap_ok(rc == -EINVAL, "'%s' is rejected with -EINVAL",
		       test_bad[i].spec);
		tap_ok(acl == sentinel, "'%s' leaves *acl_r alone",
		       test_bad[i].spec);
		if (!tap_ok(strstr(err, test_bad[i].bad) != NULL,
			    "'%s': message names %s", test_bad[i].spec,
			    test_bad[i].bad))
			printf("# got: %s\n", err);
	}

	/* A zero-sized error buffer is allowed. */
	acl = sentinel;
	rc = netacl_parse("bogus", &acl, NULL, 0);
	tap_ok(rc == -EINVAL && acl == sentinel, "errlen 0 is accepted");

	/* A message is cut, not overrun, in a small buffer. */
	memset(err, 'x', sizeof(err));
	rc = netacl_parse("10.0.0.0/33", &acl, err, 8);
	tap_ok(rc == -EINVAL && strlen(err) == 7 && err[8] == 'x',
	       "message is truncated to the buffer");
}

static void test_format_table(void)
{
	struct netacl *acl, *again;
	char buf[256], buf2[256], small[8];
	size_t i;
	int n;

	for (i = 0; i < sizeof(test_formats) / sizeof(test_formats[0]); i++) {
		acl = NULL;
		if (!tap_ok(netacl_parse(test_formats[i].spec, &acl, buf,
					 sizeof(buf)) == 0,
			    "parse '%s'", test_formats[i].spec))
			continue;
		tap_ok(netacl_count(acl) == test_formats[i].count,
		       "'%s' has %zu entries", test_formats[i].spec,
		       test_formats[i].count);
		n = netacl_format(acl, buf, sizeof(buf));
		if (!tap_ok(n == (int)strlen(test_formats[i].canonical) &&
			    strcmp(buf, test_formats[i].canonical) == 0,
			    "'%s' prints as '%s'", test_formats[i].spec,
			    test_formats[i].canonical))
			printf("# got '%s' (%d)\n", buf, n);

		/* The canonical text parses back to the same list. */
		again = NULL;
		tap_ok(netacl_parse(buf, &again, buf2, sizeof(buf2)) == 0 &&
		       netacl_format(again, buf2, sizeof(buf2)) == n &&
		       strcmp(buf, buf2) == 0, "'%s' round-trips", buf);
		netacl_free(&again);

		/* snprintf rules: full length back, output cut and ended. */
		memset(small, 'x', sizeof(small));
		n = netacl_format(acl, small, 4);
		tap_ok(n == (int)strlen(test_formats[i].canonical) &&
		       strlen(small) == (n < 4 ? (size_t)n : 3) &&
		       small[4] == 'x', "'%s' truncates like snprintf",
		       test_formats[i].spec);
		tap_ok(netacl_format(acl, NULL, 0) ==
		       (int)strlen(test_formats[i].canonical),
		       "'%s' measures with a NULL buffer",
		       test_formats[i].spec);
		netacl_free(&acl);
	}
}

static void test_misc(void)
{
	struct netacl *acl = NULL;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	char err[128];

	tap_ok(netacl_parse(NULL, &acl, err, sizeof(err)) == 0 &&
	       netacl_count(acl) == 0, "NULL spec is an empty list");
	netacl_free(&acl);

	tap_ok(netacl_parse("0.0.0.0/0, ::/0", &acl, err, sizeof(err)) == 0,
	       "parse the everything list");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	tap_ok(!netacl_match(acl, (struct sockaddr *)&sun),
	       "an AF_UNIX address never matches");
	tap_ok(!netacl_match(acl, NULL), "a NULL address never matches");
	test_addr("1.2.3.4", &ss);
	tap_ok(!netacl_match(NULL, (struct sockaddr *)&ss),
	       "a NULL list matches nothing");
	tap_ok(netacl_count(NULL) == 0, "a NULL list has no entries");

	netacl_free(&acl);
	tap_ok(acl == NULL, "netacl_free sets the pointer to NULL");
	netacl_free(&acl);
	tap_ok(acl == NULL, "netacl_free of NULL is harmless");
	netacl_free(NULL);
}

int main(void)
{
	test_match_table();
	test_bad_table();
	test_format_table();
	test_misc();
	return tap_done();
}
