/*
 * dns_sock.c: the glue between c-ares and the worker's io_loop. c-ares
 * reports the sockets it opens, changes and closes (dns_sock_state); each
 * gets an io_watch, whose readiness is handed back to ares_process_fd.
 * Owns the watch slots of a struct dns (d_socks): reused, never freed
 * while the loop may still complete their poll, freed by dns_destroy.
 */
#include "core/dns/dns_internal.h"

#include <poll.h>
#include <stdlib.h>

#include "io/loop.h"

/* One c-ares socket. Never freed while the loop may complete its poll:
 * slots are reused, and freed only by dns_destroy. */
struct dns_sock {
	struct io_watch ds_watch;	/* first: 16-byte aligned */
	struct dns *ds_dns;
	ares_socket_t ds_fd;
	bool ds_used;
};

static void dns_sock_ready(struct io_watch *w, unsigned revents)
{
	struct dns_sock *s = w->iw_ctx;
	ares_socket_t fd = (ares_socket_t)w->iw_fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	/* An error goes to both sides: c-ares sees it on its next read or
	 * write and gives up on that server. */
	if (revents & (POLLIN | POLLERR | POLLHUP))
		rfd = fd;
	if (revents & (POLLOUT | POLLERR | POLLHUP))
		wfd = fd;
	ares_process_fd(s->ds_dns->d_chan, rfd, wfd);
}

static struct dns_sock *dns_sock_find(struct dns *d, ares_socket_t fd)
{
	for (unsigned i = 0; i < d->d_nsocks; i++)
		if (d->d_socks[i]->ds_used && d->d_socks[i]->ds_fd == fd)
			return d->d_socks[i];
	return NULL;
}

/* A free slot, preferring one whose old poll has ended; NULL without memory. */
static struct dns_sock *dns_sock_get(struct dns *d)
{
	struct dns_sock *s, *armed = NULL, **socks;

	for (unsigned i = 0; i < d->d_nsocks; i++) {
		s = d->d_socks[i];
		if (s->ds_used)
			continue;
		if (!s->ds_watch.iw_armed)
			return s;
		armed = s;
	}
	socks = realloc(d->d_socks, (d->d_nsocks + 1) * sizeof(*socks));
	if (socks == NULL)
		return armed;	/* the loop re-targets a watch safely */
	d->d_socks = socks;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return armed;
	s->ds_dns = d;
	socks[d->d_nsocks++] = s;
	return s;
}

/* c-ares opened, changed or closed (0, 0) one of its sockets. */
void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s = dns_sock_find(d, fd);
	unsigned events = 0;

	if (d->d_closing) {
		/* The loop is gone or stopped for good: only bookkeeping. */
		if (s != NULL)
			s->ds_used = false;
		return;
	}
	/* POLLERR and POLLHUP are asked for explicitly: the loop only calls
	 * back for the events it was asked for, and a refused UDP query
	 * (ICMP port unreachable) raises POLLERR alone. */
	if (readable)
		events |= POLLIN | POLLERR | POLLHUP;
	if (writable)
		events |= POLLOUT | POLLERR | POLLHUP;
	if (events == 0) {
		if (s != NULL) {
			io_watch_set(d->d_loop, &s->ds_watch, fd, 0,
				     dns_sock_ready, s);
			s->ds_used = false;
		}
		return;
	}
	if (s == NULL) {
		s = dns_sock_get(d);
		if (s == NULL)
			return;	/* unwatched: its queries time out in dns_tick */
		s->ds_used = true;
		s->ds_fd = fd;
	}
	io_watch_set(d->d_loop, &s->ds_watch, fd, events, dns_sock_ready, s);
}

void dns_sock_free_all(struct dns *d)
{
	for (unsigned i = 0; i < d->d_nsocks; i++)
		free(d->d_socks[i]);
	free(d->d_socks);
	d->d_socks = NULL;
	d->d_nsocks = 0;
}
