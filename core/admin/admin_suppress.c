/*
 * admin_suppress.c: the suppression list over the admin API (admin_ops.h):
 * list with a filter and paging, add, remove. Addresses are checked as
 * `ringmta suppress` checks them; the queue lowercases and bounds keys.
 */
#include "core/admin/admin_ops.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/admin/admin_shaping.h"
#include "core/bounce/bclass.h"
#include "core/shaping/shp_susp.h"
#include "queue/queue.h"

#define ADMIN_SUP_LIMIT_DEFAULT 100u
#define ADMIN_SUP_LIMIT_MAX 1000u
#define ADMIN_SUP_ADDR_MAX 320u

/* An address as an operator writes it ("<a@b>" too): no blanks, control
 * characters or brackets inside. Its length without the brackets, or 0. */
static size_t admin_sup_addr(const char *s, const char **start_r)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	*start_r = s;
	if (n == 0 || n > ADMIN_SUP_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '<' || s[i] == '>' || s[i] == 0x7f)
			return 0;
	return n;
}

/* A scope: "" (global) or a domain without blanks or control characters. */
static bool admin_sup_scope(const char *s)
{
	for (; s != NULL && *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '@')
			return false;
	return s != NULL;
}

struct admin_sup_list {
	const char *sl_addr;		/* a part of the address, or NULL */
	const char *sl_scope;		/* the scope exactly, or NULL */
	unsigned long sl_offset, sl_limit;
	unsigned long sl_match;
	uint64_t sl_now;
	json_t *sl_out;
};

/* Whether needle (NUL-terminated) is in hay[0..len) in any case. */
static bool admin_sup_has(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i + n <= len; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static int admin_sup_one(void *ctx, const struct queue_suppress *e)
{
	struct admin_sup_list *l = ctx;
	const char *cls;
	json_t *o;

	if (l->sl_addr != NULL && !admin_sup_has(e->qs_addr, e->qs_addr_len, l->sl_addr))
		return 0;
	if (l->sl_scope != NULL && (strlen(l->sl_scope) != e->qs_scope_len ||
				    strncasecmp(l->sl_scope, e->qs_scope, e->qs_scope_len) != 0))
		return 0;
	if (l->sl_match++ < l->sl_offset || json_array_size(l->sl_out) >= l->sl_limit)
		return 0;
	cls = bclass_name(e->qs_class);
	o = json_pack("{s:s%, s:s%, s:s, s:o, s:s%, s:b}",
		      "address", e->qs_addr, e->qs_addr_len,
		      "scope", e->qs_scope, e->qs_scope_len,
		      "class", cls != NULL ? cls : "other",
		      "added", admin_json_time(e->qs_added * 1000000u),
		      "reason", e->qs_reason, e->qs_reason_len,
		      "expired", e->qs_expires != 0 && e->qs_expires <= l->sl_now / 1000000u);
	if (o == NULL)	/* not UTF-8: the address in escapes would mislead */
		return 0;
	json_object_set_new(o, "expires", e->qs_expires != 0 ?
			    admin_json_time(e->qs_expires * 1000000u) : json_null());
	json_array_append_new(l->sl_out, o);
	return 0;
}

static bool admin_sup_num(const char *s, unsigned long max, unsigned long *v_r)
{
	char *end;

	if (s == NULL)
		return true;
	if (*s < '0' || *s > '9')
		return false;
	*v_r = strtoul(s, &end, 10);
	return *end == '\0' && *v_r <= max;
}

static void admin_sup_get(struct queue *q, const struct admin_req *req, struct admin_reply *rep)
{
	struct admin_sup_list l = {
		admin_req_arg(req, "address"), admin_req_arg(req, "scope"), 0,
		ADMIN_SUP_LIMIT_DEFAULT, 0, (uint64_t)time(NULL) * 1000000u, json_array(),
	};
	int rc;

	if (!admin_sup_num(admin_req_arg(req, "offset"), 100000000ul, &l.sl_offset) ||
	    !admin_sup_num(admin_req_arg(req, "limit"), ADMIN_SUP_LIMIT_MAX, &l.sl_limit) ||
	    l.sl_limit == 0) {
		json_decref(l.sl_out);
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "offset: a number; limit: 1 to %u", ADMIN_SUP_LIMIT_MAX);
		return;
	}
	if (l.sl_addr != NULL && l.sl_addr[0] == '\0')
		l.sl_addr = NULL;
	rc = queue_suppress_foreach(q, admin_sup_one, &l);
	if (rc < 0) {
		json_decref(l.sl_out);
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "queue error", "%s",
				  queue_strerror(rc));
		return;
	}
	rep->json = json_pack("{s:o, s:I, s:I, s:I}", "suppressions", l.sl_out,
			      "total", (json_int_t)l.sl_match, "offset", (json_int_t)l.sl_offset,
			      "limit", (json_int_t)l.sl_limit);
}

static void admin_sup_post(struct queue *q, const struct admin_req *req, struct admin_reply *rep)
{
	const char *addr = json_string_value(json_object_get(req->ar_json, "address"));
	const char *scope = json_string_value(json_object_get(req->ar_json, "scope"));
	const char *cls = json_string_value(json_object_get(req->ar_json, "class"));
	const char *exp = json_string_value(json_object_get(req->ar_json, "expires"));
	const char *reason = json_string_value(json_object_get(req->ar_json, "reason"));
	struct queue_suppress e;
	uint64_t us = 0, now = (uint64_t)time(NULL);
	size_t n;
	int bc = BCLASS_POLICY, rc;

	if (req->ar_json == NULL || (n = admin_sup_addr(addr, &addr)) == 0) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "address: an address without blanks or brackets inside");
		return;
	}
	if (scope == NULL)
		scope = "";
	if (!admin_sup_scope(scope) ||
	    (cls != NULL && (bc = bclass_parse(cls, strlen(cls))) < 0) ||
	    (exp != NULL && shp_susp_duration_parse(exp, &us) < 0)) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "scope: a sender domain or \"\"; class: a bounce class name;"
				  " expires: e.g. \"30d\"");
		return;
	}
	if (reason == NULL)
		reason = "added through the admin API";
	memset(&e, 0, sizeof(e));
	e.qs_scope = scope;
	e.qs_scope_len = strlen(scope);
	e.qs_addr = addr;
	e.qs_addr_len = n;
	e.qs_class = (uint8_t)bc;
	e.qs_added = now;
	e.qs_expires = us != 0 ? now + us / 1000000u : 0;
	e.qs_reason = reason;
	e.qs_reason_len = strnlen(reason, 1000);
	rc = queue_suppress_add(q, &e);
	if (rc < 0) {
		admin_reply_error(rep, rc == -ENAMETOOLONG ? MHD_HTTP_BAD_REQUEST :
				  MHD_HTTP_INTERNAL_SERVER_ERROR, "not added", "%s",
				  rc == -ENAMETOOLONG ? "address and scope too long" :
				  queue_strerror(rc));
		return;
	}
	rep->json = json_pack("{s:{s:s%, s:s, s:s}}", "suppressed", "address", addr, n,
			      "scope", scope, "class", bclass_name((unsigned)bc));
	if (rep->json == NULL)
		rep->json = json_pack("{s:b}", "suppressed", 1);
}

static void admin_sup_delete(struct queue *q, const struct admin_req *req,
			     struct admin_reply *rep)
{
	const char *addr = admin_req_arg(req, "address"), *scope = admin_req_arg(req, "scope");
	char buf[ADMIN_SUP_ADDR_MAX + 1];
	size_t n;
	int rc;

	if ((n = admin_sup_addr(addr, &addr)) == 0 || (scope != NULL && !admin_sup_scope(scope))) {
		admin_reply_error(rep, MHD_HTTP_BAD_REQUEST, "bad request",
				  "?address=ADDRESS[&scope=SENDER_DOMAIN]");
		return;
	}
	memcpy(buf, addr, n);
	buf[n] = '\0';
	rc = queue_suppress_remove(q, scope != NULL ? scope : "", buf);
	if (rc == -ENOENT) {
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not suppressed", "%s", buf);
		return;
	}
	if (rc < 0) {
		admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "not removed", "%s",
				  queue_strerror(rc));
		return;
	}
	rep->json = json_pack("{s:{s:s, s:s}}", "removed", "address", buf, "scope",
			      scope != NULL ? scope : "");
	if (rep->json == NULL)
		rep->json = json_pack("{s:b}", "removed", 1);
}

static void admin_sup(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	if (req->ar_rest[0] != '\0' && req->ar_rest[1] != '\0')
		admin_reply_error(rep, MHD_HTTP_NOT_FOUND, "not found", "%s", req->ar_path);
	else if (strcmp(req->ar_method, "GET") == 0)
		admin_sup_get(ctx, req, rep);
	else if (strcmp(req->ar_method, "POST") == 0)
		admin_sup_post(ctx, req, rep);
	else
		admin_sup_delete(ctx, req, rep);
}

int admin_suppress_register(struct admin *a, struct queue *q)
{
	if (admin_route_add(a, "GET", "/api/v1/suppressions", 0, 0, admin_sup, q) < 0 ||
	    admin_route_add(a, "POST", "/api/v1/suppressions", ADMIN_ROUTE_JSON, 64 * 1024,
			    admin_sup, q) < 0 ||
	    admin_route_add(a, "DELETE", "/api/v1/suppressions", 0, 0, admin_sup, q) < 0)
		return -1;
	return 0;
}
