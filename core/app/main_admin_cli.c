/*
 * main_admin_cli.c: how CLI verbs reach the running daemon's admin API:
 * one JSON request to admin_listen over the engine's HTTP client
 * (core/http/http_client.h), with the first token of admin_token_file
 * when one is set. A wildcard admin_listen is reached on loopback.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/app/main.h"
#include "core/http/http_client.h"

#define MAIN_ADMIN_TIMEOUT_MS 30000u

/* The first token of the file (blank and '#' lines skipped) into out;
 * false when none can be read. */
static bool main_admin_token(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	bool ok = false;

	if (f == NULL)
		return false;
	while (!ok && fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		if (line[0] == '\0' || line[0] == '#' || n >= len)
			continue;
		memcpy(out, line, n + 1);
		ok = true;
	}
	fclose(f);
	return ok;
}

int main_admin_call(const struct config *cfg, const char *method, const char *path,
		    json_t *body, json_t **reply_r, char *err, size_t errlen)
{
	struct http_conn_opts o = { .ho_timeout_ms = MAIN_ADMIN_TIMEOUT_MS };
	struct http_conn c;
	struct http_req q = { .hq_method = method, .hq_path = path };
	struct http_resp r;
	const char *hdr[1];
	char url[300], token[600], auth[640], *text = NULL;
	const char *listen = cfg->admin_listen;
	json_error_t je;
	int status;

	*reply_r = NULL;
	if (listen == NULL || listen[0] == '\0') {
		snprintf(err, errlen, "the admin API is off (admin_listen is empty)");
		return -1;
	}
	if (strncmp(listen, "0.0.0.0:", 8) == 0)
		snprintf(url, sizeof(url), "http://127.0.0.1:%s", listen + 8);
	else if (strncmp(listen, "[::]:", 5) == 0)
		snprintf(url, sizeof(url), "http://[::1]:%s", listen + 5);
	else
		snprintf(url, sizeof(url), "http://%s", listen);
	if (cfg->admin_token_file != NULL && cfg->admin_token_file[0] != '\0') {
		if (!main_admin_token(cfg->admin_token_file, token, sizeof(token))) {
			snprintf(err, errlen, "no token can be read from %s", cfg->admin_token_file);
			return -1;
		}
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr[0] = auth;
		q.hq_headers = hdr;
		q.hq_nheaders = 1;
	}
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		q.hq_content_type = "application/json";
		q.hq_body = text;
		q.hq_body_len = strlen(text);
	}
	if (http_conn_init(&c, url, &o, err, errlen) < 0) {
		free(text);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	if (http_client_request(&c, &q, &r) < 0) {
		snprintf(err, errlen, "cannot reach the daemon's admin API at %s: %s (is ringmta"
			 " running?)", listen, c.hc_error);
		http_conn_free(&c);
		free(text);
		return -1;
	}
	status = r.hr_status;
	if (r.hr_body_len > 0)
		*reply_r = json_loadb(r.hr_body, r.hr_body_len, 0, &je);
	if (*reply_r == NULL) {
		snprintf(err, errlen, "the admin API answered HTTP %d without JSON", status);
		status = -1;
	}
	http_resp_free(&r);
	http_conn_free(&c);
	free(text);
	return status;
}
