/*
 * sink_rules.c: how smtp-sink decides to push back. It parses the reply mix
 * (-r) and the per-domain rules (-d) into struct sink_conf, builds the
 * greeting and EHLO texts, and decides each RCPT: fixed local parts first
 * (tempfail@, permfail@), then the domain's rule, then the random mix; an
 * accepted recipient's domain may add latency or force the DATA reply.
 *
 * Ownership: the configuration's texts are allocated here and freed by
 * sink_conf_free, after the workers have stopped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sink.h"

/* xorshift64*, scaled to [0, SINK_BP_ONE). */
unsigned sink_rand_bp(struct sink_worker *w)
{
	uint64_t x = w->w_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->w_rng = x;
	x *= 2685821657736338717ull;
	return (unsigned)(((x >> 32) * SINK_BP_ONE) >> 32);
}

static const struct sink_domain *sink_domain_find(const struct sink_conf *conf,
						  const char *d, size_t n)
{
	for (unsigned i = 0; i < conf->sc_ndomains; i++) {
		const struct sink_domain *sd = &conf->sc_domains[i];

		if (sd->sd_len == n && strncasecmp(sd->sd_name, d, n) == 0)
			return sd;
	}
	return NULL;
}

/* RCPT: local part first, then the domain's rule, then the reply mix. */
const struct sink_reply *sink_rcpt_decide(struct sink_worker *w,
						 struct sink_sess *s,
						 const char *addr, size_t n)
{
	const struct sink_conf *conf = w->w_conf;
	const struct sink_domain *sd = NULL;
	const char *at = memrchr(addr, '@', n);
	size_t llen = at != NULL ? (size_t)(at - addr) : n;

	if (llen == 8 && strncasecmp(addr, "tempfail", 8) == 0)
		return &sink_r_tempfail;
	if (llen == 8 && strncasecmp(addr, "permfail", 8) == 0)
		return &sink_r_permfail;
	if (at != NULL && conf->sc_ndomains > 0)
		sd = sink_domain_find(conf, at + 1, n - llen - 1);
	if (sd != NULL && sd->sd_rcpt.sr_code != 0)
		return &sd->sd_rcpt;
	if (conf->sc_rcpt_4xx + conf->sc_rcpt_5xx > 0) {
		unsigned r = sink_rand_bp(w);

		if (r < conf->sc_rcpt_4xx)
			return &sink_r_rcpt_4xx;
		if (r < conf->sc_rcpt_4xx + conf->sc_rcpt_5xx)
			return &sink_r_rcpt_5xx;
	}
	/* Accepted: the domain's rules shape the rest of the transaction. */
	if (sd != NULL) {
		if (sd->sd_latency_ms > s->ss_latency_ms)
			s->ss_latency_ms = sd->sd_latency_ms;
		if (sd->sd_data.sr_code != 0 && s->ss_data_rule == NULL)
			s->ss_data_rule = &sd->sd_data;
	}
	return &sink_r_rcpt;
}

unsigned sink_parse_uint(const char *s, unsigned max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || *s == '-')
		sink_fatal("bad %s: '%s'", what, s);
	return (unsigned)v;
}

/* "2.5" -> 250 basis points. */
static unsigned sink_parse_pct(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 100.0))
		sink_fatal("bad percentage: '%s'", s);
	return (unsigned)(v * 100.0 + 0.5);
}

/* -r "rcpt:4xx=5,rcpt:5xx=2,data:4xx=1,data:5xx=1,data:421=10" */
void sink_parse_mix(struct sink_conf *conf, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;

	if (copy == NULL)
		sink_fatal("out of memory");
	for (char *it = strtok_r(copy, ",", &save); it != NULL;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '=');
		unsigned *dst;

		if (eq == NULL)
			sink_fatal("bad -r entry '%s' (want rcpt:4xx=PCT)", it);
		*eq = '\0';
		if (strcasecmp(it, "rcpt:4xx") == 0)
			dst = &conf->sc_rcpt_4xx;
		else if (strcasecmp(it, "rcpt:5xx") == 0)
			dst = &conf->sc_rcpt_5xx;
		else if (strcasecmp(it, "data:4xx") == 0)
			dst = &conf->sc_data_4xx;
		else if (strcasecmp(it, "data:5xx") == 0)
			dst = &conf->sc_data_5xx;
		else if (strcasecmp(it, "data:421") == 0)
			dst = &conf->sc_data_421;
		else
			sink_fatal("bad -r key '%s' (rcpt:4xx rcpt:5xx data:4xx data:5xx data:421)",
				   it);
		*dst = sink_parse_pct(eq + 1);
	}
	free(copy);
	if (conf->sc_rcpt_4xx + conf->sc_rcpt_5xx > SINK_BP_ONE ||
	    conf->sc_data_4xx + conf->sc_data_5xx + conf->sc_data_421 > SINK_BP_ONE)
		sink_fatal("-r: percentages for one stage add up to more than 100");
}

/* An enhanced status code and text for a configured reply code. */
static const char *sink_code_text(unsigned code, bool data)
{
	static const struct { unsigned code; const char *rcpt, *data; } tab[] = {
		{ 421, "4.3.2 service not available", "4.3.2 service not available" },
		{ 450, "4.2.1 mailbox temporarily unavailable", "4.2.0 try again later" },
		{ 451, "4.3.0 temporary failure", "4.3.0 temporary failure" },
		{ 452, "4.2.2 mailbox full", "4.3.1 insufficient system storage" },
		{ 550, "5.1.1 no such user", "5.7.1 message rejected" },
		{ 551, "5.1.6 user not local", "5.7.1 message rejected" },
		{ 552, "5.2.2 mailbox full", "5.3.4 message too big" },
		{ 553, "5.1.3 bad address syntax", "5.7.1 message rejected" },
		{ 554, "5.7.1 recipient rejected", "5.6.0 message rejected" },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].code == code)
			return data ? tab[i].data : tab[i].rcpt;
	return code < 500 ? "4.0.0 temporary failure" : "5.0.0 rejected";
}

static void sink_reply_make(struct sink_reply *r, unsigned code, bool data)
{
	char buf[96];
	int n = snprintf(buf, sizeof(buf), "%u %s\r\n", code, sink_code_text(code, data));
	char *text = strdup(buf);

	if (text == NULL)
		sink_fatal("out of memory");
	free((char *)r->sr_text);
	r->sr_text = text;
	r->sr_len = (uint16_t)n;
	r->sr_code = (uint16_t)code;
}

/* -d "slow.test=latency:200,bad.test=rcpt:550,busy.test=rcpt:450";
 * actions for one domain may also be joined with '+'. */
void sink_parse_domains(struct sink_conf *conf, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;

	if (copy == NULL)
		sink_fatal("out of memory");
	for (char *it = strtok_r(copy, ",", &save); it != NULL;
	     it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '='), *asave = NULL;
		struct sink_domain *sd;

		if (eq == NULL || eq == it)
			sink_fatal("bad -d entry '%s' (want domain=action:value)", it);
		*eq = '\0';
		sd = NULL;
		for (unsigned i = 0; i < conf->sc_ndomains; i++)
			if (strcasecmp(conf->sc_domains[i].sd_name, it) == 0)
				sd = &conf->sc_domains[i];
		if (sd == NULL) {
			struct sink_domain *nd = realloc(conf->sc_domains,
					(conf->sc_ndomains + 1) * sizeof(*nd));

			if (nd == NULL)
				sink_fatal("out of memory");
			conf->sc_domains = nd;
			sd = &nd[conf->sc_ndomains++];
			memset(sd, 0, sizeof(*sd));
			sd->sd_name = strdup(it);
			if (sd->sd_name == NULL)
				sink_fatal("out of memory");
			sd->sd_len = strlen(it);
		}
		for (char *a = strtok_r(eq + 1, "+", &asave); a != NULL;
		     a = strtok_r(NULL, "+", &asave)) {
			char *colon = strchr(a, ':');

			if (colon == NULL)
				sink_fatal("bad -d action '%s'", a);
			*colon++ = '\0';
			if (strcasecmp(a, "latency") == 0) {
				sd->sd_latency_ms = sink_parse_uint(colon, 3600000, "latency");
			} else if (strcasecmp(a, "rcpt") == 0 || strcasecmp(a, "data") == 0) {
				unsigned code = sink_parse_uint(colon, 599, "reply code");

				if (code < 400)
					sink_fatal("-d: reply code %u is not 4xx or 5xx", code);
				if (strcasecmp(a, "rcpt") == 0)
					sink_reply_make(&sd->sd_rcpt, code, false);
				else
					sink_reply_make(&sd->sd_data, code, true);
			} else {
				sink_fatal("bad -d action '%s' (latency, rcpt, data)", a);
			}
		}
	}
	free(copy);
}

void sink_conf_free(struct sink_conf *conf)
{
	for (unsigned i = 0; i < conf->sc_ndomains; i++) {
		free(conf->sc_domains[i].sd_name);
		free((char *)conf->sc_domains[i].sd_rcpt.sr_text);
		free((char *)conf->sc_domains[i].sd_data.sr_text);
	}
	free(conf->sc_domains);
	free((char *)conf->sc_greeting.sr_text);
	free((char *)conf->sc_ehlo.sr_text);
	free((char *)conf->sc_helo.sr_text);
	memset(conf, 0, sizeof(*conf));
}

static void sink_reply_printf(struct sink_reply *r, unsigned code, const char *fmt,
			      const char *host)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), fmt, host);

	if (n < 0 || (size_t)n >= sizeof(buf) || (r->sr_text = strdup(buf)) == NULL)
		sink_fatal("out of memory");
	r->sr_len = (uint16_t)n;
	r->sr_code = (uint16_t)code;
}

void sink_conf_texts(struct sink_conf *conf)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		strcpy(host, "smtp-sink");
	host[sizeof(host) - 1] = '\0';
	sink_reply_printf(&conf->sc_greeting, 220, "220 %s ESMTP smtp-sink\r\n", host);
	sink_reply_printf(&conf->sc_helo, 250, "250 %s\r\n", host);
	sink_reply_printf(&conf->sc_ehlo, 250,
			  "250-%s\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n"
			  "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n", host);
}
