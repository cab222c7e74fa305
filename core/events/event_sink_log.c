/*
 * event_sink_log.c: the event log sink: every record as one line, to a
 * file (opened O_APPEND, reopened on SIGUSR1 for logrotate), to standard
 * error, or to syslog (facility mail). JSON lines as stored (with the id
 * first), or text: "event id=1 type=delivered key=value ...", the same
 * shape as ringmta's log lines. Runs on its sink's thread (events.c).
 */
#include "core/events/events_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct ev_log {
	char *l_path;			/* NULL: stderr or syslog */
	bool l_syslog;
	bool l_json;
	int l_fd;
};

static int ev_log_open(struct ev_log *l, char *err, size_t errlen)
{
	int fd = open(l->l_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0) {
		snprintf(err, errlen, "event_log %s: %s", l->l_path, strerror(errno));
		return -1;
	}
	if (l->l_fd >= 0)
		close(l->l_fd);
	l->l_fd = fd;
	return 0;
}

int event_sink_log_new(const struct config *cfg, void **impl_r, char *err, size_t errlen)
{
	struct ev_log *l = calloc(1, sizeof(*l));

	*impl_r = NULL;
	if (l == NULL) {
		snprintf(err, errlen, "event_log: out of memory");
		return -1;
	}
	l->l_fd = -1;
	l->l_json = strcmp(cfg->event_log_format, "json") == 0;
	if (strcmp(cfg->event_log, "syslog") == 0) {
		l->l_syslog = true;
		openlog("ringmta", LOG_PID, LOG_MAIL);
	} else if (strcmp(cfg->event_log, "stderr") == 0) {
		l->l_fd = STDERR_FILENO;
	} else if ((l->l_path = strdup(cfg->event_log)) == NULL || ev_log_open(l, err, errlen) < 0) {
		free(l->l_path);
		free(l);
		return -1;
	}
	*impl_r = l;
	return 0;
}

/* A value for key=value: bare when it is one plain word, else quoted
 * ("\"" becomes "'", controls a space). */
static void ev_log_value(FILE *f, const char *s)
{
	bool plain = s[0] != '\0' && strpbrk(s, " \t\"=\\") == NULL;

	if (plain) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++)
		fputc(*s == '"' ? '\'' : (unsigned char)*s < 0x20 ? ' ' : *s, f);
	fputc('"', f);
}

/* One record as text. */
static void ev_log_text(FILE *f, const char *rec, size_t len)
{
	json_t *o = json_loadb(rec, len, 0, NULL);
	const char *key;
	json_t *v;

	if (!json_is_object(o)) {
		json_decref(o);
		fprintf(f, "event %.*s\n", (int)len, rec);
		return;
	}
	fputs("event", f);
	json_object_foreach(o, key, v) {
		fprintf(f, " %s=", key);
		if (json_is_string(v)) {
			ev_log_value(f, json_string_value(v));
		} else if (json_is_null(v)) {
			fputc('-', f);
		} else if (json_is_array(v)) {
			size_t i;
			json_t *e;
			char *joined = NULL;
			size_t jlen = 0;
			FILE *j = open_memstream(&joined, &jlen);

			json_array_foreach(v, i, e) {
				if (j == NULL)
					break;
				if (i > 0)
					fputc(',', j);
				if (json_is_string(e))
					fputs(json_string_value(e), j);
			}
			if (j != NULL)
				fclose(j);
			ev_log_value(f, joined != NULL ? joined : "");
			free(joined);
		} else {
			char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			ev_log_value(f, d != NULL ? d : "");
			free(d);
		}
	}
	fputc('\n', f);
	json_decref(o);
}

static int ev_log_send(void *impl, const struct event_batch *b, char *err, size_t errlen)
{
	struct ev_log *l = impl;
	char *buf = NULL;
	size_t len = 0, off = 0;
	FILE *f;

	if (l->l_syslog) {
		for (unsigned i = 0; i < b->eb_n; i++)
			syslog(LOG_INFO, "%s", b->eb_recs[i]);
		return 0;
	}
	if (l->l_fd < 0 && ev_log_open(l, err, errlen) < 0)
		return -1;
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < b->eb_n; i++) {
		if (l->l_json) {
			fwrite(b->eb_recs[i], 1, b->eb_lens[i], f);
			fputc('\n', f);
		} else {
			ev_log_text(f, b->eb_recs[i], b->eb_lens[i]);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (off < len) {
		ssize_t n = write(l->l_fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "write %s: %s", l->l_path ? l->l_path : "stderr",
				 n < 0 ? strerror(errno) : "nothing written");
			free(buf);
			/* A line cut short is finished by the next try's copy. */
			return -1;
		}
		off += (size_t)n;
	}
	free(buf);
	return 0;
}

static void ev_log_reopen(void *impl)
{
	struct ev_log *l = impl;
	char err[300];

	if (l->l_path != NULL && ev_log_open(l, err, sizeof(err)) < 0) {
		if (l->l_fd >= 0)
			close(l->l_fd);
		l->l_fd = -1;	/* tried again at the next batch */
	}
}

static void ev_log_free(void *impl)
{
	struct ev_log *l = impl;

	if (l->l_path != NULL && l->l_fd >= 0)
		close(l->l_fd);
	if (l->l_syslog)
		closelog();
	free(l->l_path);
	free(l);
}

const struct event_sink_ops event_sink_log_ops = {
	.so_send = ev_log_send,
	.so_reopen = ev_log_reopen,
	.so_free = ev_log_free,
};
