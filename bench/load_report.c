/*
 * load_report.c: what smtp-load measures and how it says so. Latency
 * histograms (end of DATA to reply; STARTTLS reply to handshake done), the
 * table of errors by protocol step and reply code, errno or TLS reason, the
 * progress line on stderr and the summary (text, or one JSON line with -j).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "load.h"

static unsigned load_hist_idx(uint64_t v)
{
	unsigned e;

	if (v < 64)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return 64u + (e - 6u) * 32u + (unsigned)((v >> (e - 5u)) & 31u);
}

/* The middle of bucket i, in microseconds. */
static double load_hist_mid(unsigned i)
{
	unsigned e, sub;

	if (i < 64)
		return i;
	e = (i - 64u) / 32u + 6u;
	sub = (i - 64u) % 32u;
	return (double)((uint64_t)(32u + sub) << (e - 5u)) +
	       (double)(1ull << (e - 5u)) / 2.0;
}

void load_hist_add(struct load_hist *h, uint64_t us)
{
	h->lh_count[load_hist_idx(us)]++;
	h->lh_n++;
	if (us > h->lh_max)
		h->lh_max = us;
}

/* The p-th fraction (0..1) in milliseconds; 0 when empty. */
double load_hist_ms(const struct load_hist *h, double p)
{
	uint64_t want, seen = 0;

	if (h->lh_n == 0)
		return 0;
	want = (uint64_t)(p * (double)h->lh_n + 0.999999);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < LOAD_HIST_N; i++) {
		seen += h->lh_count[i];
		if (seen >= want) {
			double mid = load_hist_mid(i);

			return (mid > (double)h->lh_max ? (double)h->lh_max : mid) / 1000.0;
		}
	}
	return (double)h->lh_max / 1000.0;
}

/* Count one error in its row; stage and what are static text. */
static void load_err_row(struct load *L, const char *stage, int code, int err,
			 const char *what)
{
	struct load_err *e;

	for (unsigned i = 0; i < L->l_nerrs; i++) {
		e = &L->l_errs[i];
		if (e->le_stage == stage && e->le_code == code && e->le_errno == err &&
		    e->le_what == what) {
			e->le_n++;
			return;
		}
	}
	if (L->l_nerrs == LOAD_ERR_MAX) {
		e = &L->l_errs[LOAD_ERR_MAX - 1];	/* the last row takes the rest */
		e->le_stage = "other";
		e->le_code = -3;
		e->le_errno = 0;
		e->le_what = NULL;
		e->le_n++;
		return;
	}
	e = &L->l_errs[L->l_nerrs++];
	e->le_stage = stage;
	e->le_code = code;
	e->le_errno = err;
	e->le_what = what;
	e->le_n = 1;
}

void load_err(struct load *L, const char *stage, int code, int err)
{
	load_err_row(L, stage, code, err, NULL);
}

void load_err_what(struct load *L, const char *stage, const char *what)
{
	load_err_row(L, stage, 0, 0, what);
}

static void load_err_name(const struct load_err *e, char *buf, size_t len)
{
	const char *what = e->le_what;

	if (what == NULL && e->le_errno != 0) {
		what = strerrorname_np(e->le_errno);
		if (what == NULL)
			what = "errno";
	}
	if (what == NULL) {
		switch (e->le_code) {
		case 0: what = "closed"; break;
		case -1: what = "timeout"; break;
		case -2: what = "bad-reply"; break;
		case -3: what = "more"; break;
		case -4: what = "no-starttls"; break;
		default:
			snprintf(buf, len, "%s:%d", e->le_stage, e->le_code);
			return;
		}
	}
	snprintf(buf, len, "%s:%s", e->le_stage, what);
}

void load_progress(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	double t = (double)(L->l_now - L->l_t0) / (double)LOAD_NS;

	if (o->lo_idle) {
		fprintf(stderr, "smtp-load: %5.1fs open=%u idle=%u lost=%u\n",
			t, L->l_open, L->l_idle, L->l_idle_lost);
	} else if (o->lo_hs_only) {
		fprintf(stderr, "smtp-load: %5.1fs handshakes=%" PRIu64 " (+%" PRIu64 "/s) "
			"failed=%" PRIu64 " open=%u p99=%.2fms\n",
			t, L->l_ok, L->l_ok - L->l_prev_ok, L->l_failed, L->l_open,
			load_hist_ms(&L->l_hs_hist, 0.99));
	} else {
		fprintf(stderr, "smtp-load: %5.1fs ok=%" PRIu64 " (+%" PRIu64 "/s) failed=%"
			PRIu64 " open=%u conns=%" PRIu64 " p99=%.2fms\n",
			t, L->l_ok, L->l_ok - L->l_prev_ok, L->l_failed, L->l_open,
			L->l_conns, load_hist_ms(&L->l_hist, 0.99));
	}
	L->l_prev_ok = L->l_ok;
}

static const char *load_mode(const struct load_opts *o)
{
	if (o->lo_idle)
		return "idle";
	return o->lo_hs_only ? "handshake" : "send";
}

static void load_report_json(struct load *L, double secs, double ucpu, double scpu,
			     long rss_kb)
{
	const struct load_opts *o = L->l_opts;
	const struct load_hist *h = &L->l_hist, *hs = &L->l_hs_hist;
	double msgs = o->lo_hs_only ? 0 : (double)L->l_ok;
	double rate = secs > 0 ? msgs / secs : 0;
	double hs_rate = secs > 0 ? (double)L->l_handshakes / secs : 0;
	double per_msg = msgs > 0 ? (ucpu + scpu) * 1000.0 / msgs : 0;
	double per_hs = L->l_handshakes ? (ucpu + scpu) * 1000.0 / (double)L->l_handshakes : 0;
	char name[96];

	printf("{\"server\":\"%s\",\"mode\":\"%s\",\"sessions\":%u,\"size\":%zu,"
	       "\"sizes\":\"%s\",\"domains\":\"%s\",\"rdomains\":%u,"
	       "\"rcpts\":%u,\"per_conn\":%u,\"pipelining\":%s,\"tls\":%s,\"ok\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"seconds\":%.3f,\"msgs_per_sec\":%.1f,"
	       "\"bytes\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"connect_failed\":%" PRIu64
	       ",\"idle_established\":%u,"
	       "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
	       "\"max\":%.3f},",
	       o->lo_server, load_mode(o), o->lo_sessions, load_text_mean_size(L),
	       o->lo_sizes, o->lo_domains, o->lo_rdomains, o->lo_rcpts, o->lo_per_conn,
	       o->lo_pipelining ? "true" : "false", o->lo_tls ? "true" : "false",
	       L->l_ok, L->l_failed, secs, rate, L->l_bytes, L->l_conns, L->l_conn_failed,
	       L->l_idle_reached,
	       load_hist_ms(h, 0.50), load_hist_ms(h, 0.90), load_hist_ms(h, 0.99),
	       load_hist_ms(h, 0.999), (double)h->lh_max / 1000.0);
	/* Flat keys with non-empty values: bench/benchtable.py makes key=value of them. */
	printf("\"handshakes\":%" PRIu64 ",", L->l_handshakes);
	if (o->lo_tls)
		printf("\"tls_errors\":%" PRIu64 ",\"handshakes_per_sec\":%.1f,"
		       "\"hs_p50_ms\":%.3f,\"hs_p90_ms\":%.3f,\"hs_p99_ms\":%.3f,\"hs_max_ms\":%.3f,"
		       "\"tls_version\":\"%s\",\"tls_cipher\":\"%s\",\"cpu_ms_per_handshake\":%.4f,",
		       L->l_tls_errors, hs_rate, load_hist_ms(hs, 0.50), load_hist_ms(hs, 0.90),
		       load_hist_ms(hs, 0.99), (double)hs->lh_max / 1000.0,
		       L->l_tls_version ? L->l_tls_version : "-",
		       L->l_tls_cipher ? L->l_tls_cipher : "-", per_hs);
	printf("\"errors\":{");
	for (unsigned i = 0; i < L->l_nerrs; i++) {
		load_err_name(&L->l_errs[i], name, sizeof(name));
		printf("%s\"%s\":%" PRIu64, i ? "," : "", name, L->l_errs[i].le_n);
	}
	printf("},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_s\":%.3f,"
	       "\"cpu_ms_per_msg\":%.4f,\"max_rss_kb\":%ld}\n",
	       ucpu, scpu, ucpu + scpu, per_msg, rss_kb);
}

void load_report(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	const struct load_hist *h = &L->l_hist, *hs = &L->l_hs_hist;
	double secs = (double)(L->l_t_end - L->l_t0) / (double)LOAD_NS;
	double rate = secs > 0 ? (double)L->l_ok / secs : 0;
	struct rusage ru;
	double ucpu, scpu, cpu_ms;
	char name[96];

	getrusage(RUSAGE_SELF, &ru);
	ucpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	scpu = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	cpu_ms = (ucpu + scpu) * 1000.0;
	if (o->lo_json) {
		load_report_json(L, secs, ucpu, scpu, ru.ru_maxrss);
		return;
	}
	printf("smtp-load: %s sessions=%u size=%s rcpts=%u per_conn=%u pipelining=%s tls=%s\n",
	       o->lo_server, o->lo_sessions, o->lo_sizes, o->lo_rcpts, o->lo_per_conn,
	       o->lo_pipelining ? "yes" : "no", o->lo_tls ? "yes" : "no");
	if (o->lo_rdomains > 0)
		printf("domains:     d0.test .. d%u.test in turn (-R %u)\n", o->lo_rdomains - 1,
		       o->lo_rdomains);
	else if (L->l_ndomains > 1 || strcmp(o->lo_domains, "example.com") != 0)
		printf("domains:     %s\n", o->lo_domains);
	if (o->lo_idle)
		printf("idle:        %u of %u sessions reached the idle state\n",
		       L->l_idle_reached, o->lo_sessions);
	else if (o->lo_hs_only)
		printf("handshakes:  ok=%" PRIu64 " failed=%" PRIu64 " in %.3f s = %.1f "
		       "handshakes/s\n", L->l_ok, L->l_failed, secs, rate);
	else
		printf("messages:    ok=%" PRIu64 " failed=%" PRIu64 " in %.3f s = %.1f msg/s, "
		       "%.1f MB/s\n", L->l_ok, L->l_failed, secs, rate,
		       secs > 0 ? (double)L->l_bytes / secs / 1e6 : 0);
	printf("connections: %" PRIu64 " opened, %" PRIu64 " failed to connect\n",
	       L->l_conns, L->l_conn_failed);
	if (!o->lo_idle && !o->lo_hs_only)
		printf("latency:     end of DATA to reply, ms: p50=%.3f p90=%.3f p99=%.3f "
		       "p99.9=%.3f max=%.3f\n",
		       load_hist_ms(h, 0.50), load_hist_ms(h, 0.90), load_hist_ms(h, 0.99),
		       load_hist_ms(h, 0.999), (double)h->lh_max / 1000.0);
	if (o->lo_tls)
		printf("tls:         %" PRIu64 " handshakes (%.1f/s), %" PRIu64 " TLS errors, %s %s; "
		       "handshake ms: p50=%.3f p90=%.3f p99=%.3f max=%.3f\n",
		       L->l_handshakes, secs > 0 ? (double)L->l_handshakes / secs : 0,
		       L->l_tls_errors, L->l_tls_version ? L->l_tls_version : "-",
		       L->l_tls_cipher ? L->l_tls_cipher : "-",
		       load_hist_ms(hs, 0.50), load_hist_ms(hs, 0.90), load_hist_ms(hs, 0.99),
		       (double)hs->lh_max / 1000.0);
	printf("errors:     ");
	if (L->l_nerrs == 0)
		printf(" none");
	for (unsigned i = 0; i < L->l_nerrs; i++) {
		load_err_name(&L->l_errs[i], name, sizeof(name));
		printf(" %s=%" PRIu64, name, L->l_errs[i].le_n);
	}
	printf("\ncpu:         user=%.3f s sys=%.3f s", ucpu, scpu);
	if (o->lo_hs_only)
		printf(", %.4f ms per handshake\n",
		       L->l_handshakes ? cpu_ms / (double)L->l_handshakes : 0);
	else
		printf(", %.4f ms per message\n", L->l_ok ? cpu_ms / (double)L->l_ok : 0);
}
