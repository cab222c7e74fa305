/*
 * listen: listening sockets. Each worker opens its own socket per address
 * with SO_REUSEPORT, so the kernel spreads connections across workers
 * and no accept queue is shared between threads.
 */
#ifndef RINGMTA_IO_LISTEN_H
#define RINGMTA_IO_LISTEN_H

#include <sys/socket.h>

/* A bound, listening, non-blocking socket; returns fd or -errno. */
int io_listen_open(const struct sockaddr *sa, socklen_t len, int backlog);

/* Whether sa is free: a bind without SO_REUSEPORT, closed at once, so
 * that a second server cannot join the first one's SO_REUSEPORT group.
 * 0 or -errno (-EADDRINUSE: someone listens there). */
int io_listen_probe(const struct sockaddr *sa, socklen_t len);

/* "a.b.c.d:port" or "[v6]:port" into buf; returns buf. */
char *io_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
