/*
 * delivery_dest_route.c: a destination's route resolved (DNS, or the
 * relayhost): checked against this host's own addresses (a loop) and the
 * private ranges, then sessions opened on it (dlv_dest_open). See
 * delivery_internal.h.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/delivery/delivery_internal.h"
#include "core/base/log.h"

#define DLV_IFADDRS_MAX 64

/* The machine's interface addresses, when a wildcard listener needs them
 * for the loop check (read per route, so a new address counts). */
static unsigned dlv_local_addrs(const struct config *cfg, struct sockaddr_storage *out,
				unsigned max)
{
	struct ifaddrs *ifa, *i;
	bool wildcard = false;
	unsigned n = 0;

	for (unsigned k = 0; k < cfg->listen_count; k++) {
		const struct sockaddr_storage *l = &cfg->listen[k].cl_addr;

		if ((l->ss_family == AF_INET &&
		     ((const struct sockaddr_in *)l)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
		    (l->ss_family == AF_INET6 &&
		     IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)l)->sin6_addr)))
			wildcard = true;
	}
	if (!wildcard || getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i != NULL && n < max; i = i->ifa_next) {
		if (i->ifa_addr == NULL ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n], i->ifa_addr, i->ifa_addr->sa_family == AF_INET ?
		       sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		n++;
	}
	freeifaddrs(ifa);
	return n;
}

/* The route is known: open sessions for the waiting jobs. */
void dlv_dest_on_route(void *ctx, const struct dns_route *r)
{
	struct dlv_dest *d = ctx;
	struct dlv_worker *w = d->dd_w;
	const struct config *cfg = w->w_cfg;
	struct smtp_route *rt;

	d->dd_resolving = false;
	if (r->dr_status != DNS_OK) {
		bool perm = r->dr_status == DNS_NULL_MX || r->dr_status == DNS_NXDOMAIN;

		log_msg(LOG_INFO, "delivery: %s: %s", d->dd_name, r->dr_error);
		if (perm || d->dd_nconns == 0)
			dlv_dest_fail_queued(w, d, perm ? DLV_R_FAILED : DLV_R_DEFERRED,
					     r->dr_status == DNS_NULL_MX ? "5.1.10" :
					     r->dr_status == DNS_NXDOMAIN ? "5.1.2" : "4.4.3",
					     r->dr_error, false, 0);
		return;
	}
	dlv_shp_from_route(w, d, r);
	rt = malloc(sizeof(*rt));
	if (rt == NULL) {
		if (d->dd_nconns == 0)
			dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, "4.3.0", "out of memory", false,
					     0);
		return;
	}
	rt->rt_refs = 1;
	rt->rt_port = d->dd_port;
	rt->rt_dns = *r;
	{
		struct sockaddr_storage ifs[DLV_IFADDRS_MAX];
		unsigned nifs = dlv_local_addrs(cfg, ifs, DLV_IFADDRS_MAX);
		/* The operator's relayhost is trusted with private addresses. */
		bool trusted = cfg->relayhost != NULL && cfg->relayhost[0] != '\0' &&
			       strcasecmp(d->dd_name, cfg->relayhost) == 0;
		char why[400];

		switch (dlv_route_filter(cfg, trusted, d->dd_port, &rt->rt_dns, ifs, nifs)) {
		case DLV_ROUTE_OK:
			break;
		case DLV_ROUTE_LOOP:
			snprintf(why, sizeof(why), "mail for %s loops back to myself", d->dd_name);
			log_msg(LOG_INFO, "delivery: %s", why);
			dlv_dest_fail_queued(w, d, DLV_R_FAILED, "5.4.6", why, false, 0);
			free(rt);
			return;
		case DLV_ROUTE_PRIVATE:
			snprintf(why, sizeof(why), "no deliverable address for %s: its mail hosts"
				 " have only loopback, private or link-local addresses"
				 " (smtp_allow_private_destinations = no)", d->dd_name);
			log_msg(LOG_INFO, "delivery: %s", why);
			dlv_dest_fail_queued(w, d, DLV_R_FAILED, "5.4.4", why, false, 0);
			free(rt);
			return;
		default:
			snprintf(why, sizeof(why), "no address to deliver to for %s", d->dd_name);
			if (d->dd_nconns == 0)
				dlv_dest_fail_queued(w, d, DLV_R_DEFERRED, "4.4.4", why, false, 0);
			free(rt);
			return;
		}
	}
	dlv_dest_open(w, d, rt);
	smtp_route_unref(rt);
}

/* Open sessions on rt for the waiting jobs, as the path allows. */
