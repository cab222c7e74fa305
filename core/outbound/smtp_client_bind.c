/*
 * smtp_client_bind.c: the source addresses of outbound connections
 * (smtp_bind_address for IPv4 destinations, smtp_bind_address6 for IPv6
 * ones, as Postfix names them): the bind() before connect, and the
 * start-up check that each configured address is one of this host's;
 * and the bind of a source of the shaping rules (shp_rules.h), a local
 * address with its own EHLO name each, which the delivery engine picks
 * per message (shp_source.h). A source is bound as given or not at all:
 * never replaced by the default address. The start-up check of the
 * sources is in smtp_client_srccheck.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/outbound/smtp_client.h"
#include "core/shaping/shp_rules.h"

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

/* Whether src names an address (the rules' "default" source may not). */
static bool smtp_client_src_set(const struct shp_source *src)
{
	return src != NULL && src->ss_addrlen != 0 &&
	       (src->ss_addr.ss_family == AF_INET || src->ss_addr.ss_family == AF_INET6);
}

/* "127.0.0.2" of a source, for messages. */
static void smtp_client_src_str(const struct shp_source *src, char *out, size_t len)
{
	const struct sockaddr_storage *ss = &src->ss_addr;
	const void *a = ss->ss_family == AF_INET6 ?
			(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
			(const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, out, (socklen_t)len) == NULL)
		snprintf(out, len, "?");
}

int smtp_client_bind_source(const struct config *cfg, const struct shp_source *src, int fd,
			    int family, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int one = 1, rc;
	char addr[INET6_ADDRSTRLEN];

	if (smtp_client_src_set(src)) {
		if (src->ss_addr.ss_family != family) {
			smtp_client_src_str(src, addr, sizeof(addr));
			snprintf(err, errlen, "source %s (%s) is not of the destination's family",
				 src->ss_name, addr);
			return -EAFNOSUPPORT;
		}
		memcpy(&ss, &src->ss_addr, sizeof(ss));
		len = src->ss_addrlen;
		rc = 1;
	} else {
		rc = smtp_client_source(cfg, family, &ss, &len);
		if (rc <= 0)
			return rc;
	}
	/* The port comes with connect(), so that one source address does
	 * not run out of ports for every destination at once. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		if (smtp_client_src_set(src)) {
			smtp_client_src_str(src, addr, sizeof(addr));
			snprintf(err, errlen, "bind to source %s address %s: %s", src->ss_name,
				 addr, strerror(errno));
		} else {
			snprintf(err, errlen, "bind to %s %s: %s",
				 family == AF_INET6 ? "smtp_bind_address6" : "smtp_bind_address",
				 family == AF_INET6 ? cfg->smtp_bind_address6 :
				 cfg->smtp_bind_address, strerror(errno));
		}
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
		rc = smtp_client_bind_source(cfg, NULL, fd, families[i], err, errlen);
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
