/*
 * http_load.c: http-inject-load, a load client for ringmta's HTTP
 * injection (POST /api/v1/inject): C connections, each on a thread of
 * its own with HTTP/1.1 keep-alive, post the same request (one raw
 * message of SIZE octets, headers included, to one recipient) one after
 * another until N were answered or SECONDS passed. It counts 202s and
 * others and prints messages per second (bench/inject.sh compares it
 * with smtp-load on the same message).
 *
 * usage: http-inject-load -s HOST:PORT [-c CONNS] [-n N] [-d SECONDS]
 *                         [-z SIZE] [-u USER:PASS] [-j]
 * Exit: 0 every request answered 202, 1 some were not, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct hl {
	struct sockaddr_in addr;
	char *req;			/* the whole request, headers included */
	size_t req_len;
	uint64_t n, deadline_ns;
	_Atomic uint64_t started, ok, failed;
};

static uint64_t hl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int hl_connect(const struct hl *h)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&h->addr, sizeof(h->addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send the request and read one response: its status, or -1. */
static int hl_exchange(const struct hl *h, int fd)
{
	char buf[4096];
	size_t have = 0, off = 0;
	const char *end, *cl;
	size_t body;
	int status;

	while (off < h->req_len) {
		ssize_t n = send(fd, h->req + off, h->req_len - off, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	for (;;) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);

		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL)
			break;
		if (have == sizeof(buf) - 1)
			return -1;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	cl = strcasestr(buf, "\r\nContent-Length:");
	body = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	body -= body < have - (size_t)(end + 4 - buf) ? body : have - (size_t)(end + 4 - buf);
	while (body > 0) {
		ssize_t n = recv(fd, buf, body < sizeof(buf) ? body : sizeof(buf), 0);

		if (n <= 0)
			return -1;
		body -= (size_t)n;
	}
	return status;
}

static void *hl_thread(void *arg)
{
	struct hl *h = arg;
	int fd = -1;

	while (atomic_fetch_add(&h->started, 1) < h->n && hl_now() < h->deadline_ns) {
		int st;

		if (fd < 0 && (fd = hl_connect(h)) < 0) {
			atomic_fetch_add(&h->failed, 1);
			usleep(10000);
			continue;
		}
		st = hl_exchange(h, fd);
		if (st == 202) {
			atomic_fetch_add(&h->ok, 1);
		} else {
			atomic_fetch_add(&h->failed, 1);
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* The JSON request around a message of size octets. */
static char *hl_body(size_t size, size_t *len_r)
{
	static const char head[] = "From: http-load@load.example\\r\\nTo: rcpt@example.com\\r\\n"
				   "Subject: load\\r\\n\\r\\n";
	size_t msg = 69;	/* the head's octets unescaped */
	char *b = malloc(size * 2 + 512);
	size_t n;

	if (b == NULL)
		exit(2);
	n = (size_t)sprintf(b, "{\"envelope_sender\":\"http-load@load.example\",\"recipients\":"
			    "[{\"email\":\"rcpt@example.com\"}],\"content\":\"%s", head);
	while (msg + 2 <= size) {
		size_t line = size - msg - 2 > 76 ? 76 : size - msg - 2;

		memset(b + n, 'x', line);
		n += line;
		memcpy(b + n, "\\r\\n", 4);
		n += 4;
		msg += line + 2;
	}
	n += (size_t)sprintf(b + n, "\"}");
	*len_r = n;
	return b;
}

int main(int argc, char **argv)
{
	struct hl h = { .n = 10000 };
	const char *server = NULL, *userpass = NULL;
	unsigned conns = 50, seconds = 0;
	size_t size = 1024, blen;
	bool json = false;
	char *body, *colon, host[64], auth[512] = "";
	pthread_t *t;
	uint64_t t0, t1;
	int opt;

	while ((opt = getopt(argc, argv, "s:c:n:d:z:u:j")) != -1) {
		switch (opt) {
		case 's': server = optarg; break;
		case 'c': conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': h.n = strtoull(optarg, NULL, 10); break;
		case 'd': seconds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'z': size = strtoul(optarg, NULL, 10); break;
		case 'u': userpass = optarg; break;
		case 'j': json = true; break;
		default:
			fprintf(stderr, "usage: http-inject-load -s HOST:PORT [-c CONNS] [-n N]"
				" [-d SECONDS] [-z SIZE] [-u USER:PASS] [-j]\n");
			return 2;
		}
	}
	if (server == NULL || (colon = strrchr(server, ':')) == NULL || conns == 0 ||
	    (size_t)(colon - server) >= sizeof(host) || size < 100) {
		fprintf(stderr, "http-inject-load: -s IPV4:PORT needed; -c >= 1; -z >= 100\n");
		return 2;
	}
	memcpy(host, server, (size_t)(colon - server));
	host[colon - server] = '\0';
	h.addr.sin_family = AF_INET;
	h.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &h.addr.sin_addr) != 1) {
		fprintf(stderr, "http-inject-load: %s: not an IPv4 address\n", host);
		return 2;
	}
	if (userpass != NULL) {
		static const char b64[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t l = strlen(userpass), o = (size_t)sprintf(auth, "Authorization: Basic ");

		for (size_t i = 0; i < l && o + 8 < sizeof(auth); i += 3) {
			uint32_t v = (uint32_t)(unsigned char)userpass[i] << 16 |
				     (i + 1 < l ? (uint32_t)(unsigned char)userpass[i + 1] << 8 : 0) |
				     (i + 2 < l ? (unsigned char)userpass[i + 2] : 0);

			auth[o++] = b64[v >> 18 & 63];
			auth[o++] = b64[v >> 12 & 63];
			auth[o++] = i + 1 < l ? b64[v >> 6 & 63] : '=';
			auth[o++] = i + 2 < l ? b64[v & 63] : '=';
		}
		sprintf(auth + o, "\r\n");
	}
	body = hl_body(size, &blen);
	h.req = malloc(blen + 1024);
	if (h.req == NULL)
		return 2;
	h.req_len = (size_t)sprintf(h.req, "POST /api/v1/inject HTTP/1.1\r\nHost: %s\r\n%s"
				    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
				    server, auth, blen);
	memcpy(h.req + h.req_len, body, blen);
	h.req_len += blen;
	free(body);
	if (seconds != 0 && h.n == 10000)
		h.n = UINT64_MAX / 2;
	t0 = hl_now();
	h.deadline_ns = seconds ? t0 + (uint64_t)seconds * 1000000000u : UINT64_MAX;
	t = calloc(conns, sizeof(*t));
	for (unsigned i = 0; i < conns; i++)
		pthread_create(&t[i], NULL, hl_thread, &h);
	for (unsigned i = 0; i < conns; i++)
		pthread_join(t[i], NULL);
	t1 = hl_now();
	{
		double secs = (double)(t1 - t0) / 1e9;
		uint64_t ok = atomic_load(&h.ok), failed = atomic_load(&h.failed);

		if (json)
			printf("{\"accepted\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"msg_per_s\":%.1f,"
			       "\"conns\":%u,\"size\":%zu}\n", (unsigned long long)ok,
			       (unsigned long long)failed, secs, (double)ok / secs, conns, size);
		else
			printf("accepted=%llu failed=%llu seconds=%.3f msg_per_s=%.1f conns=%u size=%zu\n",
			       (unsigned long long)ok, (unsigned long long)failed, secs,
			       (double)ok / secs, conns, size);
		free(t);
		free(h.req);
		return failed ? 1 : 0;
	}
}
