/*
 * smtp_creds.c: the outbound AUTH credentials file (smtp_creds.h): its
 * parser (no I/O; unit-tested and fuzzed alone), the loader with its
 * permission check, and the holder a reload swaps. A table owns one copy
 * of the file's text, cut in place into keys, users and passwords; that
 * copy is wiped before it is freed.
 */
#include "core/outbound/smtp_creds.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A credentials file is a few lines; anything larger is a mistake. */
#define SMTP_CREDS_FILE_MAX (1024u * 1024u)

struct smtp_creds {
	atomic_uint sr_refs;
	unsigned sr_n;
	struct smtp_cred *sr_v;
	char *sr_text;		/* the file's text, cut in place */
	size_t sr_len;
};

static bool smtp_creds_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Strip the brackets and an "IPv6:" tag of a next hop, lower-case it in
 * place; the port (0 = none) goes to *port_r, -1 on a malformed key. */
static int smtp_creds_key(char *key, char **host_r, uint16_t *port_r)
{
	char *host = key, *port = NULL, *end;

	*port_r = 0;
	if (key[0] == '[') {
		char *close = strchr(key, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		*close = '\0';
		if (close[1] == ':')
			port = close + 2;
		host = key + 1;
		if (strncasecmp(host, "IPv6:", 5) == 0)
			host += 5;
	} else {
		char *colon = strchr(key, ':');

		/* One colon: host:port; more: an IPv6 address. */
		if (colon != NULL && colon == strrchr(key, ':')) {
			*colon = '\0';
			port = colon + 1;
		}
	}
	if (host[0] == '\0')
		return -1;
	if (port != NULL) {
		unsigned long v;

		if (!isdigit((unsigned char)port[0]))
			return -1;
		errno = 0;
		v = strtoul(port, &end, 10);
		if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
			return -1;
		*port_r = (uint16_t)v;
	}
	/* A host name or an address: what relayhost accepts, and what a
	 * lookup can find. */
	if (strlen(host) > 255)
		return -1;
	for (char *p = host; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_' && *p != ':')
			return -1;
		*p = (char)tolower((unsigned char)*p);
	}
	*host_r = host;
	return 0;
}

/* Cut one line (NUL-terminated, no newline) into an account. */
static int smtp_creds_line(char *line, struct smtp_cred *c_r, const char **why_r)
{
	char *p = line, *key, *rest, *end, *host;

	while (smtp_creds_blank(*p))
		p++;
	key = p;
	while (*p != '\0' && !smtp_creds_blank(*p))
		p++;
	if (*p == '\0') {
		*why_r = "expected a next hop, then user password or user:password";
		return -1;
	}
	*p++ = '\0';
	while (smtp_creds_blank(*p))
		p++;
	rest = p;
	end = rest + strlen(rest);
	while (end > rest && smtp_creds_blank(end[-1]))
		*--end = '\0';
	if (smtp_creds_key(key, &host, &c_r->sc_port) < 0) {
		*why_r = "the next hop must be host, host:port, [address] or [address]:port";
		return -1;
	}
	c_r->sc_host = host;
	/* "user:password" (Postfix's sasl_passwd) when the first word has a
	 * colon, else "user password"; either way the password is the rest
	 * of the line, blanks and colons included. */
	for (p = rest; *p != '\0' && *p != ':' && !smtp_creds_blank(*p); p++)
		;
	if (*p == ':') {
		*p++ = '\0';
	} else if (*p != '\0') {
		*p++ = '\0';
		while (smtp_creds_blank(*p))
			p++;
	} else {
		p = NULL;
	}
	if (p == NULL || rest[0] == '\0' || *p == '\0') {
		*why_r = "expected user password or user:password after the next hop";
		return -1;
	}
	c_r->sc_user = rest;
	c_r->sc_pass = p;
	return 0;
}

static void smtp_creds_free(struct smtp_creds *t)
{
	if (t == NULL)
		return;
	if (t->sr_text != NULL) {
		explicit_bzero(t->sr_text, t->sr_len);
		free(t->sr_text);
	}
	free(t->sr_v);
	free(t);
}

int smtp_creds_parse(struct smtp_creds **t_r, const char *text, size_t len, const char *name,
		     char *err, size_t errlen)
{
	struct smtp_creds *t = calloc(1, sizeof(*t));
	unsigned lines = 0, lineno = 0;
	char *p, *end;

	*t_r = NULL;
	if (t == NULL || (t->sr_text = malloc(len + 1)) == NULL) {
		smtp_creds_free(t);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	if (len > 0)
		memcpy(t->sr_text, text, len);
	t->sr_text[len] = '\0';
	t->sr_len = len + 1;
	atomic_init(&t->sr_refs, 1);
	if (memchr(t->sr_text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", name);
		smtp_creds_free(t);
		return -1;
	}
	for (p = t->sr_text; *p; p++)
		lines += *p == '\n';
	t->sr_v = calloc(lines + 1, sizeof(*t->sr_v));
	if (t->sr_v == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		smtp_creds_free(t);
		return -1;
	}
	for (p = t->sr_text; *p != '\0'; p = end) {
		struct smtp_cred *c = &t->sr_v[t->sr_n];
		const char *why = NULL, *q;

		lineno++;
		end = strchr(p, '\n');
		if (end != NULL)
			*end++ = '\0';
		else
			end = p + strlen(p);
		if (p[0] != '\0' && p[strlen(p) - 1] == '\r')
			p[strlen(p) - 1] = '\0';
		for (q = p; smtp_creds_blank(*q); q++)
			;
		if (*q == '\0' || *q == '#')
			continue;
		for (q = p; *q; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				why = "contains a control character";
		if (why == NULL && smtp_creds_line(p, c, &why) == 0) {
			for (unsigned i = 0; i < t->sr_n; i++)
				if (t->sr_v[i].sc_port == c->sc_port &&
				    strcmp(t->sr_v[i].sc_host, c->sc_host) == 0)
					why = "this next hop is given twice";
		}
		if (why != NULL) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			smtp_creds_free(t);
			return -1;
		}
		t->sr_n++;
	}
	*t_r = t;
	return 0;
}

int smtp_creds_load(struct smtp_creds **t_r, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got;
	FILE *f;
	int fd, rc;

	*t_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "smtp_auth_credentials_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "smtp_auth_credentials_file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* Passwords in clear: only the owner may read them. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "smtp_auth_credentials_file %s: mode %04o gives group or"
			 " others access to passwords; chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	/* One more byte than the limit: a file that grew meanwhile is
	 * refused, not cut. */
	f = fdopen(fd, "r");
	buf = f != NULL ? malloc(SMTP_CREDS_FILE_MAX + 1) : NULL;
	if (buf == NULL) {
		snprintf(err, errlen, "smtp_auth_credentials_file %s: out of memory", path);
		if (f != NULL)
			fclose(f);
		else
			close(fd);
		return -1;
	}
	got = fread(buf, 1, SMTP_CREDS_FILE_MAX + 1, f);
	fclose(f);
	if (got > SMTP_CREDS_FILE_MAX) {
		snprintf(err, errlen, "smtp_auth_credentials_file %s: larger than %u bytes",
			 path, SMTP_CREDS_FILE_MAX);
		explicit_bzero(buf, got);
		free(buf);
		return -1;
	}
	rc = smtp_creds_parse(t_r, buf, got, path, err, errlen);
	explicit_bzero(buf, got);
	free(buf);
	return rc;
}

const struct smtp_cred *smtp_creds_find(const struct smtp_creds *t, const char *host,
					unsigned port)
{
	const struct smtp_cred *any = NULL;
	char key[300];
	size_t n;

	if (t == NULL || host == NULL)
		return NULL;
	if (host[0] == '[') {
		host++;
		if (strncasecmp(host, "IPv6:", 5) == 0)
			host += 5;
	}
	n = strcspn(host, "]");
	if (n == 0 || n >= sizeof(key))
		return NULL;
	for (size_t i = 0; i < n; i++)
		key[i] = (char)tolower((unsigned char)host[i]);
	key[n] = '\0';
	for (unsigned i = 0; i < t->sr_n; i++) {
		const struct smtp_cred *c = &t->sr_v[i];

		if (strcmp(c->sc_host, key) != 0)
			continue;
		if (c->sc_port == port)
			return c;
		if (c->sc_port == 0)
			any = c;
	}
	return any;
}

const struct smtp_cred *smtp_creds_at(const struct smtp_creds *t, unsigned i)
{
	return t != NULL && i < t->sr_n ? &t->sr_v[i] : NULL;
}

unsigned smtp_creds_count(const struct smtp_creds *t)
{
	return t != NULL ? t->sr_n : 0;
}

struct smtp_creds *smtp_creds_ref(struct smtp_creds *t)
{
	if (t != NULL)
		atomic_fetch_add(&t->sr_refs, 1);
	return t;
}

void smtp_creds_unref(struct smtp_creds **t)
{
	if (*t != NULL && atomic_fetch_sub(&(*t)->sr_refs, 1) == 1)
		smtp_creds_free(*t);
	*t = NULL;
}

void smtp_creds_holder_init(struct smtp_creds_holder *h, struct smtp_creds *t)
{
	pthread_mutex_init(&h->sh_lock, NULL);
	h->sh_cur = t;
}

struct smtp_creds *smtp_creds_holder_get(struct smtp_creds_holder *h)
{
	struct smtp_creds *t;

	if (h == NULL)
		return NULL;
	pthread_mutex_lock(&h->sh_lock);
	t = smtp_creds_ref(h->sh_cur);
	pthread_mutex_unlock(&h->sh_lock);
	return t;
}

void smtp_creds_holder_swap(struct smtp_creds_holder *h, struct smtp_creds *t)
{
	struct smtp_creds *old;

	pthread_mutex_lock(&h->sh_lock);
	old = h->sh_cur;
	h->sh_cur = t;
	pthread_mutex_unlock(&h->sh_lock);
	smtp_creds_unref(&old);
}

void smtp_creds_holder_destroy(struct smtp_creds_holder *h)
{
	smtp_creds_unref(&h->sh_cur);
	pthread_mutex_destroy(&h->sh_lock);
}
