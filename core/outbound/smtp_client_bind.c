/*
 * smtp_client_bind.c: the source addresses of outbound connections
 * (smtp_bind_address for IPv4 destinations, smtp_bind_address6 for IPv6
 * ones, as Postfix names them): the bind() before connect, and the
 * start-up check that each configured address is one of this host's.
 * One address per family; pools of source addresses are not here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/outbound/smtp_client.h"

int smtp_client_source(const struct config *cfg, int family, struct sockaddr_storage *ss_r,
		       socklen_t *len_r)
{
	const char *a = family == AF_INET6 ? cfg->smtp_bind_address6 : cfg->smtp_bind_address;

	memset(ss_r, 0, sizeof(*ss_r));
	if (a == NULL || a[0] == '\0')
		return 0;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss_r;

		in->sin_family = AF_INET;
		if (inet_pton(AF_INET, a, &in->sin_addr) != 1)
			return -EINVAL;
		*len_r = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss_r;

		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, a, &in6->sin6_addr) != 1)
			return -EINVAL;
		*len_r = sizeof(*in6);
	}
	return 1;
}

int smtp_client_bind_source(const struct config *cfg, int fd, int family, char *err,
			    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int one = 1, rc = smtp_client_source(cfg, family, &ss, &len);

	if (rc <= 0)
		return rc;
	/* The port comes with connect(), so that one source address does
	 * not run out of ports for every destination at once. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "bind to %s %s: %s",
			 family == AF_INET6 ? "smtp_bind_address6" : "smtp_bind_address",
			 family == AF_INET6 ? cfg->smtp_bind_address6 : cfg->smtp_bind_address,
			 strerror(errno));
		return rc;
	}
	return 1;
}

int smtp_client_check_bind(const struct config *cfg, char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (unsigned i = 0; i < 2; i++) {
		int fd = socket(families[i], SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

		if (smtp_client_source(cfg, families[i], &(struct sockaddr_storage){ 0 },
				       &(socklen_t){ 0 }) == 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (fd < 0) {
			snprintf(err, errlen, "%s: socket: %s",
				 i ? "smtp_bind_address6" : "smtp_bind_address", strerror(errno));
			return -1;
		}
		rc = smtp_client_bind_source(cfg, fd, families[i], err, errlen);
		close(fd);
		if (rc < 0) {
			if (rc == -EADDRNOTAVAIL)
				snprintf(err + strlen(err), errlen - strlen(err),
					 " (not an address of this host)");
			return -1;
		}
	}
	return 0;
}
