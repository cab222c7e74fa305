/*
 * load_text.c: what smtp-load sends. It parses the -z size mix and the -D
 * domain mix, builds one message (headers and body) and one MAIL line per
 * size before the run, and writes each transaction's ".", MAIL, RCPT..,
 * DATA text, picking its size, and a domain for each recipient, by weight.
 *
 * With -R N the recipients' domains are d0.test .. dN-1.test, one after the
 * other, so that every domain gets the same share of a fan-out run.
 *
 * Ownership: messages, MAIL lines and the shared command text belong to
 * struct load and live until exit. Without a mix (one size, one domain)
 * every session points at the shared text; with one, each session owns a
 * fixed slice of one block (l_cmdmem), rewritten by load_text_txn only
 * while none of its sends is in flight.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define LOAD_MAX_WEIGHT		1000000u
#define LOAD_CMDMEM_MAX		(1ull << 30)

static const char load_rcpt_pfx[] = "RCPT TO:<rcpt";
static const char load_data[] = "DATA\r\n";
static const char load_rdom_sfx[] = ".test";	/* -R: d0.test, d1.test, ... */

static char *load_strdupf(size_t *len_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *load_strdupf(size_t *len_r, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		load_die("out of memory");
	if (len_r)
		*len_r = (size_t)n;
	return p;
}

/* xorshift64*: the size and domain picks; the quality asked of it is low. */
static uint64_t load_rand(struct load *L)
{
	uint64_t x = L->l_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	L->l_rng = x;
	return x * 2685821657736338717ull;
}

/* A number in 0..total-1, for the cumulative weights. */
static unsigned load_rand_below(struct load *L, unsigned total)
{
	return (unsigned)(((load_rand(L) >> 32) * (uint64_t)total) >> 32);
}

/*
 * Split "ITEM[:WEIGHT],..." in place: items_r[i] points into spec, whose
 * commas and weight colons become NULs. A weight is the digits after the
 * last colon; without one it is 1. Returns the number of items.
 */
static unsigned load_text_split(char *spec, char opt, char **items_r, unsigned *weights_r,
				unsigned max)
{
	unsigned n = 0;
	char *save = NULL;

	for (char *it = strtok_r(spec, ",", &save); it != NULL; it = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(it, ':'), *end;
		unsigned long w = 1;

		if (n == max)
			load_die("-%c: more than %u entries", opt, max);
		if (colon != NULL && colon[1] != '\0' &&
		    strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
			w = strtoul(colon + 1, &end, 10);
			if (w > LOAD_MAX_WEIGHT)
				load_die("-%c: weight %s is over %u", opt, colon + 1, LOAD_MAX_WEIGHT);
			*colon = '\0';
		}
		if (*it == '\0')
			load_die("-%c: an empty entry", opt);
		items_r[n] = it;
		weights_r[n] = (unsigned)w;
		n++;
	}
	if (n == 0)
		load_die("-%c: no entries", opt);
	return n;
}

static void load_text_parse(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	char *items[LOAD_MAX_DOMAINS], *spec;
	unsigned weights[LOAD_MAX_DOMAINS], cum = 0;

	spec = strdup(o->lo_sizes);
	if (spec == NULL)
		load_die("out of memory");
	L->l_nsizes = load_text_split(spec, 'z', items, weights, LOAD_MAX_SIZES);
	L->l_sizes = calloc(L->l_nsizes, sizeof(*L->l_sizes));
	if (L->l_sizes == NULL)
		load_die("out of memory");
	for (unsigned i = 0; i < L->l_nsizes; i++) {
		char *end;
		unsigned long long v;

		v = strtoull(items[i], &end, 10);
		if (*end != '\0' || items[i][0] == '-' || v > (1ull << 30))
			load_die("-z: want a size from 0 to %llu, not '%s'", 1ull << 30, items[i]);
		L->l_sizes[i].lz_size = (size_t)v;
		cum += weights[i];
		L->l_sizes[i].lz_cum = cum;
	}
	L->l_size_total = cum;
	free(spec);
	if (cum == 0)
		load_die("-z: the weights add up to 0");

	spec = strdup(o->lo_domains);	/* the names point into it until exit */
	if (spec == NULL)
		load_die("out of memory");
	L->l_ndomains = load_text_split(spec, 'D', items, weights, LOAD_MAX_DOMAINS);
	L->l_domains = calloc(L->l_ndomains, sizeof(*L->l_domains));
	if (L->l_domains == NULL)
		load_die("out of memory");
	cum = 0;
	for (unsigned i = 0; i < L->l_ndomains; i++) {
		size_t len = strlen(items[i]);

		if (len > 253 || strpbrk(items[i], "<> \t\r\n") != NULL)
			load_die("-D: '%s' is not a domain", items[i]);
		L->l_domains[i].ld_name = items[i];
		L->l_domains[i].ld_len = len;
		cum += weights[i];
		L->l_domains[i].ld_cum = cum;
	}
	L->l_domain_total = cum;
	if (cum == 0)
		load_die("-D: the weights add up to 0");
}

/* The body: CRLF lines of at most 78 octets, none starting with '.'. */
static char *load_body(size_t n, size_t *len_r)
{
	static const char alnum[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char *b = malloc(n + 8);
	size_t pos = 0;
	unsigned line = 0;

	if (b == NULL)
		load_die("out of memory");
	while (pos < n) {
		size_t left = n - pos, len = left < 78 ? left : 78;

		if (left - len == 1 || left - len == 2)
			len -= 3;	/* leave room for a last line */
		if (len < 3)
			len = 3;
		for (size_t i = 0; i + 2 < len; i++)
			b[pos + i] = alnum[(line + i) % 62];
		b[pos + len - 2] = '\r';
		b[pos + len - 1] = '\n';
		pos += len;
		line++;
	}
	*len_r = pos;
	return b;
}

void load_text_mid(struct load *L, struct load_sess *s)
{
	/* Fixed width, so every message of a size has that size. */
	snprintf(s->ls_mid, sizeof(s->ls_mid),
		 "Message-ID: <%016" PRIx64 ".%012" PRIu64 "@smtp-load.invalid>\r\n",
		 L->l_run_id, (uint64_t)(L->l_seq++ % 1000000000000ull));
}

/* Each size's message: the headers after Message-ID, then the body, so that
 * with the Message-ID line the message has exactly the size asked for. */
static void load_text_messages(struct load *L)
{
	char date[64], *hdr;
	size_t hdr_len, mid_len;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	hdr = load_strdupf(&hdr_len, "Date: %s\r\nFrom: <smtp-load@%s>\r\n"
			   "To: <rcpt0@%s>\r\nSubject: smtp-load test message\r\n\r\n",
			   date, L->l_opts->lo_from, L->l_domains[0].ld_name);
	load_text_mid(L, &L->l_sess[0]);
	L->l_seq = 0;
	mid_len = strlen(L->l_sess[0].ls_mid);
	for (unsigned i = 0; i < L->l_nsizes; i++) {
		struct load_size *z = &L->l_sizes[i];
		size_t body_len = z->lz_size > hdr_len + mid_len ? z->lz_size - hdr_len - mid_len : 0;
		char *body = load_body(body_len, &body_len);

		z->lz_msg = malloc(hdr_len + body_len);
		if (z->lz_msg == NULL)
			load_die("out of memory");
		memcpy(z->lz_msg, hdr, hdr_len);
		memcpy(z->lz_msg + hdr_len, body, body_len);
		z->lz_msg_len = hdr_len + body_len;
		free(body);
		z->lz_mail = load_strdupf(&z->lz_mail_len,
					  "MAIL FROM:<smtp-load@%s> SIZE=%zu\r\n",
					  L->l_opts->lo_from, z->lz_size);
	}
	free(hdr);
}

/* Decimal digits of v at p; returns how many. */
static size_t load_text_u32(char *p, uint32_t v)
{
	char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* ".\r\n" MAIL RCPT.. DATA for size z at p, each recipient's domain picked
 * by weight (else the first); returns the length. p holds l_cmd_cap octets. */
static size_t load_text_write(struct load *L, char *p, const struct load_size *z,
			      bool random_domains)
{
	char *start = p;

	memcpy(p, ".\r\n", 3);
	p += 3;
	memcpy(p, z->lz_mail, z->lz_mail_len);
	p += z->lz_mail_len;
	for (unsigned i = 0; i < L->l_opts->lo_rcpts; i++) {
		const struct load_domain *d = &L->l_domains[0];

		if (random_domains) {
			unsigned r = load_rand_below(L, L->l_domain_total);

			while (r >= d->ld_cum)
				d++;
		}
		memcpy(p, load_rcpt_pfx, sizeof(load_rcpt_pfx) - 1);
		p += sizeof(load_rcpt_pfx) - 1;
		p += load_text_u32(p, i);
		*p++ = '@';
		if (L->l_opts->lo_rdomains > 0) {
			/* -R: dK.test, K in turn */
			*p++ = 'd';
			p += load_text_u32(p, (uint32_t)(L->l_rdom_next++ %
							 L->l_opts->lo_rdomains));
			memcpy(p, load_rdom_sfx, sizeof(load_rdom_sfx) - 1);
			p += sizeof(load_rdom_sfx) - 1;
		} else {
			memcpy(p, d->ld_name, d->ld_len);
			p += d->ld_len;
		}
		memcpy(p, ">\r\n", 3);
		p += 3;
	}
	memcpy(p, load_data, sizeof(load_data) - 1);
	p += sizeof(load_data) - 1;
	return (size_t)(p - start);
}

void load_text_txn(struct load *L, struct load_sess *s)
{
	const struct load_size *z = L->l_sizes;

	s->ls_cmd_pos = 3;	/* after ".\r\n": the MAIL line */
	if (L->l_cmds != NULL)
		return;		/* the shared text: nothing to pick */
	if (L->l_nsizes > 1) {
		unsigned r = load_rand_below(L, L->l_size_total);

		while (r >= z->lz_cum)
			z++;
	}
	s->ls_size = (uint8_t)(z - L->l_sizes);
	s->ls_cmd_len = (uint32_t)load_text_write(L, s->ls_cmd, z, L->l_ndomains > 1);
}

size_t load_text_mean_size(const struct load *L)
{
	double sum = 0;
	unsigned prev = 0;

	for (unsigned i = 0; i < L->l_nsizes; i++) {
		sum += (double)L->l_sizes[i].lz_size * (L->l_sizes[i].lz_cum - prev);
		prev = L->l_sizes[i].lz_cum;
	}
	return (size_t)(sum / L->l_size_total + 0.5);
}

void load_text_init(struct load *L)
{
	const struct load_opts *o = L->l_opts;
	size_t mail_max = 0, dom_max = 0, cap;

	load_text_parse(L);
	L->l_run_id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ load_clock();
	L->l_rng = L->l_run_id | 1;
	load_text_messages(L);
	L->l_ehlo = load_strdupf(&L->l_ehlo_len, "EHLO %s\r\n", o->lo_helo);

	for (unsigned i = 0; i < L->l_nsizes; i++)
		if (L->l_sizes[i].lz_mail_len > mail_max)
			mail_max = L->l_sizes[i].lz_mail_len;
	for (unsigned i = 0; i < L->l_ndomains; i++)
		if (L->l_domains[i].ld_len > dom_max)
			dom_max = L->l_domains[i].ld_len;
	if (o->lo_rdomains > 0 && dom_max < 1 + 10 + sizeof(load_rdom_sfx))
		dom_max = 1 + 10 + sizeof(load_rdom_sfx);
	cap = 3 + mail_max + (size_t)o->lo_rcpts * (sizeof(load_rcpt_pfx) + 10 + 1 + dom_max + 3) +
	      sizeof(load_data);
	cap = (cap + 15) & ~(size_t)15;
	L->l_cmd_cap = cap;

	if (L->l_nsizes == 1 && L->l_ndomains == 1 && o->lo_rdomains == 0) {
		L->l_cmds = malloc(cap);
		if (L->l_cmds == NULL)
			load_die("out of memory");
		L->l_cmds_len = load_text_write(L, L->l_cmds, &L->l_sizes[0], false);
		for (unsigned i = 0; i < o->lo_sessions; i++) {
			L->l_sess[i].ls_cmd = L->l_cmds;
			L->l_sess[i].ls_cmd_len = (uint32_t)L->l_cmds_len;
		}
		return;
	}
	if ((unsigned long long)cap * o->lo_sessions > LOAD_CMDMEM_MAX)
		load_die("-r %u with -c %u and a -z/-D mix needs %zu bytes of command text per "
			 "session: too much", o->lo_rcpts, o->lo_sessions, cap);
	L->l_cmdmem = malloc(cap * o->lo_sessions);
	if (L->l_cmdmem == NULL)
		load_die("out of memory");
	for (unsigned i = 0; i < o->lo_sessions; i++) {
		L->l_sess[i].ls_cmd = L->l_cmdmem + cap * i;
		L->l_sess[i].ls_cmd_len = 0;
	}
}
