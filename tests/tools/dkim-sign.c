/*
 * dkim-sign: signs the message on stdin with core/dkim and writes the
 * DKIM-Signature field(s) followed by the message to stdout. A test and
 * bench tool, not installed.
 *
 *   dkim-sign -k KEY -d DOMAIN -s SELECTOR [-c relaxed|simple|H/B]
 *             [-x SECONDS] [-t UNIXTIME] [-h Name:Name...] [-o Name:Name...]
 *
 * -x: x= is t= plus SECONDS. -t: t= (default: now). -h: the header
 * names to sign (default: dkim_default_headers). -o: names to oversign.
 * Several -k/-d/-s groups are not supported; run it twice to add two.
 */
#include "core/dkim/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int dkim_sign_canon(const char *s, enum dkim_canon *c)
{
	if (strcmp(s, "relaxed") == 0)
		*c = DKIM_CANON_RELAXED;
	else if (strcmp(s, "simple") == 0)
		*c = DKIM_CANON_SIMPLE;
	else
		return -1;
	return 0;
}

/* "A:B:C" into a NULL-terminated array of strings in s (modified). */
static const char **dkim_sign_names(char *s)
{
	size_t n = 2;
	const char **v;

	for (char *p = s; *p; p++)
		n += *p == ':';
	v = calloc(n, sizeof(*v));
	if (v == NULL)
		return NULL;
	n = 0;
	for (char *tok = strtok(s, ":"); tok; tok = strtok(NULL, ":"))
		v[n++] = tok;
	return v;
}

static void dkim_sign_usage(void)
{
	fprintf(stderr, "usage: dkim-sign -k key -d domain -s selector [-c relaxed|simple[/relaxed|simple]]"
		" [-x seconds] [-t unixtime] [-h names] [-o names] < msg\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct dkim_sign_spec spec = { 0 };
	const char *keyfile = NULL;
	struct dkim_key *key = NULL;
	char err[512], *msg = NULL, *sig = NULL;
	size_t len = 0, cap = 0, siglen = 0;
	long long xsec = -1;
	struct iovec iov;
	int opt;

	spec.timestamp = (uint64_t)time(NULL);
	spec.hcanon = spec.bcanon = DKIM_CANON_RELAXED;
	while ((opt = getopt(argc, argv, "k:d:s:c:x:t:h:o:")) != -1) {
		switch (opt) {
		case 'k':
			keyfile = optarg;
			break;
		case 'd':
			spec.domain = optarg;
			break;
		case 's':
			spec.selector = optarg;
			break;
		case 'c': {
			char *slash = strchr(optarg, '/');

			if (slash)
				*slash = '\0';
			if (dkim_sign_canon(optarg, &spec.hcanon) < 0 ||
			    dkim_sign_canon(slash ? slash + 1 : optarg, &spec.bcanon) < 0)
				dkim_sign_usage();
			break;
		}
		case 'x':
			xsec = atoll(optarg);
			break;
		case 't':
			spec.timestamp = (uint64_t)atoll(optarg);
			break;
		case 'h':
			spec.headers = dkim_sign_names(optarg);
			break;
		case 'o':
			spec.oversign = dkim_sign_names(optarg);
			break;
		default:
			dkim_sign_usage();
		}
	}
	if (!keyfile || !spec.domain || !spec.selector)
		dkim_sign_usage();
	if (xsec >= 0)
		spec.expire = spec.timestamp + (uint64_t)xsec;
	if (dkim_key_load(&key, keyfile, err, sizeof(err)) < 0) {
		fprintf(stderr, "dkim-sign: %s\n", err);
		return 1;
	}
	spec.key = key;
	for (;;) {
		size_t n;

		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			msg = realloc(msg, cap);
			if (msg == NULL) {
				fprintf(stderr, "dkim-sign: out of memory\n");
				return 1;
			}
		}
		n = fread(msg + len, 1, cap - len, stdin);
		if (n == 0)
			break;
		len += n;
	}
	iov.iov_base = msg;
	iov.iov_len = len;
	if (dkim_sign(&spec, 1, &iov, 1, &sig, &siglen, err, sizeof(err)) < 0) {
		fprintf(stderr, "dkim-sign: %s\n", err);
		return 1;
	}
	if (fwrite(sig, 1, siglen, stdout) != siglen || fwrite(msg, 1, len, stdout) != len ||
	    fflush(stdout) != 0) {
		perror("dkim-sign: stdout");
		return 1;
	}
	free(sig);
	free(msg);
	free((void *)spec.headers);
	free((void *)spec.oversign);
	dkim_key_free(key);
	return 0;
}
