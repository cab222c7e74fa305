/*
 * event_sink_webhook.c: a webhook sink: POST the records to one URL
 * (http_client.h: keep-alive, HTTPS verified by default), one record per
 * request with webhook_batch_max = 1, else a JSON array. Any 2xx is
 * success; anything else, a timeout or a broken connection is a failure
 * that events.c retries with the same batch. Extra headers (an
 * Authorization, say) come from webhook_header_file, read once at start
 * so a secret never sits in ringmta.conf. Runs on its sink's thread.
 */
#include "core/events/events_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http/http_client.h"

#define EV_WH_HEADERS_MAX 16
#define EV_WH_HEADER_LINE 1024

struct ev_webhook {
	struct http_conn w_conn;
	bool w_array;
	char *w_hdrs[EV_WH_HEADERS_MAX];
	unsigned w_nhdrs;
};

static void ev_wh_free(void *impl)
{
	struct ev_webhook *w = impl;

	http_conn_free(&w->w_conn);
	for (unsigned i = 0; i < w->w_nhdrs; i++)
		free(w->w_hdrs[i]);
	free(w);
}

/* "Name: value" lines; blank lines and # comments skipped. */
static int ev_wh_headers(struct ev_webhook *w, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[EV_WH_HEADER_LINE];
	unsigned lineno = 0;

	if (f == NULL) {
		snprintf(err, errlen, "webhook_header_file %s: cannot open", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");
		const char *colon;

		lineno++;
		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (colon == NULL || colon == line || strpbrk(line, " \t") < colon ||
		    w->w_nhdrs == EV_WH_HEADERS_MAX) {
			snprintf(err, errlen, "webhook_header_file %s line %u: expected"
				 " \"Name: value\" (at most %u)", path, lineno, EV_WH_HEADERS_MAX);
			fclose(f);
			return -1;
		}
		for (const char *p = line; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				snprintf(err, errlen, "webhook_header_file %s line %u: control"
					 " characters", path, lineno);
				fclose(f);
				return -1;
			}
		if ((w->w_hdrs[w->w_nhdrs] = strdup(line)) == NULL) {
			fclose(f);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		w->w_nhdrs++;
	}
	fclose(f);
	return 0;
}

int event_sink_webhook_new(const struct config *cfg, const char *url, void **impl_r,
			   char *err, size_t errlen)
{
	struct ev_webhook *w = calloc(1, sizeof(*w));
	struct http_conn_opts o = {
		.ho_timeout_ms = cfg->webhook_timeout * 1000u,
		.ho_ca_file = cfg->tls_ca_file,
		.ho_no_verify = !cfg->webhook_tls_verify,
	};
	char uerr[400];

	*impl_r = NULL;
	if (w == NULL) {
		snprintf(err, errlen, "webhook: out of memory");
		return -1;
	}
	w->w_conn.hc_fd = -1;
	if (http_conn_init(&w->w_conn, url, &o, uerr, sizeof(uerr)) < 0) {
		snprintf(err, errlen, "webhook_url: %s", uerr);
		ev_wh_free(w);
		return -1;
	}
	w->w_array = cfg->webhook_batch_max > 1;
	if (cfg->webhook_header_file[0] != '\0' &&
	    ev_wh_headers(w, cfg->webhook_header_file, err, errlen) < 0) {
		ev_wh_free(w);
		return -1;
	}
	*impl_r = w;
	return 0;
}

static int ev_wh_send(void *impl, const struct event_batch *b, char *err, size_t errlen)
{
	struct ev_webhook *w = impl;
	struct http_req q = {
		.hq_method = "POST",
		.hq_headers = (const char *const *)w->w_hdrs,
		.hq_nheaders = w->w_nhdrs,
		.hq_content_type = "application/json",
	};
	struct http_resp r;
	char *body = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (!w->w_array && b->eb_n == 1) {
		q.hq_body = b->eb_recs[0];
		q.hq_body_len = b->eb_lens[0];
	} else {
		if ((f = open_memstream(&body, &len)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		fputc('[', f);
		for (unsigned i = 0; i < b->eb_n; i++) {
			if (i > 0)
				fputc(',', f);
			fwrite(b->eb_recs[i], 1, b->eb_lens[i], f);
		}
		fputc(']', f);
		if (fclose(f) != 0) {
			free(body);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		q.hq_body = body;
		q.hq_body_len = len;
	}
	rc = http_client_request(&w->w_conn, &q, &r);
	free(body);
	if (rc < 0) {
		snprintf(err, errlen, "%s", w->w_conn.hc_error);
		return -1;
	}
	if (r.hr_status < 200 || r.hr_status > 299) {
		snprintf(err, errlen, "HTTP %d %.*s", r.hr_status,
			 (int)(r.hr_reason_len > 80 ? 80 : r.hr_reason_len), r.hr_reason);
		http_resp_free(&r);
		return -1;
	}
	http_resp_free(&r);
	return 0;
}

const struct event_sink_ops event_sink_webhook_ops = {
	.so_send = ev_wh_send,
	.so_reopen = NULL,
	.so_free = ev_wh_free,
};
