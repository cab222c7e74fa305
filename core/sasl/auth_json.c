/*
 * auth_json.c: the small JSON reader (RFC 8259) that the JWT check needs
 * for a token's header and claims.
 *
 * It takes one buffer, copies nothing and hands back slices of it; it
 * enforces an input size, a member count and a nesting depth from a
 * limits struct. It runs on input from the network before the client has
 * authenticated, so each step is bounded. Only the top-level object is
 * indexed; nested values are checked and skipped.
 */
#include "core/sasl/auth_internal.h"
#include "core/base/utf8.h"

#include <string.h>

struct auth_json_parser {
	const char *jp_p;
	const char *jp_end;
	unsigned jp_depth;
	unsigned jp_max_depth;
};

static void auth_json_ws(struct auth_json_parser *jp)
{
	while (jp->jp_p < jp->jp_end &&
	       (*jp->jp_p == ' ' || *jp->jp_p == '\t' || *jp->jp_p == '\n' || *jp->jp_p == '\r'))
		jp->jp_p++;
}

/* Length of the well-formed UTF-8 sequence at p, or 0. */
static size_t auth_json_utf8(const unsigned char *p, const unsigned char *end)
{
	return utf8_seq_len(p, (size_t)(end - p));
}

static int auth_json_hex4(const char *p, uint32_t *v)
{
	uint32_t u = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		u = u << 4 | d;
	}
	*v = u;
	return 0;
}

/* A \u escape at p (6 octets, or 12 for a surrogate pair) as a code point;
 * returns the octets consumed, or 0. Refuses lone surrogates and NUL. */
static size_t auth_json_uescape(const char *p, const char *end, uint32_t *cp_r)
{
	uint32_t hi, lo;

	if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || auth_json_hex4(p + 2, &hi) != 0 ||
	    hi == 0 || (hi >= 0xdc00 && hi <= 0xdfff))
		return 0;
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp_r = hi;
		return 6;
	}
	if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || auth_json_hex4(p + 8, &lo) != 0 ||
	    lo < 0xdc00 || lo > 0xdfff)
		return 0;
	*cp_r = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 12;
}

static int auth_json_string(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *p = jp->jp_p + 1, *end = jp->jp_end, *start = p;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		uint32_t cp;
		size_t n;

		if (c == '"') {
			v->jv_type = AUTH_JSON_STRING;
			v->jv_p = start;
			v->jv_len = (size_t)(p - start);
			v->jv_strings = false;
			jp->jp_p = p + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (end - p < 2)
				return -1;
			if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
				p += 2;
				continue;
			}
			n = auth_json_uescape(p, end, &cp);
		} else {
			n = auth_json_utf8((const unsigned char *)p, (const unsigned char *)end);
		}
		if (n == 0)
			return -1;
		p += n;
	}
	return -1;
}

static bool auth_json_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static int auth_json_number(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *p = jp->jp_p, *end = jp->jp_end, *start = p;

	if (p < end && *p == '-')
		p++;
	if (!auth_json_digit(p, end))
		return -1;
	if (*p == '0')
		p++;
	else
		while (auth_json_digit(p, end))
			p++;
	if (p < end && *p == '.') {
		p++;
		if (!auth_json_digit(p, end))
			return -1;
		while (auth_json_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!auth_json_digit(p, end))
			return -1;
		while (auth_json_digit(p, end))
			p++;
	}
	v->jv_type = AUTH_JSON_NUMBER;
	v->jv_p = start;
	v->jv_len = (size_t)(p - start);
	v->jv_strings = false;
	jp->jp_p = p;
	return 0;
}

static int auth_json_value(struct auth_json_parser *jp, struct auth_json_val *v);

/* After a member or element: 1 at ',' (another follows), 0 at close (the
 * container ends), -1 on anything else. Consumes what it read. */
static int auth_json_next(struct auth_json_parser *jp, char close)
{
	auth_json_ws(jp);
	if (jp->jp_p >= jp->jp_end)
		return -1;
	if (*jp->jp_p == ',') {
		jp->jp_p++;
		return 1;
	}
	if (*jp->jp_p != close)
		return -1;
	jp->jp_p++;
	return 0;
}

/* An object at jp_p ('{'); top-level members go to m when m != NULL. */
static int auth_json_object(struct auth_json_parser *jp, struct auth_json_val *v,
			    struct auth_json_member *m, size_t max, size_t *n_r)
{
	const char *start = jp->jp_p;
	size_t n = 0;
	int r;

	if (++jp->jp_depth > jp->jp_max_depth)
		return -1;
	jp->jp_p++;
	auth_json_ws(jp);
	if (jp->jp_p < jp->jp_end && *jp->jp_p == '}') {
		jp->jp_p++;
	} else {
		for (;;) {
			struct auth_json_val k, val;

			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end || *jp->jp_p != '"' || auth_json_string(jp, &k) != 0)
				return -1;
			auth_json_ws(jp);
			if (jp->jp_p >= jp->jp_end || *jp->jp_p != ':')
				return -1;
			jp->jp_p++;
			auth_json_ws(jp);
			if (auth_json_value(jp, &val) != 0)
				return -1;
			if (m != NULL) {
				if (n == max)
					return -1;
				m[n].jm_key = k;
				m[n].jm_val = val;
				n++;
			}
			r = auth_json_next(jp, '}');
			if (r < 0)
				return -1;
			if (r == 0)
				break;
		}
	}
	jp->jp_depth--;
	v->jv_type = AUTH_JSON_OBJECT;
	v->jv_p = start;
	v->jv_len = (size_t)(jp->jp_p - start);
	v->jv_strings = false;
	if (n_r != NULL)
		*n_r = n;
	return 0;
}

static int auth_json_array(struct auth_json_parser *jp, struct auth_json_val *v)
{
	const char *start = jp->jp_p;
	bool strings = true;
	int r;

	if (++jp->jp_depth > jp->jp_max_depth)
		return -1;
	jp->jp_p++;
	auth_json_ws(jp);
	if (jp->jp_p < jp->jp_end && *jp->jp_p == ']') {
		jp->jp_p++;
	} else {
		for (;;) {
			struct auth_json_val e;

			auth_json_ws(jp);
			if (auth_json_value(jp, &e) != 0)
				return -1;
			strings &= e.jv_type == AUTH_JSON_STRING;
			r = auth_json_next(jp, ']');
			if (r < 0)
				return -1;
			if (r == 0)
				break;
		}
	}
	jp->jp_depth--;
	v->jv_type = AUTH_JSON_ARRAY;
	v->jv_p = start;
	v->jv_len = (size_t)(jp->jp_p - start);
	v->jv_strings = strings;
	return 0;
}

static int auth_json_literal(struct auth_json_parser *jp, struct auth_json_val *v)
{
	static const char *const lits[] = { "true", "false", "null" };

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i]);

		if ((size_t)(jp->jp_end - jp->jp_p) >= n && memcmp(jp->jp_p, lits[i], n) == 0) {
			v->jv_type = AUTH_JSON_LITERAL;
			v->jv_p = jp->jp_p;
			v->jv_len = n;
			v->jv_strings = false;
			jp->jp_p += n;
			return 0;
		}
	}
	return -1;
}

static int auth_json_value(struct auth_json_parser *jp, struct auth_json_val *v)
{
	if (jp->jp_p >= jp->jp_end)
		return -1;
	switch (*jp->jp_p) {
	case '"':
		return auth_json_string(jp, v);
	case '{':
		return auth_json_object(jp, v, NULL, 0, NULL);
	case '[':
		return auth_json_array(jp, v);
	case 't':
	case 'f':
	case 'n':
		return auth_json_literal(jp, v);
	default:
		return auth_json_number(jp, v);
	}
}

int auth_json_parse(const char *s, size_t len, const struct auth_json_limits *lim,
		    struct auth_json_member *m, size_t *n_r)
{
	struct auth_json_parser jp = {
		.jp_p = s, .jp_end = s + len, .jp_depth = 0, .jp_max_depth = lim->jl_max_depth,
	};
	struct auth_json_val v;

	*n_r = 0;
	if (len > lim->jl_max_len || lim->jl_max_depth == 0)
		return -1;
	auth_json_ws(&jp);
	if (jp.jp_p >= jp.jp_end || *jp.jp_p != '{' ||
	    auth_json_object(&jp, &v, m, lim->jl_max_members, n_r) != 0) {
		*n_r = 0;
		return -1;
	}
	auth_json_ws(&jp);
	if (jp.jp_p != jp.jp_end) {
		*n_r = 0;
		return -1;
	}
	return 0;
}

/* The next character of a validated string slice as UTF-8 octets in out;
 * returns how many (1 to 4), or 0 at a malformed escape. */
static size_t auth_json_unescape(const char **pp, const char *end, char out[4])
{
	const char *p = *pp;
	uint32_t cp;
	size_t n;

	if (*p != '\\') {
		out[0] = *p;
		*pp = p + 1;
		return 1;
	}
	if (end - p < 2)
		return 0;
	switch (p[1]) {
	case '"': case '\\': case '/':
		out[0] = p[1];
		break;
	case 'b':
		out[0] = '\b';
		break;
	case 'f':
		out[0] = '\f';
		break;
	case 'n':
		out[0] = '\n';
		break;
	case 'r':
		out[0] = '\r';
		break;
	case 't':
		out[0] = '\t';
		break;
	case 'u':
		n = auth_json_uescape(p, end, &cp);
		if (n == 0)
			return 0;
		*pp = p + n;
		if (cp < 0x80) {
			out[0] = (char)cp;
			return 1;
		}
		if (cp < 0x800) {
			out[0] = (char)(0xc0 | cp >> 6);
			out[1] = (char)(0x80 | (cp & 0x3f));
			return 2;
		}
		if (cp < 0x10000) {
			out[0] = (char)(0xe0 | cp >> 12);
			out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[2] = (char)(0x80 | (cp & 0x3f));
			return 3;
		}
		out[0] = (char)(0xf0 | cp >> 18);
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		return 4;
	default:
		return 0;
	}
	*pp = p + 2;
	return 1;
}

bool auth_json_str_eq(const struct auth_json_val *v, const char *lit, size_t len)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	size_t o = 0;

	if (v->jv_type != AUTH_JSON_STRING)
		return false;
	while (p < end) {
		char buf[4];
		size_t n = auth_json_unescape(&p, end, buf);

		if (n == 0 || n > len - o || memcmp(buf, lit + o, n) != 0)
			return false;
		o += n;
	}
	return o == len;
}

int auth_json_str_copy(const struct auth_json_val *v, char *out, size_t outlen, size_t *len_r)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	size_t o = 0;

	*len_r = 0;
	if (v->jv_type != AUTH_JSON_STRING || outlen == 0)
		return -1;
	while (p < end) {
		char buf[4];
		size_t n = auth_json_unescape(&p, end, buf);

		if (n == 0 || n >= outlen - o)
			return -1;
		memcpy(out + o, buf, n);
		o += n;
	}
	out[o] = '\0';
	*len_r = o;
	return 0;
}

int auth_json_find(const struct auth_json_member *m, size_t n, const char *key,
		   struct auth_json_val *v_r)
{
	size_t klen = strlen(key);
	int found = 0;

	for (size_t i = 0; i < n; i++) {
		if (!auth_json_str_eq(&m[i].jm_key, key, klen))
			continue;
		if (found)
			return -1;
		*v_r = m[i].jm_val;
		found = 1;
	}
	return found;
}

int auth_json_array_next(const struct auth_json_val *arr, size_t *pos,
			 struct auth_json_val *elem_r)
{
	struct auth_json_parser jp;

	if (arr->jv_type != AUTH_JSON_ARRAY || !arr->jv_strings || *pos >= arr->jv_len)
		return 0;
	jp.jp_p = arr->jv_p + *pos + (*pos == 0);	/* past the '[' */
	jp.jp_end = arr->jv_p + arr->jv_len;
	jp.jp_depth = 0;
	jp.jp_max_depth = 1;
	auth_json_ws(&jp);
	if (jp.jp_p < jp.jp_end && *jp.jp_p == ',') {
		jp.jp_p++;
		auth_json_ws(&jp);
	}
	if (jp.jp_p >= jp.jp_end || *jp.jp_p != '"' || auth_json_string(&jp, elem_r) != 0) {
		*pos = arr->jv_len;
		return 0;
	}
	*pos = (size_t)(jp.jp_p - arr->jv_p);
	return 1;
}

int auth_json_num_u64(const struct auth_json_val *v, uint64_t *u_r)
{
	const char *p = v->jv_p, *end = v->jv_p + v->jv_len;
	uint64_t u = 0;

	*u_r = 0;
	if (v->jv_type != AUTH_JSON_NUMBER || p >= end || *p == '-')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		u = u > (UINT64_MAX - d) / 10 ? UINT64_MAX : u * 10 + d;
	}
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9'; p++)
			;
	if (p != end)
		return -1;	/* an exponent */
	*u_r = u;
	return 0;
}
