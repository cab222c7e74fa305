/*
 * inject_lift.c: the message string of a request, decoded without
 * jansson. jansson reads a string octet by octet through a callback
 * (about 20 ns an octet, 20 us for a 1 KiB message: more than the rest
 * of the request costs), and the message is most of a request. So the
 * top-level "content" string is found here with a small structural
 * scanner, decoded, and replaced by "" in a copy that jansson then
 * parses for everything else (duplicate keys, types, the other fields).
 * Anything unusual (a syntax error, an escape jansson would refuse, an
 * object that is not one) leaves the request to jansson alone, which
 * then reports the error; tests/fuzz/fuzz_inject.c checks that both
 * decode the same text. No I/O.
 */
#include "core/inject/inject_req.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/utf8.h"

static const char *inject_lift_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Past the string starting at p ('"'), or NULL. */
static const char *inject_lift_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Past the value at p (any JSON value; nested ones by depth), or NULL. */
static const char *inject_lift_skip_value(const char *p, const char *end)
{
	unsigned depth = 0;

	if (p < end && *p != '"' && *p != '{' && *p != '[') {
		/* a scalar: up to the next delimiter */
		while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
		       *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			p = inject_lift_skip_string(p, end);
			if (p == NULL)
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return NULL;
			depth--;
			p++;
		} else {
			p++;
		}
		if (depth == 0)
			return p;
	}
	return NULL;
}

static int inject_lift_hex(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static size_t inject_lift_utf8(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decode the string at p ('"') into out (len of the input is enough);
 * past its closing quote, or NULL where jansson would refuse it. */
static const char *inject_lift_decode(const char *p, const char *end, char *out, size_t *len_r)
{
	size_t n = 0;

	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		int v, lo;

		if (c == '"') {
			if (!utf8_valid(out, n))
				return NULL;
			*len_r = n;
			return p + 1;
		}
		if (c < 0x20)
			return NULL;
		if (c != '\\') {
			out[n++] = (char)c;
			continue;
		}
		if (++p >= end)
			return NULL;
		switch (*p) {
		case '"': case '\\': case '/': out[n++] = *p; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u':
			if (end - p < 5 || (v = inject_lift_hex(p + 1)) <= 0)
				return NULL;	/* \u0000 too: jansson refuses NUL */
			p += 4;
			if (v >= 0xdc00 && v <= 0xdfff)
				return NULL;
			if (v >= 0xd800 && v <= 0xdbff) {
				if (end - p < 7 || p[1] != '\\' || p[2] != 'u' ||
				    (lo = inject_lift_hex(p + 3)) < 0xdc00 || lo > 0xdfff)
					return NULL;
				v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			n += inject_lift_utf8((uint32_t)v, out + n);
			break;
		default:
			return NULL;
		}
	}
	return NULL;
}

int inject_req_lift(const char *buf, size_t len, struct inject_lift *l)
{
	const char *p = buf, *end = buf + len;

	memset(l, 0, sizeof(*l));
	p = inject_lift_ws(p, end);
	if (p == end || *p != '{')
		return 0;
	p = inject_lift_ws(p + 1, end);
	while (p < end && *p == '"') {
		const char *key = p, *v;
		bool is_content;

		p = inject_lift_skip_string(p, end);
		if (p == NULL)
			return 0;
		is_content = p - key == 9 && memcmp(key, "\"content\"", 9) == 0;
		p = inject_lift_ws(p, end);
		if (p == end || *p != ':')
			return 0;
		p = inject_lift_ws(p + 1, end);
		if (is_content && p < end && *p == '"' && l->l_text == NULL) {
			l->l_text = malloc((size_t)(end - p) + 1);
			if (l->l_text == NULL)
				return 0;
			v = inject_lift_decode(p, end, l->l_text, &l->l_text_len);
			if (v == NULL)
				break;
			l->l_text[l->l_text_len] = '\0';
			l->l_json = malloc(len);
			if (l->l_json == NULL)
				break;
			memcpy(l->l_json, buf, (size_t)(p - buf));
			memcpy(l->l_json + (p - buf), "\"\"", 2);
			memcpy(l->l_json + (p - buf) + 2, v, (size_t)(end - v));
			l->l_json_len = (size_t)(p - buf) + 2 + (size_t)(end - v);
			return 1;
		}
		p = inject_lift_skip_value(p, end);
		if (p == NULL)
			break;
		p = inject_lift_ws(p, end);
		if (p == end || *p != ',')
			break;
		p = inject_lift_ws(p + 1, end);
	}
	inject_lift_free(l);
	return 0;
}

void inject_lift_free(struct inject_lift *l)
{
	free(l->l_text);
	free(l->l_json);
	memset(l, 0, sizeof(*l));
}
