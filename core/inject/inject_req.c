/*
 * inject_req.c: the JSON of an injection request into struct inject_req
 * (inject_req.h). Every field is checked for its type; an error names
 * the field. Strings stay in the jansson tree; attachments are decoded
 * from base64 into buffers the request owns. No I/O.
 */
#include "core/inject/inject_req.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int inject_req_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int inject_req_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A string member: 0 absent (*s_r NULL), 1 present, -1 wrong type. */
static int inject_req_str(json_t *o, const char *key, const char **s_r, size_t *len_r)
{
	json_t *v = json_object_get(o, key);

	*s_r = NULL;
	if (len_r != NULL)
		*len_r = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*s_r = json_string_value(v);
	if (len_r != NULL)
		*len_r = json_string_length(v);
	return 1;
}

/* An object of strings (numbers taken as their text are not: a template
 * variable is text, say so) into vars. */
static int inject_req_vars(json_t *o, const char *what, struct inject_vars *vars, char *err,
			   size_t errlen)
{
	const char *k;
	json_t *v;
	unsigned i = 0;

	vars->v_kv = NULL;
	vars->v_n = 0;
	if (o == NULL || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return inject_req_err(err, errlen, "%s: must be an object", what);
	if (json_object_size(o) == 0)
		return 0;
	vars->v_kv = calloc(json_object_size(o), sizeof(*vars->v_kv));
	if (vars->v_kv == NULL)
		return inject_req_err(err, errlen, "out of memory");
	json_object_foreach(o, k, v) {
		if (!json_is_string(v))
			return inject_req_err(err, errlen, "%s.%.64s: must be a string", what, k);
		vars->v_kv[i].k_name = k;
		vars->v_kv[i].k_value = json_string_value(v);
		vars->v_kv[i].k_len = json_string_length(v);
		i++;
	}
	vars->v_n = i;
	return 0;
}

/* from / reply_to: "a@b" or { "email": ..., "name": ... }. */
static int inject_req_addr(json_t *c, const char *key, struct inject_addr *a, char *err,
			   size_t errlen)
{
	json_t *v = json_object_get(c, key);

	a->ia_email = a->ia_name = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v))
		a->ia_email = json_string_value(v);
	else if (!json_is_object(v) || inject_req_str(v, "email", &a->ia_email, NULL) != 1 ||
		 inject_req_str(v, "name", &a->ia_name, NULL) < 0)
		return inject_req_err(err, errlen, "content.%s: must be an address or"
				      " {\"email\", \"name\"}", key);
	/* it goes between < and > in a header field */
	for (const char *p = a->ia_email; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' || *p == 0x7f)
			return inject_req_err(err, errlen, "content.%s: bad address (blanks,"
					      " control characters, < or >)", key);
	if (a->ia_email[0] == '\0')
		return inject_req_err(err, errlen, "content.%s: empty address", key);
	return 0;
}

static int inject_req_attach(json_t *a, unsigned i, struct inject_attach *at, char *err,
			     size_t errlen)
{
	json_t *b64 = json_object_get(a, "base64");
	const char *data;
	size_t len;

	if (!json_is_object(a))
		return inject_req_err(err, errlen, "content.attachments[%u]: must be an object", i);
	if (inject_req_str(a, "data", &data, &len) != 1)
		return inject_req_err(err, errlen, "content.attachments[%u].data: missing", i);
	if (inject_req_str(a, "file_name", &at->a_name, NULL) < 0 ||
	    inject_req_str(a, "content_type", &at->a_type, NULL) < 0 ||
	    inject_req_str(a, "content_id", &at->a_cid, NULL) < 0 ||
	    (b64 != NULL && !json_is_boolean(b64)))
		return inject_req_err(err, errlen, "content.attachments[%u]: file_name,"
				      " content_type, content_id must be strings, base64 a"
				      " boolean", i);
	if (at->a_type == NULL)
		at->a_type = "application/octet-stream";
	at->a_data = malloc(len + 4);	/* decoded is shorter */
	if (at->a_data == NULL)
		return inject_req_err(err, errlen, "out of memory");
	if (b64 != NULL && json_is_false(b64)) {
		memcpy(at->a_data, data, len);
		at->a_len = len;
		return 0;
	}
	long n = inject_dec_base64(data, len, at->a_data);

	if (n < 0)
		return inject_req_err(err, errlen, "content.attachments[%u].data: not base64", i);
	at->a_len = (size_t)n;
	return 0;
}

/* Printable ASCII but ':' and blanks (RFC 5322 ftext). */
static bool inject_req_field_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 76)
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == ':')
			return false;
	return true;
}

static int inject_req_content(json_t *c, const char *lifted, struct inject_content *ct,
			      char *err, size_t errlen)
{
	json_t *atts;

	if (json_is_string(c)) {
		ct->c_raw = true;
		ct->c_text = lifted != NULL ? lifted : json_string_value(c);
		ct->c_text_len = lifted != NULL ? strlen(lifted) : json_string_length(c);
		if (ct->c_text_len == 0)
			return inject_req_err(err, errlen, "content: empty");
		return 0;
	}
	if (!json_is_object(c))
		return inject_req_err(err, errlen, "content: must be a message (string) or an object");
	if (inject_req_addr(c, "from", &ct->c_from, err, errlen) < 0 ||
	    inject_req_addr(c, "reply_to", &ct->c_reply_to, err, errlen) < 0)
		return -1;
	if (ct->c_from.ia_email == NULL)
		return inject_req_err(err, errlen, "content.from: missing");
	if (inject_req_str(c, "subject", &ct->c_subject, NULL) < 0 ||
	    inject_req_str(c, "text_body", &ct->c_text_body, &ct->c_text_len_body) < 0 ||
	    inject_req_str(c, "html_body", &ct->c_html_body, &ct->c_html_len) < 0)
		return inject_req_err(err, errlen, "content: subject, text_body, html_body must"
				      " be strings");
	if (inject_req_vars(json_object_get(c, "headers"), "content.headers", &ct->c_headers,
			    err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < ct->c_headers.v_n; i++)
		if (!inject_req_field_name(ct->c_headers.v_kv[i].k_name))
			return inject_req_err(err, errlen, "content.headers: bad field name \"%.64s\"",
					      ct->c_headers.v_kv[i].k_name);
	atts = json_object_get(c, "attachments");
	if (atts == NULL || json_is_null(atts))
		return 0;
	if (!json_is_array(atts))
		return inject_req_err(err, errlen, "content.attachments: must be an array");
	if (json_array_size(atts) == 0)
		return 0;
	ct->c_att = calloc(json_array_size(atts), sizeof(*ct->c_att));
	if (ct->c_att == NULL)
		return inject_req_err(err, errlen, "out of memory");
	for (size_t i = 0; i < json_array_size(atts); i++) {
		ct->c_natt = (unsigned)i + 1;	/* so free sees the data */
		if (inject_req_attach(json_array_get(atts, i), (unsigned)i, &ct->c_att[i], err,
				      errlen) < 0)
			return -1;
	}
	return 0;
}

static int inject_req_rcpts(json_t *rs, struct inject_req *q, unsigned max_rcpt, char *err,
			    size_t errlen)
{
	if (!json_is_array(rs) || json_array_size(rs) == 0)
		return inject_req_err(err, errlen, "recipients: missing (an array of {\"email\"})");
	if (json_array_size(rs) > max_rcpt)
		return inject_req_err(err, errlen, "recipients: more than %u", max_rcpt);
	q->q_rcpts = calloc(json_array_size(rs), sizeof(*q->q_rcpts));
	if (q->q_rcpts == NULL)
		return inject_req_err(err, errlen, "out of memory");
	for (size_t i = 0; i < json_array_size(rs); i++) {
		json_t *r = json_array_get(rs, i);
		struct inject_rcpt *rc = &q->q_rcpts[i];
		char what[48];

		q->q_nrcpt = (unsigned)i + 1;
		if (json_is_string(r)) {
			rc->r_email = json_string_value(r);
			rc->r_len = json_string_length(r);
			continue;
		}
		if (!json_is_object(r) || inject_req_str(r, "email", &rc->r_email, &rc->r_len) != 1)
			return inject_req_err(err, errlen, "recipients[%zu].email: missing", i);
		snprintf(what, sizeof(what), "recipients[%zu].substitutions", i);
		if (inject_req_vars(json_object_get(r, "substitutions"), what, &rc->r_subst, err,
				    errlen) < 0)
			return -1;
		if (rc->r_subst.v_n > 0)
			q->q_per_rcpt = true;
	}
	return 0;
}

int inject_req_parse(struct inject_req *q, const char *buf, size_t len, unsigned max_rcpt,
		     char *err, size_t errlen)
{
	struct inject_lift l;
	json_error_t jerr;
	json_t *root, *c;
	int rc;

	memset(q, 0, sizeof(*q));
	if (inject_req_lift(buf, len, &l) == 1) {
		root = json_loadb(l.l_json, l.l_json_len, JSON_REJECT_DUPLICATES, &jerr);
		q->q_lifted = l.l_text;
		l.l_text = NULL;
		inject_lift_free(&l);
	} else {
		root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	}
	if (root == NULL) {
		free(q->q_lifted);
		q->q_lifted = NULL;
		return inject_req_err(err, errlen, "bad JSON: %s (line %d, column %d)", jerr.text,
				      jerr.line, jerr.column);
	}
	q->q_json = root;
	if (!json_is_object(root)) {
		rc = inject_req_err(err, errlen, "the request must be a JSON object");
		goto fail;
	}
	rc = inject_req_str(root, "envelope_sender", &q->q_sender, &q->q_sender_len);
	if (rc != 1) {
		rc = inject_req_err(err, errlen, "envelope_sender: missing (\"\" for the null sender)");
		goto fail;
	}
	c = json_object_get(root, "content");
	if (c == NULL) {
		rc = inject_req_err(err, errlen, "content: missing");
		goto fail;
	}
	if (inject_req_rcpts(json_object_get(root, "recipients"), q, max_rcpt, err, errlen) < 0 ||
	    inject_req_vars(json_object_get(root, "substitutions"), "substitutions", &q->q_subst,
			    err, errlen) < 0 ||
	    inject_req_content(c, q->q_lifted, &q->q_c, err, errlen) < 0) {
		rc = -1;
		goto fail;
	}
	return 0;
fail:
	inject_req_free(q);
	return rc;
}

void inject_req_free(struct inject_req *q)
{
	for (unsigned i = 0; i < q->q_nrcpt; i++)
		free(q->q_rcpts[i].r_subst.v_kv);
	free(q->q_rcpts);
	free(q->q_subst.v_kv);
	free(q->q_c.c_headers.v_kv);
	for (unsigned i = 0; i < q->q_c.c_natt; i++)
		free(q->q_c.c_att[i].a_data);
	free(q->q_c.c_att);
	if (q->q_json != NULL)
		json_decref((json_t *)q->q_json);
	free(q->q_lifted);
	memset(q, 0, sizeof(*q));
}
