/*
 * main_queue_api.c: "ringmta queue summary|list|show|hold|release|delete|
 * bounce|flush" through the running daemon's admin API (core/admin) with
 * the blocking HTTP client (core/http/http_client.h): the URL from
 * admin_listen (or --api), the first token of admin_token_file (or
 * --token-file), human tables by default and the API's JSON with --json.
 */
#include "core/app/main_queue.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http/http_client.h"
#include "tls/tls_lib.h"

#define MAIN_QAPI_TIMEOUT_MS 120000u	/* a bounce of the whole queue takes a while */
#define MAIN_QAPI_BODY_MAX (512u << 20)
#define MAIN_QAPI_PAGE "1000"

struct main_qapi {
	const struct main_qopts *o;
	struct http_conn conn;
	char auth[600];			/* "Authorization: Bearer ..." or "" */
	char url[300];
};

int main_queue_api_url(const struct config *cfg, const struct main_qopts *o, char *buf,
		       size_t len)
{
	if (o->api != NULL) {
		snprintf(buf, len, "%s", o->api);
		return 0;
	}
	if (cfg->admin_listen[0] == '\0') {
		fprintf(stderr, "ringmta: queue %s: the admin API is off (admin_listen is empty):"
			" use --api URL, or --offline to read the queue directly\n", o->verb);
		return -1;
	}
	snprintf(buf, len, "http://%s", cfg->admin_listen);
	return 0;
}

/* The first token of the file: its first line that is not blank or a
 * comment. */
static int main_qapi_token(struct main_qapi *c, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "ringmta: queue: token file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *e;

		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, " \t\r\n");
		*e = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", p);
		break;
	}
	fclose(f);
	if (c->auth[0] == '\0') {
		fprintf(stderr, "ringmta: queue: token file %s: no token in it\n", path);
		return -1;
	}
	return 0;
}

/* %-encode s onto the end of buf. */
static void main_qapi_enc(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	for (; *s != '\0' && n + 4 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '@')
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, len - n, "%%%02X", ch);
	}
	buf[n] = '\0';
}

static void main_qapi_arg(char *buf, size_t len, const char *name, const char *value)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%c%s=", strchr(buf, '?') ? '&' : '?', name);
	main_qapi_enc(buf, len, value);
}

/*
 * One request: 0 with *body_r (a new reference; NULL for a non-JSON
 * answer, whose bytes are in raw when given) and *status_r; -1 after
 * printing why; MAIN_QUEUE_NO_DAEMON when nothing listens.
 */
static int main_qapi_call(struct main_qapi *c, const char *method, const char *path,
			  json_t *send, int *status_r, json_t **body_r, struct http_resp *raw)
{
	const char *hdr[1] = { c->auth };
	struct http_req q = {
		.hq_method = method, .hq_path = path, .hq_headers = hdr,
		.hq_nheaders = c->auth[0] ? 1 : 0,
	};
	struct http_resp r;
	char *text = NULL;
	json_error_t jerr;

	*body_r = NULL;
	if (send != NULL) {
		text = json_dumps(send, JSON_COMPACT);
		q.hq_content_type = "application/json";
		q.hq_body = text;
		q.hq_body_len = text != NULL ? strlen(text) : 0;
	}
	if (http_client_request(&c->conn, &q, &r) < 0) {
		free(text);
		if (strstr(c->conn.hc_error, "refused") != NULL)
			return MAIN_QUEUE_NO_DAEMON;
		fprintf(stderr, "ringmta: queue %s: %s: %s\n", c->o->verb, c->url,
			c->conn.hc_error);
		return -1;
	}
	free(text);
	*status_r = r.hr_status;
	if (raw != NULL && r.hr_status == 200) {
		*raw = r;
		return 0;
	}
	if (r.hr_body_len > 0)
		*body_r = json_loadb(r.hr_body, r.hr_body_len, 0, &jerr);
	http_resp_free(&r);
	if (*body_r == NULL) {
		fprintf(stderr, "ringmta: queue %s: %s answered %d without JSON\n", c->o->verb,
			c->url, *status_r);
		return -1;
	}
	return 0;
}

/* An error answer, said plainly: 1, or 2 for what the user got wrong. */
static int main_qapi_error(struct main_qapi *c, int status, json_t *j)
{
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j, "detail"));

	fprintf(stderr, "ringmta: queue %s: %s%s%s%s\n", c->o->verb, e != NULL ? e : "error",
		d != NULL ? ": " : "", d != NULL ? d : "",
		status == 401 ? " (check --token-file or admin_token_file)" : "");
	return status == 400 ? 2 : 1;
}

static void main_qapi_print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
}

static const char *main_qapi_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "-";
}

static int main_qapi_summary(struct main_qapi *c)
{
	const struct main_qopts *o = c->o;
	char path[2048] = "/api/v1/queue/summary";
	json_t *j, *rows, *row, *buckets, *b;
	size_t i, k;
	int status, rc;

	for (unsigned f = 0; f < o->nf; f++)
		main_qapi_arg(path, sizeof(path), o->fname[f], o->fvalue[f]);
	if (o->by != NULL)
		main_qapi_arg(path, sizeof(path), "by", o->by);
	if (o->top != NULL)
		main_qapi_arg(path, sizeof(path), "top", o->top);
	rc = main_qapi_call(c, "GET", path, NULL, &status, &j, NULL);
	if (rc != 0)
		return rc;
	if (status != 200) {
		rc = main_qapi_error(c, status, j);
	} else if (o->json) {
		main_qapi_print_json(j);
	} else {
		buckets = json_object_get(j, "buckets");
		rows = json_object_get(j, "rows");
		printf("%-32s %7s", main_qapi_str(j, "by"), "total");
		json_array_foreach(buckets, i, b)
			printf(" %7s", json_string_value(b));
		putchar('\n');
		for (k = 0; k <= json_array_size(rows); k++) {
			row = k < json_array_size(rows) ? json_array_get(rows, k) :
			      json_object_get(j, "totals");
			printf("%-32s %7" JSON_INTEGER_FORMAT, k < json_array_size(rows) ?
			       main_qapi_str(row, "key") : "TOTAL",
			       json_integer_value(json_object_get(row, "total")));
			json_array_foreach(buckets, i, b)
				printf(" %7" JSON_INTEGER_FORMAT, json_integer_value(
				       json_object_get(row, json_string_value(b))));
			putchar('\n');
		}
	}
	json_decref(j);
	return rc;
}

static void main_qapi_list_line(json_t *m)
{
	const char *state = main_qapi_str(m, "state");

	/* The first line as the offline listing writes it, then the state. */
	printf("%s %" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT "s <%s> %s pending=%"
	       JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " next=%s\n",
	       main_qapi_str(m, "id"), json_integer_value(json_object_get(m, "size")),
	       json_integer_value(json_object_get(m, "age_s")),
	       json_string_value(json_object_get(m, "sender")), state,
	       json_integer_value(json_object_get(m, "pending")),
	       json_integer_value(json_object_get(m, "recipients")),
	       main_qapi_str(m, "next_attempt"));
	if (json_is_string(json_object_get(m, "last_reply")))
		printf("    class=%s reply=\"%s\"\n", main_qapi_str(m, "class"),
		       main_qapi_str(m, "last_reply"));
}

static int main_qapi_list(struct main_qapi *c)
{
	const struct main_qopts *o = c->o;
	json_t *all = json_array(), *j = NULL, *msgs, *m;
	const char *cursor = o->cursor;
	char *next = NULL;
	size_t i;
	int status, rc = 0;

	for (;;) {
		char path[2048] = "/api/v1/queue/messages";

		for (unsigned f = 0; f < o->nf; f++)
			main_qapi_arg(path, sizeof(path), o->fname[f], o->fvalue[f]);
		main_qapi_arg(path, sizeof(path), "limit", o->limit != NULL ? o->limit :
			      MAIN_QAPI_PAGE);
		if (cursor != NULL)
			main_qapi_arg(path, sizeof(path), "cursor", cursor);
		rc = main_qapi_call(c, "GET", path, NULL, &status, &j, NULL);
		if (rc != 0)
			break;
		if (status != 200) {
			rc = main_qapi_error(c, status, j);
			break;
		}
		msgs = json_object_get(j, "messages");
		json_array_foreach(msgs, i, m) {
			if (o->json)
				json_array_append(all, m);
			else
				main_qapi_list_line(m);
		}
		/* With --limit, one page; without, every page. */
		free(next);
		next = json_is_string(json_object_get(j, "next_cursor")) ?
		       strdup(json_string_value(json_object_get(j, "next_cursor"))) : NULL;
		if (o->limit != NULL || next == NULL) {
			if (o->json) {
				json_t *out = json_pack("{s:O, s:I, s:o}", "messages", all, "count",
							(json_int_t)json_array_size(all),
							"next_cursor", next && o->limit ?
							json_string(next) : json_null());

				main_qapi_print_json(out);
				json_decref(out);
			}
			break;
		}
		cursor = next;
		json_decref(j);
		j = NULL;
	}
	free(next);
	json_decref(j);
	json_decref(all);
	return rc;
}

static int main_qapi_show(struct main_qapi *c)
{
	char path[128];
	struct http_resp raw;
	json_t *j, *r;
	size_t i;
	int status, rc;

	if (c->o->nargs != 1) {
		fprintf(stderr, "ringmta: queue show: expected one queue id (16 hex digits)\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/queue/messages/%s%s", c->o->args[0],
		 c->o->json && c->o->body ? "?body=1" : "");
	rc = main_qapi_call(c, "GET", path, NULL, &status, &j, NULL);
	if (rc != 0)
		return rc;
	if (status != 200) {
		rc = main_qapi_error(c, status, j);
		if (status == 404)
			fprintf(stderr, "ringmta: queue: no message %s\n", c->o->args[0]);
		json_decref(j);
		return status == 404 ? 1 : rc;
	}
	if (c->o->json) {
		main_qapi_print_json(j);
		json_decref(j);
		return 0;
	}
	printf("id: %s\narrival: %s\nsize: %" JSON_INTEGER_FORMAT "\nclient: %s\nhelo: %s\n"
	       "sender: <%s>\nstate: %s\n", main_qapi_str(j, "id"), main_qapi_str(j, "arrival"),
	       json_integer_value(json_object_get(j, "size")), main_qapi_str(j, "client"),
	       main_qapi_str(j, "helo"), json_string_value(json_object_get(j, "sender")),
	       main_qapi_str(j, "state"));
	if (json_is_string(json_object_get(j, "pool")))
		printf("pool: %s\n", main_qapi_str(j, "pool"));
	json_array_foreach(json_object_get(j, "recipients"), i, r) {
		printf("recipient: <%s> %s attempts=%" JSON_INTEGER_FORMAT " next=%s",
		       main_qapi_str(r, "address"), main_qapi_str(r, "state"),
		       json_integer_value(json_object_get(r, "attempts")),
		       main_qapi_str(r, "next_attempt"));
		if (json_is_string(json_object_get(r, "class")))
			printf(" class=%s", main_qapi_str(r, "class"));
		if (json_is_string(json_object_get(r, "last_reply")))
			printf(" reply=\"%s\"", main_qapi_str(r, "last_reply"));
		putchar('\n');
	}
	json_decref(j);
	/* Then the stored message, byte for byte. */
	putchar('\n');
	snprintf(path, sizeof(path), "/api/v1/queue/messages/%s?body=raw", c->o->args[0]);
	rc = main_qapi_call(c, "GET", path, NULL, &status, &j, &raw);
	if (rc != 0)
		return rc;
	if (status != 200) {
		rc = main_qapi_error(c, status, j);
		json_decref(j);
		return rc;
	}
	fwrite(raw.hr_body, 1, raw.hr_body_len, stdout);
	http_resp_free(&raw);
	return 0;
}

static int main_qapi_change(struct main_qapi *c)
{
	const struct main_qopts *o = c->o;
	char path[64];
	json_t *req = json_object(), *j, *e;
	const char *did;
	size_t i;
	int status, rc;

	if (o->nargs > 0) {
		json_t *ids = json_array();

		for (unsigned k = 0; k < o->nargs; k++)
			json_array_append_new(ids, json_string(o->args[k]));
		json_object_set_new(req, "ids", ids);
	}
	for (unsigned f = 0; f < o->nf; f++)
		json_object_set_new(req, o->fname[f], json_string(o->fvalue[f]));
	if (o->all)
		json_object_set_new(req, "all", json_true());
	if (o->reason != NULL && strcmp(o->verb, "bounce") == 0)
		json_object_set_new(req, "reason", json_string(o->reason));
	else if (o->reason != NULL) {
		fprintf(stderr, "ringmta: queue %s: --reason is for bounce\n", o->verb);
		json_decref(req);
		return 2;
	}
	if ((o->nargs > 0) + (o->nf > 0) + o->all != 1) {
		fprintf(stderr, "ringmta: queue %s: %s\n", o->verb, (o->nargs > 0) + (o->nf > 0) +
			o->all == 0 ? "name the messages: ids, filter options or --all (never"
			" everything by default)" : "ids, filter options or --all: one of them");
		json_decref(req);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/queue/%s", o->verb);
	rc = main_qapi_call(c, "POST", path, req, &status, &j, NULL);
	json_decref(req);
	if (rc != 0)
		return rc;
	if (o->json)
		main_qapi_print_json(j);
	if (status != 200 && status != 404 && status != 409) {
		rc = main_qapi_error(c, status, j);
		json_decref(j);
		return rc;
	}
	did = strcmp(o->verb, "hold") == 0 ? "held" : strcmp(o->verb, "release") == 0 ?
	      "released" : strcmp(o->verb, "delete") == 0 ? "deleted" :
	      strcmp(o->verb, "bounce") == 0 ? "bounced" : "flushed";
	if (!o->json) {
		if (strcmp(o->verb, "flush") == 0) {
			size_t n = json_array_size(json_object_get(j, "ids"));

			printf("flushed %zu message%s\n", n, n == 1 ? "" : "s");
		} else {
			json_array_foreach(json_object_get(j, "ids"), i, e)
				printf("%s %s\n", did, json_string_value(e));
		}
		json_array_foreach(json_object_get(j, "dsn_ids"), i, e)
			printf("dsn %s queued to the sender\n", json_string_value(e));
	}
	json_array_foreach(json_object_get(j, "in_flight"), i, e)
		fprintf(stderr, "ringmta: queue %s: %s is being delivered now; not %s (try again"
			" when the attempt is over)\n", o->verb, json_string_value(e), did);
	json_array_foreach(json_object_get(j, "not_found"), i, e)
		fprintf(stderr, "ringmta: queue: no message %s\n", json_string_value(e));
	rc = json_array_size(json_object_get(j, "in_flight")) +
	     json_array_size(json_object_get(j, "not_found")) > 0 ? 1 : 0;
	json_decref(j);
	return rc;
}

int main_queue_api(const struct config *cfg, const struct main_qopts *o)
{
	struct main_qapi c = { .o = o };
	struct http_conn_opts ho = {
		.ho_timeout_ms = MAIN_QAPI_TIMEOUT_MS,
		.ho_limits = { .hl_head_max = 16384, .hl_body_max = MAIN_QAPI_BODY_MAX },
	};
	const char *tf = o->token_file != NULL ? o->token_file :
			 cfg->admin_token_file[0] != '\0' ? cfg->admin_token_file : NULL;
	char err[300];
	int rc;

	if (main_queue_api_url(cfg, o, c.url, sizeof(c.url)) < 0)
		return 1;
	if (tf != NULL && main_qapi_token(&c, tf) < 0)
		return 1;
	if (strncmp(c.url, "https:", 6) == 0 && tls_lib_init() < 0) {
		fprintf(stderr, "ringmta: queue: the TLS library failed to initialise\n");
		return 1;
	}
	if (http_conn_init(&c.conn, c.url, &ho, err, sizeof(err)) < 0) {
		fprintf(stderr, "ringmta: queue %s: --api %s: %s\n", o->verb, c.url, err);
		return 2;
	}
	if (strcmp(o->verb, "summary") == 0)
		rc = main_qapi_summary(&c);
	else if (strcmp(o->verb, "list") == 0)
		rc = main_qapi_list(&c);
	else if (strcmp(o->verb, "show") == 0)
		rc = main_qapi_show(&c);
	else
		rc = main_qapi_change(&c);
	http_conn_free(&c.conn);
	return rc;
}
