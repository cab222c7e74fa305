/*
 * event_render.c: event records as JSON (jansson), rendered on the
 * calling thread (a worker's) so the committer only copies bytes. Each
 * record starts with "type" and "time"; its id is not known here (the
 * committer numbers records) and is put in front when it is sent
 * (event_with_id). No I/O, no shared state.
 */
#include "core/events/events_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static const char *const event_names[EVENT_NTYPES] = {
	"reception", "attempt", "delivered", "deferred", "bounced", "expired",
	"suppressed", "dsn_sent", "admin",
};

/* How much of a header event_msgid() reads. */
#define EVENT_HEADER_SCAN (64u << 10)

const char *event_type_name(enum event_type t)
{
	return (unsigned)t < EVENT_NTYPES ? event_names[t] : "unknown";
}

int event_type_parse(const char *name, size_t len)
{
	for (int i = 0; i < EVENT_NTYPES; i++)
		if (strlen(event_names[i]) == len && strncasecmp(event_names[i], name, len) == 0)
			return i;
	return -1;
}

int event_type_mask(const char *list, uint32_t *mask_r, char *err, size_t errlen)
{
	const char *p = list;
	uint32_t mask = 0;

	while (*p != '\0') {
		size_t n;
		int t;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		t = event_type_parse(p, n);
		if (t < 0) {
			snprintf(err, errlen, "unknown event type '%.*s' (reception, attempt,"
				 " delivered, deferred, bounced, expired, suppressed, dsn_sent,"
				 " admin)", (int)(n > 40 ? 40 : n), p);
			return -1;
		}
		mask |= 1u << t;
		p += n;
	}
	*mask_r = mask != 0 ? mask : (1u << EVENT_NTYPES) - 1;
	return 0;
}

void event_time(uint64_t us, char out[EVENT_TIME_LEN])
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, EVENT_TIME_LEN, "%.19s.%03uZ", base, (unsigned)(us / 1000u % 1000u));
}

static uint64_t event_now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

json_t *event_new(enum event_type t)
{
	json_t *o = json_object();
	char ts[EVENT_TIME_LEN];

	if (o == NULL)
		return NULL;
	event_time(event_now_us(), ts);
	if (json_object_set_new(o, "type", json_string(event_type_name(t))) < 0 ||
	    json_object_set_new(o, "time", json_string(ts)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int event_append(struct queue_event **list, json_t *obj)
{
	struct queue_event *e, **tail;
	size_t len;

	if (obj == NULL)
		return -1;
	len = json_dumpb(obj, NULL, 0, JSON_COMPACT);
	e = len > 0 ? malloc(sizeof(*e) + len) : NULL;
	if (e == NULL || json_dumpb(obj, e->qe_data, len, JSON_COMPACT) != len) {
		free(e);
		json_decref(obj);
		return -1;
	}
	json_decref(obj);
	e->qe_len = len;
	e->qe_next = NULL;
	for (tail = list; *tail != NULL; tail = &(*tail)->qe_next)
		;
	*tail = e;
	return 0;
}

/* A string member from text that may not be UTF-8 (an SMTP reply, an
 * address): invalid bytes become U+FFFD, as jansson takes only UTF-8. */
static json_t *event_str(const char *s, size_t len)
{
	json_t *j;
	char *c;
	size_t n = 0;

	if (s == NULL)
		return json_null();
	j = json_stringn(s, len);
	if (j != NULL)
		return j;
	c = malloc(len * 3 + 1);
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b < 0x80 && b != 0) {
			c[n++] = (char)b;
		} else {
			memcpy(c + n, "\xef\xbf\xbd", 3);
			n += 3;
		}
	}
	j = json_stringn(c, n);
	free(c);
	return j;
}

static int event_set(json_t *o, const char *key, const char *s)
{
	return json_object_set_new(o, key, event_str(s, s ? strlen(s) : 0));
}

static int event_set_id(json_t *o, const char *key, uint64_t id)
{
	char ids[17];

	queue_id_str(id, ids);
	return json_object_set_new(o, key, json_string(ids));
}

/* Walk the header's bytes across the pieces; see events_internal.h. */
void event_msgid(const struct iovec *iov, unsigned n, char *out, size_t len)
{
	static const char name[] = "message-id:";
	size_t col = 0, o = 0, seen = 0;
	bool in_value = false, bol = true, done = false;

	out[0] = '\0';
	for (unsigned i = 0; i < n && !done; i++) {
		const unsigned char *p = iov[i].iov_base;

		for (size_t j = 0; j < iov[i].iov_len && !done; j++, seen++) {
			unsigned char c = p[j];

			if (seen >= EVENT_HEADER_SCAN) {
				done = true;
				break;
			}
			if (bol) {
				bol = false;
				if (in_value && (c == ' ' || c == '\t')) {
					/* a folded continuation: keep reading */
				} else if (in_value) {
					done = true;	/* the field ended */
					break;
				} else if (c == '\r' || c == '\n') {
					done = true;	/* end of the header */
					break;
				} else {
					col = 0;
				}
			}
			if (c == '\n') {
				bol = true;
				continue;
			}
			if (c == '\r')
				continue;
			if (in_value) {
				if (c < 0x20 || c == 0x7f)
					c = ' ';
				if ((c == ' ' && (o == 0 || out[o - 1] == ' ')) || o + 1 >= len)
					continue;
				out[o++] = (char)c;
				continue;
			}
			if (col < sizeof(name) - 1 && col != (size_t)-1) {
				char lc = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);

				col = lc == name[col] ? col + 1 : (size_t)-1;
				if (col == sizeof(name) - 1)
					in_value = true;
			}
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

int event_record_type(const char *data, size_t len)
{
	static const char pre[] = "{\"type\":\"";
	const char *q;

	if (len < sizeof(pre) || memcmp(data, pre, sizeof(pre) - 1) != 0)
		return -1;
	q = memchr(data + sizeof(pre) - 1, '"', len - (sizeof(pre) - 1));
	if (q == NULL)
		return -1;
	return event_type_parse(data + sizeof(pre) - 1, (size_t)(q - data) - (sizeof(pre) - 1));
}

char *event_with_id(uint64_t seq, const char *data, size_t len, size_t *len_r)
{
	char head[40], *out;
	int h;

	if (len < 2 || data[0] != '{')
		return NULL;
	h = snprintf(head, sizeof(head), "{\"id\":\"%" PRIu64 "\"%s", seq,
		     data[1] == '}' ? "" : ",");
	out = malloc((size_t)h + len);
	if (out == NULL)
		return NULL;
	memcpy(out, head, (size_t)h);
	memcpy(out + h, data + 1, len - 1);
	out[(size_t)h + len - 1] = '\0';
	*len_r = (size_t)h + len - 1;
	return out;
}

int events_reception(struct events *ev, struct queue_msg *m, const struct event_origin *o)
{
	json_t *obj, *rcpts;
	char msgid[1000];
	uint64_t size = 0;

	if (!events_on(ev))
		return 0;
	for (unsigned i = 0; i < m->qm_iovcnt; i++)
		size += m->qm_iov[i].iov_len;
	if (o->eo_msgid != NULL)
		snprintf(msgid, sizeof(msgid), "%s", o->eo_msgid);
	else
		event_msgid(m->qm_iov, m->qm_iovcnt, msgid, sizeof(msgid));
	obj = event_new(EVENT_RECEPTION);
	rcpts = json_array();
	if (obj == NULL || rcpts == NULL) {
		json_decref(obj);
		json_decref(rcpts);
		return -1;
	}
	for (uint32_t i = 0; i < m->qm_rec.nrcpt; i++)
		json_array_append_new(rcpts, event_str(m->qm_rec.rcpts[i].addr,
						       m->qm_rec.rcpts[i].addr_len));
	event_set_id(obj, "queue_id", m->qm_id);
	json_object_set_new(obj, "sender", event_str(m->qm_rec.sender, m->qm_rec.sender_len));
	json_object_set_new(obj, "recipients", rcpts);
	json_object_set_new(obj, "size", json_integer((json_int_t)size));
	event_set(obj, "client", o->eo_client);
	event_set(obj, "identity", o->eo_identity);
	event_set(obj, "message_id", msgid[0] ? msgid : NULL);
	event_set(obj, "listener", o->eo_listener);
	return event_append(&m->qm_events, obj);
}

int events_rcpt(struct events *ev, struct queue_event **list, const struct event_rcpt *r)
{
	char next[EVENT_TIME_LEN];
	json_t *a, *o;

	if (!events_on(ev))
		return 0;
	if (r->er_next_us != 0)
		event_time(r->er_next_us, next);
	if (!r->er_no_attempt) {
		a = event_new(EVENT_ATTEMPT);
		if (a == NULL)
			return -1;
		event_set_id(a, "queue_id", r->er_queue_id);
		event_set(a, "recipient", r->er_rcpt);
		event_set(a, "site", r->er_site);
		event_set(a, "mx", r->er_remote && r->er_remote[0] ? r->er_remote : NULL);
		event_set(a, "source", r->er_source && r->er_source[0] ? r->er_source : NULL);
		event_set(a, "tls", r->er_tls && r->er_tls[0] ? r->er_tls : NULL);
		event_set(a, "reply", r->er_reply);
		event_set(a, "ecode", r->er_ecode && r->er_ecode[0] ? r->er_ecode : NULL);
		event_set(a, "class", r->er_bclass);
		json_object_set_new(a, "duration_ms",
				    json_integer((json_int_t)(r->er_duration_us / 1000u)));
		json_object_set_new(a, "attempt", json_integer(r->er_attempt));
		event_set(a, "status", event_type_name(r->er_outcome));
		event_set(a, "next_retry", r->er_next_us ? next : NULL);
		if (event_append(list, a) < 0)
			return -1;
	}
	o = event_new(r->er_outcome);
	if (o == NULL)
		return -1;
	event_set_id(o, "queue_id", r->er_queue_id);
	event_set(o, "sender", r->er_sender);
	event_set(o, "recipient", r->er_rcpt);
	event_set(o, "site", r->er_site);
	event_set(o, "reply", r->er_reply);
	event_set(o, "ecode", r->er_ecode && r->er_ecode[0] ? r->er_ecode : NULL);
	event_set(o, "class", r->er_bclass);
	json_object_set_new(o, "attempts", json_integer(r->er_attempt));
	if (r->er_outcome == EVENT_DEFERRED)
		event_set(o, "next_retry", r->er_next_us ? next : NULL);
	return event_append(list, o);
}

int events_dsn(struct events *ev, struct queue_event **list, uint64_t queue_id,
	       uint64_t dsn_id, const char *kind, const char *to)
{
	json_t *o;

	if (!events_on(ev))
		return 0;
	if ((o = event_new(EVENT_DSN_SENT)) == NULL)
		return -1;
	event_set_id(o, "queue_id", queue_id);
	event_set_id(o, "dsn_queue_id", dsn_id);
	event_set(o, "kind", kind);
	event_set(o, "to", to);
	return event_append(list, o);
}

int events_suppressed(struct events *ev, struct queue_event **list, const char *sender,
		      const char *rcpt, size_t rcpt_len, const char *action, const char *bclass,
		      const char *scope)
{
	json_t *o;

	if (!events_on(ev))
		return 0;
	if ((o = event_new(EVENT_SUPPRESSED)) == NULL)
		return -1;
	event_set(o, "sender", sender);
	json_object_set_new(o, "recipient", event_str(rcpt, rcpt_len));
	event_set(o, "action", action);
	event_set(o, "class", bclass);
	event_set(o, "scope", scope);
	return event_append(list, o);
}
