/*
 * smtp_client_open.c: opening an outbound session (see smtp_client.h):
 * the route's candidates (host, address) in order, the source bound,
 * the connect started on the worker's ring. The session itself is
 * smtp_client.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/outbound/smtp_client_internal.h"
#include "core/base/log.h"
#include "core/shaping/shp_rules.h"
#include "core/wire/smtp_reply.h"
#include "tls/tls.h"

/* The n-th (host, address) pair of the route, or false past the end. */
bool cl_candidate(const struct smtp_route *rt, unsigned n,
			 const struct dns_host **h_r, const struct sockaddr_storage **a_r)
{
	for (unsigned i = 0; i < rt->rt_dns.dr_nhosts; i++) {
		const struct dns_host *h = &rt->rt_dns.dr_hosts[i];

		if (n < h->dh_naddr) {
			*h_r = h;
			*a_r = &h->dh_addr[n];
			return true;
		}
		n -= h->dh_naddr;
	}
	return false;
}


struct smtp_client *cl_open(struct smtp_client_env *env, void *dest,
				   struct smtp_route *rt, unsigned candidate, uint8_t policy,
				   const struct cl_path *path)
{
	const struct dns_host *h;
	const struct sockaddr_storage *a;
	struct smtp_client *c;
	char ip[INET6_ADDRSTRLEN] = "?";
	socklen_t len;
	int fd, one = 1, rc;

	/* A source of one family cannot reach the other's addresses. */
	while (cl_candidate(rt, candidate, &h, &a) && path->cp_source != NULL &&
	       path->cp_source->ss_addrlen != 0 &&
	       path->cp_source->ss_addr.ss_family != a->ss_family)
		candidate++;
	if (!cl_candidate(rt, candidate, &h, &a)) {
		if (candidate > 0 && path->cp_source != NULL && path->cp_source->ss_addrlen != 0) {
			char why[300];

			snprintf(why, sizeof(why), "no address of the next hop is of source %s's"
				 " address family", path->cp_source->ss_name);
			if (env->ce_ops->source_failed != NULL)
				env->ce_ops->source_failed(env->ce_ctx, dest, -EAFNOSUPPORT, why);
			else
				env->ce_ops->failed(env->ce_ctx, dest, "4.4.4", why);
		}
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->c_env = env;
	c->c_dest = dest;
	c->c_route = rt;
	rt->rt_refs++;
	c->c_candidate = candidate;
	c->c_opening = true;
	c->c_sa = *a;
	if (a->ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&c->c_sa;

		in->sin_port = htons(rt->rt_port);
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->c_sa;

		in6->sin6_port = htons(rt->rt_port);
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		len = sizeof(*in6);
	}
	/* "mx.example[192.0.2.1]:25"; an address literal is its own name. */
	if (h->dh_name[0] == '[')
		snprintf(c->c_remote, sizeof(c->c_remote), "[%s]:%u", ip, rt->rt_port);
	else
		snprintf(c->c_remote, sizeof(c->c_remote), "%s[%s]:%u", h->dh_name, ip,
			 rt->rt_port);
	snprintf(c->c_host, sizeof(c->c_host), "%s", h->dh_name);
	c->c_policy = policy;
	c->c_path = *path;
	smtp_reply_parser_init(&c->c_rp);
	c->c_sent = true;	/* the connect: the greeting is its reply */
	env->ce_nclients++;
	fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		/* Without a socket we cannot even try: report as a failure
		 * of this destination now. */
		snprintf(c->c_error, sizeof(c->c_error), "socket: %s", strerror(errno));
		env->ce_ops->failed(env->ce_ctx, dest, "4.3.0", c->c_error);
		smtp_route_unref(rt);
		env->ce_nclients--;
		free(c);
		return NULL;
	}
	if ((rc = smtp_client_bind_source(env->ce_cfg, path->cp_source, fd, a->ss_family,
					  c->c_error, sizeof(c->c_error))) < 0) {
		/* Checked at start: the address went away since. A source of
		 * the rules is the owner's to take out of service. */
		close(fd);
		if (path->cp_source != NULL && env->ce_ops->source_failed != NULL)
			env->ce_ops->source_failed(env->ce_ctx, dest, rc, c->c_error);
		else
			env->ce_ops->failed(env->ce_ctx, dest, "4.3.0", c->c_error);
		smtp_route_unref(rt);
		env->ce_nclients--;
		free(c);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	smtp_creds_ref(c->c_path.cp_creds);	/* ours now; cl_on_free lets go */
	c->c_all_next = env->ce_clients;
	if (env->ce_clients != NULL)
		env->ce_clients->c_all_prev = c;
	env->ce_clients = c;
	io_conn_connect(env->ce_loop, &c->c_conn, fd, (struct sockaddr *)&c->c_sa, len, &cl_conn_ops);
	io_conn_set_deadline(&c->c_conn, c->c_path.cp_connect_s);
	return c;
}

/* Milliseconds to whole seconds for the loop's deadlines (never 0). */
static unsigned cl_ms_to_s(uint32_t ms, unsigned dflt)
{
	return ms == 0 ? dflt : ms < 1000 ? 1 : (ms + 999) / 1000;
}

struct smtp_client *smtp_client_open(struct smtp_client_env *env, void *dest,
				     struct smtp_route *rt, unsigned candidate,
				     const char *policy_host, const struct smtp_client_path *p)
{
	const struct config *cfg = env->ce_cfg;
	struct smtp_client *c;
	struct cl_path path;
	char perr[8];
	int pol = config_tls_policy_lookup(cfg->smtp_tls_policy_map, policy_host, perr,
					   sizeof(perr));

	if (pol < 0)
		pol = config_tls_policy_parse(cfg->smtp_tls_policy);
	memset(&path, 0, sizeof(path));
	path.cp_source = p != NULL ? p->cp_source : NULL;
	snprintf(path.cp_ehlo, sizeof(path.cp_ehlo), "%s",
		 p != NULL && p->cp_ehlo != NULL && p->cp_ehlo[0] ? p->cp_ehlo : cfg->hostname);
	path.cp_max_msgs = cfg->smtp_reuse_limit;
	if (p != NULL && p->cp_max_msgs != 0 && p->cp_max_msgs < path.cp_max_msgs)
		path.cp_max_msgs = p->cp_max_msgs;
	path.cp_idle_s = cl_ms_to_s(p != NULL ? p->cp_idle_timeout_ms : 0, cfg->smtp_idle_timeout);
	path.cp_connect_s = cl_ms_to_s(p != NULL ? p->cp_connect_timeout_ms : 0,
				       cfg->smtp_connect_timeout);
	/* The path's TLS policy: "required" raises a weaker one (a verify
	 * in the map stays verify), "disabled" never starts TLS. */
	if (p != NULL && p->cp_tls == SHP_TLS_REQUIRED) {
		if (pol < CONFIG_TLS_ENCRYPT)
			pol = CONFIG_TLS_ENCRYPT;
		path.cp_tls_required = true;
	} else if (p != NULL && p->cp_tls == SHP_TLS_DISABLED) {
		pol = CONFIG_TLS_NONE;
	}
	/* A wrapper-mode port speaks nothing but TLS: no cleartext to fall
	 * back to, so at least "encrypt" ("verify" stays). */
	if (config_port_in_list(cfg->smtp_tls_wrappermode_ports, rt->rt_port, perr,
				sizeof(perr)) == 1) {
		path.cp_implicit_tls = true;
		if (pol < CONFIG_TLS_ENCRYPT)
			pol = CONFIG_TLS_ENCRYPT;
	}
	path.cp_creds = smtp_creds_holder_get(env->ce_creds);
	path.cp_cred = smtp_creds_find(path.cp_creds, policy_host, rt->rt_port);
	c = cl_open(env, dest, rt, candidate, (uint8_t)pol, &path);
	smtp_creds_unref(&path.cp_creds);	/* the session took its own */
	return c;
}
