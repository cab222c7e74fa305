/*
 * smtp_client_srccheck.c: the start-up (and --check) test of the shaping
 * rules' sources: each source address is bound once, as a delivery
 * would, to see that it is one of this host's. A source that is not is
 * reported and taken out of service; the others go on working.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/outbound/smtp_client.h"
#include "core/shaping/shp_source.h"

int smtp_client_check_sources(const struct config *cfg, const struct shp_rules *r,
			      struct shp_src_state *st, char *err, size_t errlen)
{
	unsigned n = shp_rules_nsources(r), bad = 0;
	size_t used = 0;

	if (errlen > 0)
		err[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		const struct shp_source *src = shp_rules_source(r, i);
		char one[256] = "";
		int fd, rc;

		if (src->ss_addrlen == 0)
			continue;
		fd = socket(src->ss_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			snprintf(one, sizeof(one), "source %s: socket: %s", src->ss_name,
				 strerror(errno));
		} else {
			rc = smtp_client_bind_source(cfg, src, fd, src->ss_addr.ss_family, one,
						     sizeof(one));
			close(fd);
		}
		if (rc >= 0)
			continue;
		bad++;
		if (st != NULL)
			shp_src_bind_failed(st, src, -rc);
		if (used < errlen)
			used += (size_t)snprintf(err + used, errlen - used, "%s%s%s", used ? "\n" : "",
						 one, rc == -EADDRNOTAVAIL ?
						 " (not an address of this host)" : "");
	}
	return (int)bad;
}
