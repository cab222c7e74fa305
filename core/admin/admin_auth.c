/*
 * admin_auth.c: the admin API's bearer tokens: the file that holds them
 * (owner-only permissions) and the constant-time check of a request's
 * Authorization header. Tokens are kept as SHA-256 digests and every
 * stored digest is compared, so the time taken says nothing about which
 * token, or how much of one, matched. A reload replaces the tokens in
 * force (admin_reload_tokens()); the replaced ones stay until admin_stop().
 */
#include "core/admin/admin_internal.h"

#include <openssl/mem.h>
#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ADMIN_TOKENS_FILE_MAX 65536

static int admin_tokens_parse(struct admin_tokens *t, char *text, const char *path,
			      char *err, size_t errlen)
{
	char *save = NULL;
	unsigned line = 0;

	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		size_t n;

		line++;
		while (*l == ' ' || *l == '\t')
			l++;
		n = strlen(l);
		while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
			l[--n] = '\0';
		if (n == 0 || l[0] == '#')
			continue;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)l[i] <= 0x20 || l[i] == 0x7f) {
				snprintf(err, errlen, "admin_token_file %s: a token has a blank"
					 " or control character", path);
				return -1;
			}
		if (t->at_n == ADMIN_TOKENS_MAX) {
			snprintf(err, errlen, "admin_token_file %s: more than %u tokens", path,
				 ADMIN_TOKENS_MAX);
			return -1;
		}
		SHA256((const uint8_t *)l, n, t->at_digest[t->at_n++]);
	}
	if (t->at_n == 0) {
		snprintf(err, errlen, "admin_token_file %s: no token in it", path);
		return -1;
	}
	return 0;
}

int admin_tokens_load(struct admin_tokens *t, const char *path, char *err, size_t errlen)
{
	char buf[ADMIN_TOKENS_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "admin_token_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "admin_token_file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "admin_token_file %s: mode %04o lets group or others"
			 " read it; refusing to start (chmod 600 %s)", path,
			 (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len > ADMIN_TOKENS_FILE_MAX) {
		snprintf(err, errlen, "admin_token_file %s: larger than %d bytes", path,
			 ADMIN_TOKENS_FILE_MAX);
		return -1;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "admin_token_file %s: a NUL byte in it", path);
		return -1;
	}
	rc = admin_tokens_parse(t, buf, path, err, errlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc < 0)
		memset(t, 0, sizeof(*t));
	return rc;
}

const struct admin_tokens *admin_tokens_current(struct admin *a)
{
	return atomic_load_explicit(&a->ad_tokens_cur, memory_order_acquire);
}

int admin_reload_tokens(struct admin *a, const char *path, bool *changed_r, unsigned *count_r,
			char *err, size_t errlen)
{
	struct admin_tokens *cur = atomic_load(&a->ad_tokens_cur);
	struct admin_tokens *t = calloc(1, sizeof(*t));

	*changed_r = false;
	if (t == NULL) {
		snprintf(err, errlen, "admin_token_file: out of memory");
		return -1;
	}
	if (path[0] != '\0' && admin_tokens_load(t, path, err, errlen) < 0) {
		free(t);
		return -1;
	}
	*count_r = t->at_n;
	if (t->at_n == cur->at_n &&
	    memcmp(t->at_digest, cur->at_digest, sizeof(t->at_digest)) == 0) {
		OPENSSL_cleanse(t, sizeof(*t));
		free(t);
		return 0;
	}
	t->at_older = cur;
	atomic_store_explicit(&a->ad_tokens_cur, t, memory_order_release);
	*changed_r = true;
	return 0;
}

bool admin_tokens_check(const struct admin_tokens *t, const char *authorization)
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	const char *tok;
	int match = 0;

	if (t->at_n == 0)
		return true;
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	SHA256((const uint8_t *)tok, strlen(tok), d);
	for (unsigned i = 0; i < t->at_n; i++)
		match |= CRYPTO_memcmp(d, t->at_digest[i], sizeof(d)) == 0;
	return match != 0;
}
