/*
 * metrics.c: see metrics.h. Names follow the Prometheus conventions:
 * ringmta_ prefix, _total for counters, base units (seconds, bytes).
 */
#include "core/http/metrics.h"
#include "core/inject/inject.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/bounce/bclass_stats.h"
#include "core/delivery/delivery.h"
#include "core/events/events.h"
#include "io/listen.h"
#include "io/stat.h"
#include "queue/queue.h"

struct metrics {
	struct MHD_Daemon *m_daemon;
	struct metrics_inbound m_in;	/* the workers' counters */
	const struct config *m_cfg;
	struct queue *m_queue;
	struct delivery *m_dlv;
	struct sockaddr_storage m_addr;
	_Atomic(struct events *) m_events;	/* NULL: no event sinks */
};

/* A growing text buffer. */
struct mbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)n;
			char *p = realloc(b->p, cap);

			if (p == NULL) {
				b->oom = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

static void mb_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter with an inbound and an outbound series. */
static void mb_inout(struct mbuf *b, const char *name, const char *help, uint64_t in,
		     uint64_t out)
{
	mb_head(b, name, "counter", help);
	mb_printf(b, "%s{direction=\"inbound\"} %llu\n%s{direction=\"outbound\"} %llu\n",
		  name, (unsigned long long)in, name, (unsigned long long)out);
}

static void mb_hist(struct mbuf *b, const char *name, const uint64_t *buckets,
		    uint64_t count, uint64_t sum_ns)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i < STAT_HIST_NBUCKETS - 1; i++) {
		cum += buckets[i];
		mb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, stat_hist_bounds[i],
			  (unsigned long long)cum);
	}
	mb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
		  (unsigned long long)count, name, (double)sum_ns / 1e9, name,
		  (unsigned long long)count);
}

/* A per-worker counter: field is an offset in struct metrics_worker_stats. */
static void mb_per_worker(struct mbuf *b, struct metrics *m, const char *name,
			  const char *help, size_t field)
{
	struct metrics_worker_stats ws;
	unsigned n = m->m_in.mi_nworkers(m->m_in.mi_ctx);

	mb_head(b, name, "counter", help);
	for (unsigned i = 0; i < n; i++) {
		m->m_in.mi_worker(m->m_in.mi_ctx, i, &ws);
		mb_printf(b, "%s{worker=\"%u\"} %llu\n", name, i,
			  (unsigned long long)*(const uint64_t *)((const char *)&ws + field));
	}
}

/* One series without labels: name{labels} value, under its head. */
static void mb_series(struct mbuf *b, const char *name, const char *type, const char *help,
		      const char *labels, uint64_t value)
{
	mb_head(b, name, type, help);
	mb_printf(b, "%s%s %llu\n", name, labels, (unsigned long long)value);
}

/* Signing at acceptance (core/dkim) and DMARC alignment. */
/* Failed and deferred recipients per bounce class (core/bounce). */
static void metrics_render_bclass(struct mbuf *b)
{
	uint64_t n[BCLASS_COUNT][2];

	bclass_stats_get(n);
	mb_head(b, "ringmta_delivery_bounce_class_total", "counter",
		"Failed and deferred recipients by bounce class.");
	for (unsigned c = 1; c < BCLASS_COUNT; c++)
		mb_printf(b, "ringmta_delivery_bounce_class_total{class=\"%s\",result=\"deferred\"}"
			  " %llu\n"
			  "ringmta_delivery_bounce_class_total{class=\"%s\",result=\"failed\"}"
			  " %llu\n", bclass_name(c), (unsigned long long)n[c][0], bclass_name(c),
			  (unsigned long long)n[c][1]);
}

static void metrics_render_dkim(struct mbuf *b, const struct metrics_inbound_stats *ss)
{
	mb_series(b, "ringmta_dkim_signed_total", "counter",
		  "Messages signed with DKIM at acceptance.", "", ss->dkim_signed);
	mb_series(b, "ringmta_dkim_unsigned_total", "counter",
		  "Messages accepted unsigned (dkim_no_key_action = unsigned).",
		  "{reason=\"no_key\"}", ss->dkim_unsigned_no_key);
	mb_head(b, "ringmta_dkim_refused_total", "counter",
		"Messages refused at the end of DATA by the signing step, per reason.");
	mb_printf(b, "ringmta_dkim_refused_total{reason=\"no_key\"} %llu\n"
		  "ringmta_dkim_refused_total{reason=\"unaligned\"} %llu\n"
		  "ringmta_dkim_refused_total{reason=\"error\"} %llu\n",
		  (unsigned long long)ss->dkim_refused_no_key,
		  (unsigned long long)ss->dkim_refused_unaligned,
		  (unsigned long long)ss->dkim_refused_error);
	mb_series(b, "ringmta_dmarc_unaligned_total", "counter",
		  "Messages whose From domain aligned with neither the DKIM domain nor the"
		  " envelope sender's (accepted or refused).", "", ss->dmarc_unaligned);
	mb_series(b, "ringmta_dkim_sign_queue", "gauge",
		  "Signing jobs waiting for a signing thread.", "", ss->dkim_sign_queue);
	mb_series(b, "ringmta_dkim_sign_threads", "gauge", "Signing threads (0: signing off).",
		  "", ss->dkim_sign_threads);
	mb_series(b, "ringmta_dkim_sign_full_total", "counter",
		  "Times the signing queue was full: the job waited in its worker and its"
		  " client for the 250 (back-pressure).", "", ss->dkim_sign_full);
	mb_head(b, "ringmta_dkim_sign_busy_seconds_total", "counter",
		"Time the signing threads spent signing.");
	mb_printf(b, "ringmta_dkim_sign_busy_seconds_total %.6f\n", ss->dkim_sign_busy_ns / 1e9);
}

/* Traffic shaping (delivery_shaping.c): one family at a time, so each
 * family's samples stay together as the text format wants. */
struct metrics_shp {
	struct mbuf *b;
	const char *want, *family, *label;
};

/* A label value in the text format's escapes (\\, \", \n), cut to fit. */
static const char *mb_label(const char *in, char *esc, size_t len)
{
	size_t n = 0;

	for (const char *p = in; *p && n + 3 < len; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			esc[n++] = '\\';
			esc[n++] = *p == '\n' ? 'n' : *p;
		} else {
			esc[n++] = *p;
		}
	}
	esc[n] = '\0';
	return esc;
}

static void metrics_shp_sample(void *arg, const char *metric, const char *label, uint64_t v)
{
	struct metrics_shp *s = arg;
	char esc[160];

	if (strcmp(metric, s->want) != 0)
		return;
	if (s->label == NULL) {		/* a family without labels */
		mb_printf(s->b, "%s %llu\n", s->family, (unsigned long long)v);
		return;
	}
	mb_printf(s->b, "%s{%s=\"%s\"} %llu\n", s->family, s->label,
		  mb_label(label, esc, sizeof(esc)), (unsigned long long)v);
}

/* Sources (core/shaping/shp_source.h): one family per pass, as above;
 * out of service is once per source (its samples come together). */
struct metrics_src {
	struct mbuf *b;
	bool out;		/* this pass: out of service, else messages sent */
	char last[160];
};

static void metrics_src_sample(void *arg, const char *source, const char *provider,
			       uint64_t sent, int out_of_service)
{
	struct metrics_src *s = arg;
	char src[160], prov[160];

	mb_label(source, src, sizeof(src));
	if (s->out) {
		if (strcmp(src, s->last) == 0)
			return;
		snprintf(s->last, sizeof(s->last), "%s", src);
		mb_printf(s->b, "ringmta_source_out_of_service{source=\"%s\"} %d\n", src,
			  out_of_service ? 1 : 0);
	} else if (provider != NULL || sent != 0) {
		mb_printf(s->b, "ringmta_source_warmup_messages{source=\"%s\",provider=\"%s\"}"
			  " %llu\n", src, mb_label(provider ? provider : "-", prov, sizeof(prov)),
			  (unsigned long long)sent);
	}
}

static void metrics_render_sources(struct metrics *m, struct mbuf *b)
{
	struct metrics_src s = { .b = b };

	mb_head(b, "ringmta_source_warmup_messages", "gauge",
		"Messages accepted from a source per provider (\"-\": sites of no provider)"
		" in the warm-up period of its latest message.");
	delivery_sources_foreach(m->m_dlv, metrics_src_sample, &s);
	s.out = true;
	mb_head(b, "ringmta_source_out_of_service", "gauge",
		"1 while a source is out of service (its address could not be bound).");
	delivery_sources_foreach(m->m_dlv, metrics_src_sample, &s);
}

/*
 * Per site, provider and source (core/shaping/shp_met.h): the names shown
 * and "other", which holds the rest, so the series of a family add up to
 * the totals. One snapshot per dimension and scrape, so its families agree.
 */
static void metrics_render_dim(struct mbuf *b, const char *dim,
			       const struct delivery_met_series *s, unsigned n)
{
	static const char *const results[] = { "delivered", "deferred", "bounced" };
	static const enum shp_met_ctr rctr[] = { SHP_MET_DELIVERED, SHP_MET_DEFERRED,
						 SHP_MET_BOUNCED };
	char (*esc)[2 * SHP_MET_NAME_MAX + 2] = calloc(n ? n : 1, sizeof(*esc));
	char fam[96], help[240];

	if (esc == NULL) {
		b->oom = 1;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		mb_label(s[i].dm_s.ms_name, esc[i], sizeof(esc[i]));
	snprintf(fam, sizeof(fam), "ringmta_%s_recipients_total", dim);
	snprintf(help, sizeof(help), "Recipients' outcomes per %s (the busiest by name, the"
		 " rest as \"other\"; metrics_top_sites).", dim);
	mb_head(b, fam, "counter", help);
	for (unsigned i = 0; i < n; i++)
		for (unsigned r = 0; r < 3; r++)
			mb_printf(b, "%s{%s=\"%s\",result=\"%s\"} %llu\n", fam, dim, esc[i],
				  results[r], (unsigned long long)s[i].dm_s.ms_ctr[rctr[r]]);
	snprintf(fam, sizeof(fam), "ringmta_%s_bounced_total", dim);
	snprintf(help, sizeof(help), "Recipients bounced per %s and bounce class (classes"
		 " seen only).", dim);
	mb_head(b, fam, "counter", help);
	for (unsigned i = 0; i < n; i++)
		for (unsigned c = 1; c < SHP_MET_NCLASSES && bclass_name(c) != NULL; c++)
			if (s[i].dm_s.ms_bounced[c] != 0)
				mb_printf(b, "%s{%s=\"%s\",class=\"%s\"} %llu\n", fam, dim,
					  esc[i], bclass_name(c),
					  (unsigned long long)s[i].dm_s.ms_bounced[c]);
	snprintf(fam, sizeof(fam), "ringmta_%s_connections_total", dim);
	snprintf(help, sizeof(help), "Outbound sessions per %s: opened (got ready) or failed"
		 " (no address of the route answered).", dim);
	mb_head(b, fam, "counter", help);
	for (unsigned i = 0; i < n; i++)
		mb_printf(b, "%s{%s=\"%s\",result=\"opened\"} %llu\n"
			  "%s{%s=\"%s\",result=\"failed\"} %llu\n", fam, dim, esc[i],
			  (unsigned long long)s[i].dm_s.ms_ctr[SHP_MET_CONN_OPENED], fam, dim,
			  esc[i], (unsigned long long)s[i].dm_s.ms_ctr[SHP_MET_CONN_FAILED]);
	snprintf(fam, sizeof(fam), "ringmta_%s_ready", dim);
	snprintf(help, sizeof(help), "Jobs (a message's recipients for one next hop) waiting"
		 " for a session, per %s.", dim);
	mb_head(b, fam, "gauge", help);
	for (unsigned i = 0; i < n; i++)
		mb_printf(b, "%s{%s=\"%s\"} %llu\n", fam, dim, esc[i],
			  (unsigned long long)s[i].dm_s.ms_ready);
	snprintf(fam, sizeof(fam), "ringmta_%s_in_flight", dim);
	snprintf(help, sizeof(help), "Messages being sent now, per %s.", dim);
	mb_head(b, fam, "gauge", help);
	for (unsigned i = 0; i < n; i++)
		mb_printf(b, "%s{%s=\"%s\"} %llu\n", fam, dim, esc[i],
			  (unsigned long long)s[i].dm_s.ms_in_flight);
	snprintf(fam, sizeof(fam), "ringmta_%s_suspended", dim);
	snprintf(help, sizeof(help), "1 while the %s takes no attempt (suspended), else 0;"
		 " names shown only.", dim);
	for (unsigned i = 0; i < n; i++) {
		if (s[i].dm_suspended < 0)
			continue;
		if (fam[0] != '\0') {		/* the head once, before the first sample */
			mb_head(b, fam, "gauge", help);
			fam[0] = '\0';
		}
		mb_printf(b, "ringmta_%s_suspended{%s=\"%s\"} %d\n", dim, dim, esc[i],
			  s[i].dm_suspended);
	}
	free(esc);
}

static void metrics_render_sites(struct metrics *m, struct mbuf *b)
{
	static const char *const dims[SHP_MET_NDIMS] = { "site", "provider", "source" };
	unsigned max = delivery_met_max_series(m->m_dlv), n;
	struct delivery_met_series *s;

	if (max == 0 || (s = calloc(max, sizeof(*s))) == NULL)
		return;
	for (unsigned d = 0; d < SHP_MET_NDIMS; d++) {
		n = delivery_met_series(m->m_dlv, (enum shp_met_dim)d, s, max);
		metrics_render_dim(b, dims[d], s, n);
	}
	free(s);
}

static void metrics_render_shaping(struct metrics *m, struct mbuf *b)
{
	static const struct {
		const char *want, *family, *type, *label, *help;
	} fams[] = {
		{ "rule_firings", "ringmta_shaping_rule_firings_total", "counter", "rule",
		  "Shaping rule actions applied, per rule." },
		{ "provider_connections", "ringmta_shaping_connections_open", "gauge", "provider",
		  "Outbound connections open per provider (\"-\": sites of no provider)." },
		{ "worker_sessions", "ringmta_delivery_worker_sessions_total", "counter", "worker",
		  "Outbound sessions opened (greeted, ready for mail), per delivery worker." },
		{ "active", "ringmta_shaping_active_paths", "gauge", "action",
		  "Paths with an active shaping action, suspension or learned limit, per kind." },
		{ "suspended", "ringmta_shaping_suspended_paths", "gauge", NULL,
		  "Paths (or sites) suspended now: suspend actions, health, a ramp's pause." },
	};
	struct delivery_shp_stats st;

	delivery_shaping_stats(m->m_dlv, &st);
	{
		const struct {
			const char *name, *help;
			uint64_t v;
		} counters[] = {
			{ "ringmta_shaping_deferred_without_attempt_total",
			  "Recipients deferred with no SMTP attempt: their site or path was"
			  " suspended.", st.no_attempt },
			{ "ringmta_shaping_health_suspensions_total",
			  "Sites suspended because every connection attempt failed.", st.health },
			{ "ringmta_shaping_learned_limits_total",
			  "Messages-per-connection limits learned from receivers that close.",
			  st.learned },
		};

		for (unsigned i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
			mb_head(b, counters[i].name, "counter", counters[i].help);
			mb_printf(b, "%s %llu\n", counters[i].name,
				  (unsigned long long)counters[i].v);
		}
	}
	for (unsigned i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		struct metrics_shp s = { b, fams[i].want, fams[i].family, fams[i].label };

		mb_head(b, fams[i].family, fams[i].type, fams[i].help);
		delivery_shaping_foreach(m->m_dlv, metrics_shp_sample, &s);
	}
}

/* The event store and its sinks (core/events). */
static void metrics_render_events(struct metrics *m, struct mbuf *b)
{
	struct events *ev = atomic_load(&m->m_events);
	struct events_stats st;
	char names[8][200];

	if (ev == NULL)
		return;
	events_get_stats(ev, &st);
	mb_head(b, "ringmta_events_stored", "gauge", "Event records stored, not yet trimmed.");
	mb_printf(b, "ringmta_events_stored %llu\n", (unsigned long long)st.es_stored);
	mb_head(b, "ringmta_events_last_id", "gauge", "The last event id committed.");
	mb_printf(b, "ringmta_events_last_id %llu\n", (unsigned long long)st.es_last);
	mb_head(b, "ringmta_events_dropped_total", "counter",
		"Event records dropped unsent: the store was over events_max_backlog.");
	mb_printf(b, "ringmta_events_dropped_total %llu\n", (unsigned long long)st.es_dropped);
	mb_head(b, "ringmta_events_pending", "gauge", "Events a sink has yet to pass, per sink.");
	for (unsigned i = 0; i < st.es_nsinks; i++) {
		char *name = names[i];
		size_t o = 0;

		for (const char *p = st.es_sinks[i].ss_name; *p && o + 2 < sizeof(names[i]); p++) {
			if (*p == '"' || *p == '\\')
				name[o++] = '\\';
			name[o++] = *p;
		}
		name[o] = '\0';
		mb_printf(b, "ringmta_events_pending{sink=\"%s\"} %llu\n", name,
			  (unsigned long long)st.es_sinks[i].ss_pending);
	}
	mb_head(b, "ringmta_event_sink_requests_total", "counter",
		"Batches a sink tried to send (webhook requests, log writes), per sink.");
	for (unsigned i = 0; i < st.es_nsinks; i++)
		mb_printf(b, "ringmta_event_sink_requests_total{sink=\"%s\"} %llu\n",
			  names[i], (unsigned long long)st.es_sinks[i].ss_requests);
	mb_head(b, "ringmta_event_sink_failures_total", "counter",
		"Batches that failed and wait to be sent again, per sink.");
	for (unsigned i = 0; i < st.es_nsinks; i++)
		mb_printf(b, "ringmta_event_sink_failures_total{sink=\"%s\"} %llu\n",
			  names[i], (unsigned long long)st.es_sinks[i].ss_failures);
	mb_head(b, "ringmta_event_sink_last_success_seconds", "gauge",
		"Unix time of a sink's last batch sent (0: none yet), per sink.");
	for (unsigned i = 0; i < st.es_nsinks; i++)
		mb_printf(b, "ringmta_event_sink_last_success_seconds{sink=\"%s\"} %llu\n",
			  names[i], (unsigned long long)st.es_sinks[i].ss_last_success);
}

void metrics_set_events(struct metrics *m, struct events *ev)
{
	if (m != NULL)
		atomic_store(&m->m_events, ev);
}

/* HTTP injection (core/inject), when http_listen is set. */
static void metrics_render_inject(struct metrics *m, struct mbuf *b)
{
	struct inject_stats is;

	if (m->m_in.mi_inject == NULL)
		return;
	inject_get_stats(m->m_in.mi_inject, &is);
	mb_series(b, "ringmta_inject_requests_total", "counter",
		  "HTTP injection requests answered.", "", is.requests);
	mb_series(b, "ringmta_inject_messages_total", "counter",
		  "Messages queued through HTTP injection.", "", is.messages);
	mb_series(b, "ringmta_inject_recipients_total", "counter",
		  "Recipients queued through HTTP injection.", "", is.recipients);
	mb_series(b, "ringmta_inject_rejected_recipients_total", "counter",
		  "Recipients an injection request named but that were refused (suppressed).",
		  "", is.rejected_rcpts);
	mb_head(b, "ringmta_inject_refused_total", "counter",
		"HTTP injection requests refused, by reason.");
	mb_printf(b, "ringmta_inject_refused_total{reason=\"auth\"} %llu\n"
		  "ringmta_inject_refused_total{reason=\"bad_request\"} %llu\n"
		  "ringmta_inject_refused_total{reason=\"too_big\"} %llu\n"
		  "ringmta_inject_refused_total{reason=\"policy\"} %llu\n"
		  "ringmta_inject_refused_total{reason=\"unavailable\"} %llu\n",
		  (unsigned long long)is.r_auth, (unsigned long long)is.r_bad_request,
		  (unsigned long long)is.r_too_big, (unsigned long long)is.r_policy,
		  (unsigned long long)is.r_unavailable);
}

/* The build: a gauge of 1 whose labels say what ringmta is made of. */
static void metrics_render_build(struct metrics *m, struct mbuf *b)
{
	char ver[64], bssl[64], mhd[64];

	mb_head(b, "ringmta_build_info", "gauge",
		"Always 1; the labels name the build: ringmta's version, BoringSSL's API"
		" version, libmicrohttpd's version.");
	mb_printf(b, "ringmta_build_info{version=\"%s\",boringssl=\"%s\",microhttpd=\"%s\"} 1\n",
		  mb_label(m->m_in.mi_version ? m->m_in.mi_version : "unknown", ver, sizeof(ver)),
		  mb_label(m->m_in.mi_boringssl ? m->m_in.mi_boringssl : "unknown", bssl,
			   sizeof(bssl)),
		  mb_label(MHD_get_version() ? MHD_get_version() : "unknown", mhd, sizeof(mhd)));
}

static void metrics_render(struct metrics *m, struct mbuf *b)
{
	const struct config *cfg = m->m_cfg;
	struct metrics_inbound_stats ss;
	struct delivery_stats ds;
	struct queue_stats qs;
	struct timeval tv;
	uint64_t now_us, ready = 0, scheduled = 0, oldest = 0;
	char addr[80];

	gettimeofday(&tv, NULL);
	now_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	m->m_in.mi_stats(m->m_in.mi_ctx, &ss);
	delivery_get_stats(m->m_dlv, &ds);
	metrics_render_build(m, b);

	mb_head(b, "ringmta_connections_accepted_total", "counter",
		"Inbound SMTP connections accepted, per listener.");
	for (unsigned l = 0; l < cfg->listen_count; l++)
		mb_printf(b, "ringmta_connections_accepted_total{listener=\"%s\"} %llu\n",
			  io_sockaddr_str((const struct sockaddr *)&cfg->listen[l].cl_addr, addr,
					  sizeof(addr)),
			  (unsigned long long)ss.accepted[l]);
	mb_head(b, "ringmta_connections_open", "gauge",
		"Inbound SMTP sessions open now, per listener.");
	for (unsigned l = 0; l < cfg->listen_count; l++)
		mb_printf(b, "ringmta_connections_open{listener=\"%s\"} %lld\n",
			  io_sockaddr_str((const struct sockaddr *)&cfg->listen[l].cl_addr, addr,
					  sizeof(addr)),
			  (long long)ss.open[l]);
	mb_head(b, "ringmta_connections_refused_total", "counter",
		"Inbound connections refused by a connection cap.");
	mb_printf(b, "ringmta_connections_refused_total %llu\n",
		  (unsigned long long)ss.refused);
	mb_head(b, "ringmta_messages_received_total", "counter",
		"Messages accepted and queued (answered 250 after DATA or BDAT LAST).");
	mb_printf(b, "ringmta_messages_received_total %llu\n",
		  (unsigned long long)ss.messages);
	mb_head(b, "ringmta_messages_rejected_total", "counter",
		"Message bodies refused (bare CR/LF, too big, long lines).");
	mb_printf(b, "ringmta_messages_rejected_total %llu\n",
		  (unsigned long long)ss.rejected);
	metrics_render_dkim(b, &ss);
	mb_head(b, "ringmta_recipients_total", "counter",
		"Delivery attempts' outcomes per recipient.");
	mb_printf(b, "ringmta_recipients_total{result=\"delivered\"} %llu\n"
		  "ringmta_recipients_total{result=\"deferred\"} %llu\n"
		  "ringmta_recipients_total{result=\"bounced\"} %llu\n",
		  (unsigned long long)ds.rcpt_result[DLV_R_SENT],
		  (unsigned long long)ds.rcpt_result[DLV_R_DEFERRED],
		  (unsigned long long)ds.rcpt_result[DLV_R_FAILED]);
	mb_head(b, "ringmta_recipient_replies_total", "counter",
		"Recipients by the class of the remote server's reply.");
	for (unsigned c = 2; c <= 5; c++)
		if (c != 3)
			mb_printf(b, "ringmta_recipient_replies_total{class=\"%uxx\"} %llu\n", c,
				  (unsigned long long)ds.reply_class[c]);
	mb_head(b, "ringmta_bounces_total", "counter", "Bounce messages (DSNs) generated.");
	mb_printf(b, "ringmta_bounces_total %llu\n",
		  (unsigned long long)ds.bounces);
	metrics_render_bclass(b);
	mb_series(b, "ringmta_outbound_transactions_total", "counter",
		  "Outbound SMTP transactions started (MAIL FROM sent).", "", ds.transactions);
	mb_series(b, "ringmta_outbound_round_trips_total", "counter",
		  "Outbound SMTP round trips: replies waited for with nothing more to send"
		  " (pipelined commands count once, the greeting once per connection).", "",
		  ds.round_trips);
	mb_head(b, "ringmta_deliveries_in_flight", "gauge",
		"Messages being delivered now.");
	mb_printf(b, "ringmta_deliveries_in_flight %u\n",
		  m->m_dlv != NULL ? delivery_inflight(m->m_dlv) : 0);

	queue_depth(m->m_queue, now_us, &ready, &scheduled, &oldest);
	mb_head(b, "ringmta_queue_messages", "gauge",
		"Messages in the queue: ready to try now, or scheduled for later.");
	mb_printf(b, "ringmta_queue_messages{state=\"ready\"} %llu\n"
		  "ringmta_queue_messages{state=\"scheduled\"} %llu\n",
		  (unsigned long long)ready, (unsigned long long)scheduled);
	mb_head(b, "ringmta_queue_oldest_message_age_seconds", "gauge",
		"Age of the oldest queued message (0 when empty).");
	mb_printf(b, "ringmta_queue_oldest_message_age_seconds %.3f\n",
		  oldest && now_us > oldest ? (double)(now_us - oldest) / 1e6 : 0.0);

	queue_get_stats(m->m_queue, &qs);
	mb_head(b, "ringmta_queue_commits_total", "counter",
		"Durable queue writes: journal groups and LMDB transactions (each with its"
		" syncs, shared by its batch).");
	mb_printf(b, "ringmta_queue_commits_total %llu\n", (unsigned long long)qs.commits);
	mb_head(b, "ringmta_queue_journal_groups_total", "counter",
		"Groups of records synced to the queue journal (README \"Queue journal\").");
	mb_printf(b, "ringmta_queue_journal_groups_total %llu\n",
		  (unsigned long long)qs.jnl_groups);
	mb_head(b, "ringmta_queue_journal_checkpoints_total", "counter",
		"Checkpoints: the journal's undelivered messages written into LMDB.");
	mb_printf(b, "ringmta_queue_journal_checkpoints_total %llu\n",
		  (unsigned long long)qs.checkpoints);
	mb_head(b, "ringmta_queue_commit_seconds", "histogram",
		"Time to write and sync one queue transaction.");
	mb_hist(b, "ringmta_queue_commit_seconds", qs.hist, qs.hist_count, qs.hist_sum_ns);
	mb_head(b, "ringmta_accept_to_reply_seconds", "histogram",
		"From the end of a message's data to its 250 reply (queue commit included).");
	mb_hist(b, "ringmta_accept_to_reply_seconds", ss.accept_lat.sh_buckets,
		ss.accept_lat.sh_count, ss.accept_lat.sh_sum_ns);
	mb_head(b, "ringmta_delivery_seconds", "histogram",
		"From arrival to delivery, per delivered recipient.");
	mb_hist(b, "ringmta_delivery_seconds", ds.delivery_lat.dh_buckets,
		ds.delivery_lat.dh_count, ds.delivery_lat.dh_sum_ns);

	mb_head(b, "ringmta_network_received_bytes_total", "counter",
		"Bytes received on SMTP connections (in and out bound).");
	mb_printf(b, "ringmta_network_received_bytes_total %llu\n",
		  (unsigned long long)ss.recv_bytes);
	mb_head(b, "ringmta_network_sent_bytes_total", "counter",
		"Bytes sent on SMTP connections (in and out bound).");
	mb_printf(b, "ringmta_network_sent_bytes_total %llu\n",
		  (unsigned long long)ss.send_bytes);
	mb_head(b, "ringmta_dns_lookups_total", "counter", "DNS queries sent.");
	mb_printf(b, "ringmta_dns_lookups_total %llu\n",
		  (unsigned long long)ds.dns_lookups);
	mb_head(b, "ringmta_dns_failures_total", "counter", "DNS lookups that failed.");
	mb_printf(b, "ringmta_dns_failures_total %llu\n",
		  (unsigned long long)ds.dns_failures);

	mb_inout(b, "ringmta_tls_handshakes_total",
		 "TLS handshakes completed, inbound (STARTTLS, implicit) and outbound.",
		 ss.tls_handshakes,
		 ds.tls_handshakes);
	mb_inout(b, "ringmta_tls_failures_total", "TLS handshakes or records that failed.",
		 ss.tls_failures,
		 ds.tls_failures);
	mb_head(b, "ringmta_tls_outbound_handshakes_total", "counter",
		"Outbound TLS handshakes completed, full or resuming a cached session.");
	mb_printf(b, "ringmta_tls_outbound_handshakes_total{session=\"full\"} %llu\n"
		  "ringmta_tls_outbound_handshakes_total{session=\"resumed\"} %llu\n",
		  (unsigned long long)(ds.tls_handshakes > ds.tls_resumed ?
				       ds.tls_handshakes - ds.tls_resumed : 0),
		  (unsigned long long)ds.tls_resumed);
	mb_head(b, "ringmta_tls_outbound_sessions_cached", "gauge",
		"TLS sessions the delivery workers keep to resume (smtp_tls_session_cache_size).");
	mb_printf(b, "ringmta_tls_outbound_sessions_cached %llu\n",
		  (unsigned long long)ds.tls_sessions_cached);
	metrics_render_shaping(m, b);
	metrics_render_sources(m, b);
	metrics_render_sites(m, b);
	metrics_render_events(m, b);
	metrics_render_inject(m, b);
	mb_per_worker(b, m, "ringmta_worker_loop_iterations_total",
		      "Event loop iterations (io_uring waits), per worker.",
		      offsetof(struct metrics_worker_stats, loops));
	mb_per_worker(b, m, "ringmta_worker_completions_total",
		      "io_uring completions handled, per worker.",
		      offsetof(struct metrics_worker_stats, cqes));
	mb_per_worker(b, m, "ringmta_worker_receive_buffer_exhausted_total",
		      "Receives that found the provided-buffer ring empty, per worker.",
		      offsetof(struct metrics_worker_stats, enobufs));
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *conn,
				       const char *url, const char *method,
				       const char *version, const char *upload_data,
				       size_t *upload_data_size, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *resp;
	struct mbuf b = { NULL, 0, 0, 0 };
	unsigned status = MHD_HTTP_OK;
	const char *ctype = "text/plain; charset=utf-8";
	enum MHD_Result ret;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		mb_printf(&b, "method not allowed\n");
	} else if (strcmp(url, "/metrics") == 0) {
		b.cap = 16384;
		b.p = malloc(b.cap);
		if (b.p == NULL)
			return MHD_NO;
		metrics_render(m, &b);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
	} else if (strcmp(url, "/healthz") == 0 || strcmp(url, "/") == 0) {
		mb_printf(&b, "ok\n");
	} else {
		status = MHD_HTTP_NOT_FOUND;
		mb_printf(&b, "not found; try /metrics or /healthz\n");
	}
	if (b.oom) {
		free(b.p);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(b.p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int metrics_start(struct metrics **m_r, const struct config *cfg, struct queue *q,
		  const struct metrics_inbound *src, struct delivery *dlv, char *err,
		  size_t errlen)
{
	const char *addr = cfg->metrics_listen;
	struct metrics *m;
	socklen_t alen;
	unsigned port;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	*m_r = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->m_in = *src;
	m->m_cfg = cfg;
	m->m_queue = q;
	m->m_dlv = dlv;
	if (config_addrport_parse(addr, &m->m_addr, &alen, err, errlen) < 0) {
		free(m);
		return -1;		/* --check refused it already */
	}
	if (m->m_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	port = ntohs(m->m_addr.ss_family == AF_INET6 ?
		     ((struct sockaddr_in6 *)&m->m_addr)->sin6_port :
		     ((struct sockaddr_in *)&m->m_addr)->sin_port);
	m->m_daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, metrics_handler, m,
				       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&m->m_addr,
				       MHD_OPTION_CONNECTION_LIMIT, 64u,
				       MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				       MHD_OPTION_END);
	if (m->m_daemon == NULL) {
		snprintf(err, errlen, "metrics_listen %s: cannot listen", addr);
		free(m);
		return -1;
	}
	*m_r = m;
	return 0;
}

void metrics_stop(struct metrics **mp)
{
	struct metrics *m = *mp;

	if (m == NULL)
		return;
	MHD_stop_daemon(m->m_daemon);
	free(m);
	*mp = NULL;
}
