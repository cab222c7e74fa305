/*
 * http_url.c: http_url_parse() (see http_client.h). Configuration and
 * command-line input, parsed without I/O: scheme, host (a name, an IPv4
 * address or a bracketed IPv6 address), port, path with query.
 */
#include "core/http/http_client.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int url_fail(char *err, size_t errlen, const char *url, const char *why)
{
	snprintf(err, errlen, "bad URL \"%.200s\": %s", url, why);
	return -1;
}

static bool url_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

int http_url_parse(const char *url, struct http_url *u, char *err, size_t errlen)
{
	const char *s = url, *h, *he, *pe;
	size_t hl, pl;
	unsigned long port = 0;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "http://", 7) == 0) {
		s += 7;
		u->hu_port = 80;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		s += 8;
		u->hu_https = true;
		u->hu_port = 443;
	} else {
		return url_fail(err, errlen, url, "the scheme must be http or https");
	}
	pe = s + strcspn(s, "/?#");
	if (memchr(s, '@', (size_t)(pe - s)) != NULL)
		return url_fail(err, errlen, url, "user information is not supported");
	if (*s == '[') {
		h = s + 1;
		he = memchr(h, ']', (size_t)(pe - h));
		if (he == NULL)
			return url_fail(err, errlen, url, "unclosed [");
		for (const char *c = h; c < he; c++)
			if (strchr("0123456789abcdefABCDEF:.", *c) == NULL)
				return url_fail(err, errlen, url, "bad IPv6 address");
		s = he + 1;
	} else {
		h = s;
		while (s < pe && *s != ':')
			s++;
		he = s;
		for (const char *c = h; c < he; c++)
			if (!url_host_char(*c))
				return url_fail(err, errlen, url, "bad host name");
	}
	hl = (size_t)(he - h);
	if (hl == 0 || hl > HTTP_URL_HOST_MAX)
		return url_fail(err, errlen, url, "bad host length");
	memcpy(u->hu_host, h, hl);
	if (s < pe) {
		if (*s != ':' || s + 1 == pe)
			return url_fail(err, errlen, url, "bad port");
		for (s++; s < pe; s++) {
			if (*s < '0' || *s > '9')
				return url_fail(err, errlen, url, "bad port");
			port = port * 10 + (unsigned long)(*s - '0');
			if (port > 65535)
				return url_fail(err, errlen, url, "bad port");
		}
		if (port == 0)
			return url_fail(err, errlen, url, "bad port");
		u->hu_port = (uint16_t)port;
	}
	pl = strcspn(pe, "#");
	for (size_t i = 0; i < pl; i++)
		if ((unsigned char)pe[i] <= ' ' || pe[i] == 0x7f)
			return url_fail(err, errlen, url, "spaces or controls in the path");
	if (pl > HTTP_URL_PATH_MAX - 1)
		return url_fail(err, errlen, url, "path too long");
	if (pl == 0 || pe[0] != '/')
		u->hu_path[0] = '/';
	memcpy(u->hu_path + strlen(u->hu_path), pe, pl);
	return 0;
}
