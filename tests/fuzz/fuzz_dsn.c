/*
 * fuzz_dsn: libFuzzer target for the DSN builder and dsn_header_len().
 *
 * Input layout: byte 0 gives the number of recipients (bits 0-1), which
 * of them are delayed (bits 2-4), whether the whole message is returned
 * (bit 5, RET=FULL), whether recipients not delayed are relayed rather
 * than failed (bit 6) and whether there are DSN parameters (bit 7); then
 * NUL-separated strings: the reporting MTA, the sender, the queue id,
 * the message id, the dates, with bit 7 the ENVID (xtext), and per
 * recipient its address, status, remote MTA, diagnostic, last attempt
 * date and with bit 7 its ORCPT; whatever is left (NULs included) is the
 * original header section (or message). Missing strings are NULL.
 *
 * Whatever the input, the DSN must be well formed: CRLF line ends only,
 * no line of 1000 octets or more, no NUL, a header section that ends in
 * an empty line and carries the fixed fields, a boundary that appears
 * only in the Content-Type and as the two or three part delimiters and
 * the closing one, and 7-bit octets only when the input had none.
 */
#include "core/message/dsn.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_dsn_check(bool cond)
{
	if (!cond)
		abort();
}

/* The next NUL-terminated string of the input, or NULL at its end. */
static const char *fuzz_dsn_next(const char **p, const char *end)
{
	const char *s = *p, *z;

	if (s >= end)
		return NULL;
	z = memchr(s, '\0', (size_t)(end - s));
	if (z == NULL)
		return NULL;	/* the rest is the header section */
	*p = z + 1;
	return s;
}

static size_t fuzz_dsn_count(const char *s, size_t n, const char *needle)
{
	size_t c = 0, nl = strlen(needle);
	const char *p = s, *end = s + n;

	while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		c++;
		p += nl;
	}
	return c;
}

static void fuzz_dsn_check_output(const char *o, size_t n, bool ascii_in)
{
	size_t start = 0, hdr, nparts;
	const char *b, *e;
	char boundary[128], delim[140], close[140];

	for (size_t i = 0; i < n; i++) {
		fuzz_dsn_check(o[i] != '\0');
		fuzz_dsn_check(!ascii_in || (unsigned char)o[i] < 0x80);
		if (o[i] == '\r')
			fuzz_dsn_check(i + 1 < n && o[i + 1] == '\n');
		if (o[i] == '\n') {
			fuzz_dsn_check(i > 0 && o[i - 1] == '\r');
			fuzz_dsn_check(i + 1 - start < 1000);
			start = i + 1;
		}
	}
	fuzz_dsn_check(start == n);

	hdr = dsn_header_len(o, n);
	fuzz_dsn_check(hdr < n);
	fuzz_dsn_check(strncmp(o, "From: \"Mail Delivery System\" <MAILER-DAEMON@", 44) == 0);
	fuzz_dsn_check(memmem(o, hdr, "\r\nAuto-Submitted: auto-replied\r\n", 32) != NULL);
	fuzz_dsn_check(memmem(o, hdr, "\r\nMIME-Version: 1.0\r\n", 21) != NULL);
	b = memmem(o, hdr, "\tboundary=\"", 11);
	fuzz_dsn_check(b != NULL);
	b += 11;
	e = memchr(b, '"', hdr - (size_t)(b - o));
	fuzz_dsn_check(e != NULL && e > b && e - b <= 70);
	memcpy(boundary, b, (size_t)(e - b));
	boundary[e - b] = '\0';

	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", boundary);
	nparts = fuzz_dsn_count(o, n, delim);
	fuzz_dsn_check(nparts == 2 || nparts == 3);
	fuzz_dsn_check(fuzz_dsn_count(o, n, close) == 1);
	fuzz_dsn_check(n >= strlen(close) && memcmp(o + n - strlen(close), close, strlen(close)) == 0);
	fuzz_dsn_check(fuzz_dsn_count(o, n, boundary) == nparts + 2);
	fuzz_dsn_check(memmem(o, n, "Content-Type: message/delivery-status\r\n", 39) != NULL ||
		       memmem(o, n, "Content-Type: message/global-delivery-status\r\n", 46) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_rcpt rcpts[3];
	struct dsn_msg m;
	char *copy, *out = NULL;
	const char *p, *end;
	unsigned nrcpt;
	bool ascii = true;
	long n;
	size_t hl;

	if (size < 1)
		return 0;
	/* A private copy so ASan sees any read past the end. */
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	p = copy;
	end = copy + size - 1;
	for (size_t i = 1; i < size; i++)
		ascii &= data[i] < 0x80;

	memset(&m, 0, sizeof(m));
	memset(rcpts, 0, sizeof(rcpts));
	nrcpt = data[0] & 3;
	m.dm_reporting_mta = fuzz_dsn_next(&p, end);
	m.dm_to = fuzz_dsn_next(&p, end);
	m.dm_queue_id = fuzz_dsn_next(&p, end);
	m.dm_message_id = fuzz_dsn_next(&p, end);
	m.dm_arrival = fuzz_dsn_next(&p, end);
	m.dm_date = fuzz_dsn_next(&p, end);
	if (data[0] & 0x80)
		m.dm_envid = fuzz_dsn_next(&p, end);
	for (unsigned i = 0; i < nrcpt; i++) {
		rcpts[i].dr_action = (data[0] >> (2 + i)) & 1 ? DSN_DELAYED :
				     (data[0] & 0x40) ? DSN_RELAYED : DSN_FAILED;
		rcpts[i].dr_addr = fuzz_dsn_next(&p, end);
		rcpts[i].dr_status = fuzz_dsn_next(&p, end);
		rcpts[i].dr_remote_mta = fuzz_dsn_next(&p, end);
		rcpts[i].dr_remote_addr = NULL;
		rcpts[i].dr_diag = fuzz_dsn_next(&p, end);
		rcpts[i].dr_last_attempt = fuzz_dsn_next(&p, end);
		if (data[0] & 0x80)
			rcpts[i].dr_orcpt = fuzz_dsn_next(&p, end);
	}
	m.dm_rcpts = rcpts;
	m.dm_nrcpt = nrcpt;
	if (p < end) {
		m.dm_orig_headers = p;
		m.dm_orig_headers_len = (size_t)(end - p);
		if (data[0] & 0x20) {
			m.dm_orig = p;
			m.dm_orig_len = (size_t)(end - p);
		}
	}

	n = dsn_build(&m, &out);
	fuzz_dsn_check(n > 0 && out != NULL);
	fuzz_dsn_check_output(out, (size_t)n, ascii);
	free(out);

	/* dsn_header_len on the raw input. */
	hl = dsn_header_len(copy, size - 1);
	fuzz_dsn_check(hl <= size - 1);
	if (hl < size - 1)
		fuzz_dsn_check((hl == 0 && size - 1 >= 2 && copy[0] == '\r' && copy[1] == '\n') ||
			       (hl >= 2 && hl + 2 <= size - 1 &&
				memcmp(copy + hl - 2, "\r\n\r\n", 4) == 0));
	free(copy);
	return 0;
}
