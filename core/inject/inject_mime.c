/*
 * inject_mime.c: the message of an injection request for one recipient
 * (inject_req.h). A raw message gets its substitutions and CRLF line
 * ends; the builder's content becomes header fields (RFC 2047 words for
 * text that is not plain ASCII), and a body in the usual MIME shape:
 * multipart/mixed around attachments, multipart/related around inline
 * parts (content_id), multipart/alternative around text and HTML; text
 * in 7bit when it is plain ASCII in short lines, else quoted-printable;
 * attachments in base64. No I/O.
 */
#include "core/inject/inject_req.h"

#include <stdio.h>
#include <string.h>

struct inject_mime {
	const struct inject_req *m_req;
	const struct inject_rcpt *m_rcpt;
	const struct inject_mime_params *m_p;
	struct inject_buf *m_out;
	unsigned m_ninline, m_nattach;
};

static const struct inject_kv *inject_vars_find(const struct inject_vars *v, const char *name,
						size_t len)
{
	for (unsigned i = 0; v != NULL && i < v->v_n; i++)
		if (strlen(v->v_kv[i].k_name) == len && memcmp(v->v_kv[i].k_name, name, len) == 0)
			return &v->v_kv[i];
	return NULL;
}

static bool inject_var_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

/* text with "{{ name }}" replaced by the recipient's value, else the
 * global one, else nothing; anything else between braces stays. */
static void inject_subst(const struct inject_mime *m, struct inject_buf *b, const char *p,
			 size_t len)
{
	size_t i = 0, from = 0;

	if (m->m_req->q_subst.v_n == 0 && (m->m_rcpt == NULL || m->m_rcpt->r_subst.v_n == 0))
		i = len;	/* no variables: the text as it is */
	while (i + 1 < len) {
		size_t s, e, ns, ne;
		const struct inject_kv *kv;

		if (p[i] != '{' || p[i + 1] != '{') {
			i++;
			continue;
		}
		for (ns = i + 2; ns < len && p[ns] == ' '; ns++)
			;
		for (ne = ns; ne < len && inject_var_char(p[ne]); ne++)
			;
		for (e = ne; e < len && p[e] == ' '; e++)
			;
		if (ne == ns || e + 1 >= len || p[e] != '}' || p[e + 1] != '}') {
			i += 2;
			continue;
		}
		s = i;
		inject_buf_put(b, p + from, s - from);
		kv = m->m_rcpt != NULL ? inject_vars_find(&m->m_rcpt->r_subst, p + ns, ne - ns) : NULL;
		if (kv == NULL)
			kv = inject_vars_find(&m->m_req->q_subst, p + ns, ne - ns);
		if (kv != NULL)
			inject_buf_put(b, kv->k_value, kv->k_len);
		i = from = e + 2;
	}
	inject_buf_put(b, p + from, len - from);
}

/* Line ends as CRLF: a lone LF or CR becomes CRLF. */
static void inject_crlf(struct inject_buf *b, const char *p, size_t len)
{
	size_t from = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			i++;
			continue;
		}
		if (p[i] != '\r' && p[i] != '\n')
			continue;
		inject_buf_put(b, p + from, i - from);
		inject_buf_put(b, "\r\n", 2);
		from = i + 1;
	}
	inject_buf_put(b, p + from, len - from);
}

/* Substituted, line ends normalised: into tmp (reset first); false
 * when out of room (m_out flagged). */
static bool inject_text(struct inject_mime *m, struct inject_buf *tmp, const char *p,
			size_t len)
{
	struct inject_buf s = { .b_max = m->m_out->b_max };

	tmp->b_len = 0;
	tmp->b_max = m->m_out->b_max;
	inject_subst(m, &s, p, len);
	inject_crlf(tmp, s.b_p != NULL ? s.b_p : "", s.b_len);
	inject_buf_free(&s);
	if (tmp->b_over || tmp->b_oom || s.b_over || s.b_oom) {
		m->m_out->b_over |= tmp->b_over || s.b_over;
		m->m_out->b_oom |= tmp->b_oom || s.b_oom;
		return false;
	}
	return true;
}

/* "Name: value" with the value substituted; line breaks in it (from a
 * variable) become blanks, so a value never starts a new field. */
static void inject_field(struct inject_mime *m, const char *name, const char *v, size_t len)
{
	struct inject_buf s = { .b_max = m->m_out->b_max };
	struct inject_buf *o = m->m_out;

	inject_subst(m, &s, v, len);
	for (size_t i = 0; i < s.b_len; i++)
		if (s.b_p[i] == '\r' || s.b_p[i] == '\n')
			s.b_p[i] = ' ';
	inject_buf_puts(o, name);
	inject_buf_put(o, ": ", 2);
	if (inject_enc_header_plain(s.b_p != NULL ? s.b_p : "", s.b_len))
		inject_buf_put(o, s.b_p, s.b_len);
	else
		inject_enc_2047(o, s.b_p, s.b_len, strlen(name) + 2);
	inject_buf_put(o, "\r\n", 2);
	o->b_over |= s.b_over;
	o->b_oom |= s.b_oom;
	inject_buf_free(&s);
}

/* "Name: display name <address>". */
static void inject_addr_field(struct inject_mime *m, const char *name, const struct inject_addr *a)
{
	struct inject_buf *o = m->m_out;

	if (a->ia_name == NULL || a->ia_name[0] == '\0') {
		inject_field(m, name, a->ia_email, strlen(a->ia_email));
		return;
	}
	struct inject_buf s = { .b_max = o->b_max };

	inject_subst(m, &s, a->ia_name, strlen(a->ia_name));
	inject_buf_puts(o, name);
	inject_buf_put(o, ": ", 2);
	if (inject_enc_header_plain(s.b_p != NULL ? s.b_p : "", s.b_len)) {
		inject_buf_put(o, "\"", 1);
		for (size_t i = 0; i < s.b_len; i++) {
			if (s.b_p[i] == '"' || s.b_p[i] == '\\')
				inject_buf_put(o, "\\", 1);
			inject_buf_put(o, &s.b_p[i], 1);
		}
		inject_buf_put(o, "\"", 1);
	} else {
		inject_enc_2047(o, s.b_p, s.b_len, strlen(name) + 2);
	}
	inject_buf_put(o, "\r\n <", 4);
	inject_buf_puts(o, a->ia_email);
	inject_buf_put(o, ">\r\n", 3);
	o->b_over |= s.b_over;
	o->b_oom |= s.b_oom;
	inject_buf_free(&s);
}

static void inject_boundary(struct inject_mime *m, char *b, size_t cap, const char *kind)
{
	snprintf(b, cap, "=_rm_%s_%s", kind, m->m_p->boundary_seed);
}

static void inject_multipart_head(struct inject_mime *m, const char *kind, const char *bnd)
{
	struct inject_buf *o = m->m_out;

	inject_buf_puts(o, "Content-Type: multipart/");
	inject_buf_puts(o, kind);
	inject_buf_puts(o, "; boundary=\"");
	inject_buf_puts(o, bnd);
	inject_buf_puts(o, "\"\r\n\r\n");
}

/* A delimiter line; every part before one ends with a CRLF of its own,
 * so the CRLF that belongs to the delimiter (RFC 2046 5.1.1) is extra. */
static void inject_delim(struct inject_mime *m, const char *bnd, bool first, bool last)
{
	struct inject_buf *o = m->m_out;

	inject_buf_puts(o, first ? "--" : "\r\n--");
	inject_buf_puts(o, bnd);
	inject_buf_puts(o, last ? "--\r\n" : "\r\n");
}

/* A text part: its fields, a blank line, the body ending in CRLF. */
static void inject_text_part(struct inject_mime *m, const char *type, const char *p, size_t len)
{
	struct inject_buf t = { 0 };
	struct inject_buf *o = m->m_out;

	if (!inject_text(m, &t, p, len)) {
		inject_buf_free(&t);
		return;
	}
	inject_buf_puts(o, "Content-Type: ");
	inject_buf_puts(o, type);
	inject_buf_puts(o, "; charset=utf-8\r\n");
	if (inject_enc_body_plain(t.b_p != NULL ? t.b_p : "", t.b_len)) {
		inject_buf_puts(o, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		inject_buf_put(o, t.b_p, t.b_len);
		if (t.b_len < 2 || memcmp(t.b_p + t.b_len - 2, "\r\n", 2) != 0)
			inject_buf_put(o, "\r\n", 2);
	} else {
		inject_buf_puts(o, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		inject_enc_qp(o, t.b_p, t.b_len);
	}
	inject_buf_free(&t);
}

/* A parameter value: quoted ASCII, or RFC 2231 UTF-8 percent-encoded. */
static void inject_param(struct inject_buf *o, const char *name, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	bool plain = true;

	for (const char *p = v; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x7f || (unsigned char)*p < 0x20)
			plain = false;
	inject_buf_puts(o, ";\r\n ");
	inject_buf_puts(o, name);
	if (plain) {
		inject_buf_puts(o, "=\"");
		for (const char *p = v; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				inject_buf_put(o, "\\", 1);
			inject_buf_put(o, p, 1);
		}
		inject_buf_puts(o, "\"");
		return;
	}
	inject_buf_puts(o, "*=utf-8''");
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			inject_buf_put(o, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			inject_buf_put(o, e, 3);
		}
	}
}

/* Header text from the request (a type, an id): controls become blanks. */
static void inject_puts_clean(struct inject_buf *o, const char *s)
{
	for (; *s != '\0'; s++)
		inject_buf_put(o, (unsigned char)*s < 0x20 || *s == 0x7f ? " " : s, 1);
}

static void inject_attach_part(struct inject_mime *m, const struct inject_attach *a)
{
	struct inject_buf *o = m->m_out;

	inject_buf_puts(o, "Content-Type: ");
	inject_puts_clean(o, a->a_type);
	if (a->a_name != NULL)
		inject_param(o, "name", a->a_name);
	inject_buf_puts(o, "\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: ");
	inject_buf_puts(o, a->a_cid != NULL ? "inline" : "attachment");
	if (a->a_name != NULL)
		inject_param(o, "filename", a->a_name);
	inject_buf_puts(o, "\r\n");
	if (a->a_cid != NULL) {
		inject_buf_puts(o, "Content-ID: <");
		inject_puts_clean(o, a->a_cid);
		inject_buf_puts(o, ">\r\n");
	}
	inject_buf_puts(o, "\r\n");
	inject_enc_base64(o, a->a_data, a->a_len);
}

static void inject_alternative(struct inject_mime *m)
{
	const struct inject_content *c = &m->m_req->q_c;
	char bnd[96];

	if (c->c_text_body == NULL || c->c_html_body == NULL) {
		if (c->c_html_body != NULL)
			inject_text_part(m, "text/html", c->c_html_body, c->c_html_len);
		else
			inject_text_part(m, "text/plain", c->c_text_body ? c->c_text_body : "",
					 c->c_text_len_body);
		return;
	}
	inject_boundary(m, bnd, sizeof(bnd), "alt");
	inject_multipart_head(m, "alternative", bnd);
	inject_delim(m, bnd, true, false);
	inject_text_part(m, "text/plain", c->c_text_body, c->c_text_len_body);
	inject_delim(m, bnd, false, false);
	inject_text_part(m, "text/html", c->c_html_body, c->c_html_len);
	inject_delim(m, bnd, false, true);
}

/* The parts with a content_id (inline: true) or without (false). */
static void inject_attachments(struct inject_mime *m, const char *bnd, bool inline_parts)
{
	const struct inject_content *c = &m->m_req->q_c;

	for (unsigned i = 0; i < c->c_natt; i++) {
		if ((c->c_att[i].a_cid != NULL) != inline_parts)
			continue;
		inject_delim(m, bnd, false, false);
		inject_attach_part(m, &c->c_att[i]);
	}
}

static void inject_related(struct inject_mime *m)
{
	char bnd[96];

	if (m->m_ninline == 0) {
		inject_alternative(m);
		return;
	}
	inject_boundary(m, bnd, sizeof(bnd), "rel");
	inject_multipart_head(m, "related", bnd);
	inject_delim(m, bnd, true, false);
	inject_alternative(m);
	inject_attachments(m, bnd, true);
	inject_delim(m, bnd, false, true);
}

static void inject_mixed(struct inject_mime *m)
{
	char bnd[96];

	if (m->m_nattach == 0) {
		inject_related(m);
		return;
	}
	inject_boundary(m, bnd, sizeof(bnd), "mix");
	inject_multipart_head(m, "mixed", bnd);
	inject_delim(m, bnd, true, false);
	inject_related(m);
	inject_attachments(m, bnd, false);
	inject_delim(m, bnd, false, true);
}

static bool inject_has_field(const struct inject_vars *h, const char *name)
{
	for (unsigned i = 0; i < h->v_n; i++)
		if (strcasecmp(h->v_kv[i].k_name, name) == 0)
			return true;
	return false;
}

static void inject_build(struct inject_mime *m)
{
	const struct inject_content *c = &m->m_req->q_c;
	const struct inject_vars *h = &c->c_headers;
	struct inject_buf *o = m->m_out;

	for (unsigned i = 0; i < c->c_natt; i++) {
		if (c->c_att[i].a_cid != NULL)
			m->m_ninline++;
		else
			m->m_nattach++;
	}
	inject_addr_field(m, "From", &c->c_from);
	if (!inject_has_field(h, "To")) {
		if (m->m_rcpt != NULL)
			inject_field(m, "To", m->m_rcpt->r_email, m->m_rcpt->r_len);
		else if (m->m_req->q_nrcpt == 1)
			inject_field(m, "To", m->m_req->q_rcpts[0].r_email,
				     m->m_req->q_rcpts[0].r_len);
		else
			inject_buf_puts(o, "To: undisclosed-recipients:;\r\n");
	}
	if (c->c_reply_to.ia_email != NULL && !inject_has_field(h, "Reply-To"))
		inject_addr_field(m, "Reply-To", &c->c_reply_to);
	if (c->c_subject != NULL && !inject_has_field(h, "Subject"))
		inject_field(m, "Subject", c->c_subject, strlen(c->c_subject));
	if (!inject_has_field(h, "Date")) {
		inject_buf_puts(o, "Date: ");
		inject_buf_puts(o, m->m_p->date);
		inject_buf_puts(o, "\r\n");
	}
	if (!inject_has_field(h, "Message-ID")) {
		inject_buf_puts(o, "Message-ID: ");
		inject_buf_puts(o, m->m_p->msgid);
		inject_buf_puts(o, "\r\n");
	}
	for (unsigned i = 0; i < h->v_n; i++) {
		const char *n = h->v_kv[i].k_name;

		/* the MIME structure is the builder's */
		if (strcasecmp(n, "MIME-Version") == 0 || strcasecmp(n, "Content-Type") == 0 ||
		    strcasecmp(n, "Content-Transfer-Encoding") == 0)
			continue;
		inject_field(m, n, h->v_kv[i].k_value, h->v_kv[i].k_len);
	}
	inject_buf_puts(o, "MIME-Version: 1.0\r\n");
	inject_mixed(m);
}

int inject_mime_build(const struct inject_req *req, const struct inject_rcpt *rcpt,
		      const struct inject_mime_params *p, struct inject_buf *out)
{
	struct inject_mime m = { .m_req = req, .m_rcpt = rcpt, .m_p = p, .m_out = out };

	if (req->q_c.c_raw) {
		struct inject_buf t = { 0 };

		if (inject_text(&m, &t, req->q_c.c_text, req->q_c.c_text_len)) {
			inject_buf_put(out, t.b_p, t.b_len);
			/* a message ends with a line end */
			if (t.b_len < 2 || memcmp(t.b_p + t.b_len - 2, "\r\n", 2) != 0)
				inject_buf_put(out, "\r\n", 2);
		}
		inject_buf_free(&t);
	} else {
		inject_build(&m);
	}
	return out->b_over || out->b_oom ? -1 : 0;
}
