/*
 * admin_msg.c: see admin_msg.h.
 */
#include "core/admin/admin_msg.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/utf8.h"
#include "core/message/dsn.h"

json_t *admin_msg_text(const char *p, size_t len)
{
	size_t i = 0, o = 0;
	char *buf;
	json_t *j;

	if (len == 0)
		return json_string("");
	j = memchr(p, '\0', len) == NULL ? json_stringn(p, len) : NULL;
	if (j != NULL)
		return j;
	/* At most 3 octets (U+FFFD) for each one in. */
	buf = malloc(len * 3);
	if (buf == NULL)
		return json_null();
	while (i < len) {
		size_t n = p[i] != '\0' ? utf8_seq_len((const unsigned char *)p + i, len - i) : 0;

		if (n == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, p + i, n);
			o += n;
			i += n;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j != NULL ? j : json_null();
}

/* Length of the line at p (up to end), without its line ending; *next_r
 * is where the next line starts. */
static size_t admin_msg_line(const char *p, const char *end, const char **next_r)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (nl == NULL) {
		*next_r = end;
		return (size_t)(end - p);
	}
	*next_r = nl + 1;
	n = (size_t)(nl - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}

json_t *admin_msg_headers(const char *msg, size_t len)
{
	json_t *arr = json_array();
	const char *p = msg, *end = msg + dsn_header_len(msg, len);
	unsigned nfields = 0;

	if (arr == NULL)
		return json_null();
	while (p < end && nfields < ADMIN_MSG_FIELDS_MAX) {
		const char *next, *colon;
		size_t n = admin_msg_line(p, end, &next);
		char *value;
		size_t vlen = 0, cap;
		const char *q;

		colon = memchr(p, ':', n);
		if (colon == NULL || colon == p || p[0] == ' ' || p[0] == '\t') {
			p = next;	/* not a field (a stray continuation) */
			continue;
		}
		/* The value: the rest of this line and every continuation. */
		q = next;
		while (q < end && (*q == ' ' || *q == '\t')) {
			const char *nn;

			(void)admin_msg_line(q, end, &nn);
			q = nn;
		}
		cap = (size_t)(q - colon);
		value = malloc(cap + 1);
		if (value == NULL)
			break;
		{
			const char *lp = colon + 1;
			size_t ln = n - (size_t)(colon + 1 - p);
			const char *nx = next;

			for (;;) {
				memcpy(value + vlen, lp, ln);
				vlen += ln;
				if (nx >= q)
					break;
				lp = nx;
				ln = admin_msg_line(nx, end, &nx);
			}
		}
		/* Leading blanks of the value are not part of it. */
		{
			size_t s = 0;

			while (s < vlen && (value[s] == ' ' || value[s] == '\t'))
				s++;
			json_array_append_new(arr, json_pack("{s:o, s:o}",
					      "name", admin_msg_text(p, (size_t)(colon - p)),
					      "value", admin_msg_text(value + s, vlen - s)));
		}
		free(value);
		nfields++;
		p = q;
	}
	return arr;
}
