/*
 * test_smtp_client_bind: the bind of an outbound connection to a source
 * (core/outbound/smtp_client_bind.c): a source's own address (loopback
 * aliases: all of 127.0.0.0/8 is local on Linux), a source of the other
 * family, an address that is not this host's (named with the source in
 * the error), and without a source the configured smtp_bind_address.
 */
#include "core/outbound/smtp_client.h"
#include "core/shaping/shp_rules.h"
#include "tests/unit/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

static struct shp_source test_src(const char *name, int family, const char *addr)
{
	struct shp_source s = { .ss_name = name };

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&s.ss_addr;

		in->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &in->sin_addr);
		s.ss_addrlen = sizeof(*in);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s.ss_addr;

		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &in6->sin6_addr);
		s.ss_addrlen = sizeof(*in6);
	}
	return s;
}

/* The local address fd is bound to, as text. */
static const char *test_local(int fd, char *buf, size_t len)
{
	struct sockaddr_in in;
	socklen_t sl = sizeof(in);

	buf[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&in, &sl) == 0)
		inet_ntop(AF_INET, &in.sin_addr, buf, (socklen_t)len);
	return buf;
}

int main(void)
{
	struct config cfg;
	struct shp_source a = test_src("alpha", AF_INET, "127.0.0.2"),
			  far = test_src("far", AF_INET, "192.0.2.1"),
			  six = test_src("six", AF_INET6, "::1"),
			  dflt = test_src("default", AF_UNSPEC, NULL);
	char err[256], local[64];
	int fd, rc;

	config_defaults(&cfg);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = smtp_client_bind_source(&cfg, &a, fd, AF_INET, err, sizeof(err));
	tap_ok(rc == 1, "a source's address is bound (%d)", rc);
	tap_ok(strcmp(test_local(fd, local, sizeof(local)), "127.0.0.2") == 0,
	       "bound to the source's address (%s)", local);
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	err[0] = '\0';
	rc = smtp_client_bind_source(&cfg, &far, fd, AF_INET, err, sizeof(err));
	tap_ok(rc == -EADDRNOTAVAIL, "an address not of this host: -EADDRNOTAVAIL (%d)", rc);
	tap_ok(strstr(err, "far") != NULL && strstr(err, "192.0.2.1") != NULL,
	       "the error names the source and its address: %s", err);
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = smtp_client_bind_source(&cfg, &six, fd, AF_INET, err, sizeof(err));
	tap_ok(rc == -EAFNOSUPPORT, "a source of the other family: -EAFNOSUPPORT (%d)", rc);
	tap_ok(strstr(err, "six") != NULL, "named: %s", err);
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	tap_ok(smtp_client_bind_source(&cfg, NULL, fd, AF_INET, err, sizeof(err)) == 0 &&
	       smtp_client_bind_source(&cfg, &dflt, fd, AF_INET, err, sizeof(err)) == 0,
	       "no source (or one without an address) and no smtp_bind_address: nothing bound");
	close(fd);

	config_free(&cfg);
	config_defaults(&cfg);
	tap_ok(config_set(&cfg, "smtp_bind_address", "127.0.0.3", err, sizeof(err)) == 0,
	       "smtp_bind_address = 127.0.0.3");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = smtp_client_bind_source(&cfg, &dflt, fd, AF_INET, err, sizeof(err));
	tap_ok(rc == 1 && strcmp(test_local(fd, local, sizeof(local)), "127.0.0.3") == 0,
	       "a source without an address takes smtp_bind_address (%s)", local);
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = smtp_client_bind_source(&cfg, &a, fd, AF_INET, err, sizeof(err));
	tap_ok(rc == 1 && strcmp(test_local(fd, local, sizeof(local)), "127.0.0.2") == 0,
	       "a source's own address wins over smtp_bind_address (%s)", local);
	close(fd);
	config_free(&cfg);
	return tap_done();
}
