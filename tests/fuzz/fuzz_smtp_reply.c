/*
 * fuzz_smtp_reply: libFuzzer target for the client-side SMTP reply parser
 * and the EHLO keyword reader.
 *
 * Input layout: byte 0 seeds the piece sizes (1 to 64 octets, from a
 * small generator); the rest is the stream from the server.
 *
 * The stream is read twice: whole, one reply after the other, and cut
 * into pieces, each fed from its own exact-size heap block. Both reads
 * must give the same results at the same stream offsets with the same
 * replies. Every reply must satisfy the header's promises: a 2xx-5xx
 * code, a NUL-terminated text of text_len octets, an ecode that is empty
 * or an RFC 3463 code of the reply's class.
 */
#include "core/wire/smtp_reply.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_reply_check(bool cond)
{
	if (!cond)
		abort();
}

/* One result of either read. */
struct fuzz_reply_ev {
	int ret;
	size_t end;		/* stream offset after the result */
	uint64_t digest;	/* of the reply, for DONE */
};

static uint64_t fuzz_reply_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool fuzz_reply_ecode_ok(const struct smtp_reply *r)
{
	const char *e = r->ecode;
	size_t k = 2;

	if (e[0] == '\0')
		return true;
	if (e[0] - '0' != r->code / 100 || e[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		size_t start = k;

		while (e[k] >= '0' && e[k] <= '9')
			k++;
		if (k == start || k - start > 3)
			return false;
		if (part == 0 && e[k++] != '.')
			return false;
	}
	return e[k] == '\0';
}

/* Check one reply and return its digest. */
static uint64_t fuzz_reply_take(const struct smtp_reply *r)
{
	uint64_t h = 0xcbf29ce484222325ull, size = 1;
	uint32_t flags;

	fuzz_reply_check(r->code >= 200 && r->code <= 559 && (r->code / 10) % 10 <= 5);
	fuzz_reply_check(r->nlines >= 1);
	fuzz_reply_check(r->text_len < SMTP_REPLY_TEXT_MAX);
	fuzz_reply_check(r->text[r->text_len] == '\0' && strlen(r->text) == r->text_len);
	fuzz_reply_check(memchr(r->ecode, '\0', sizeof(r->ecode)) != NULL);
	fuzz_reply_check(fuzz_reply_ecode_ok(r));
	/* ecode comes from the start of the last line's text. */
	if (r->ecode[0] != '\0' && r->text_len < SMTP_REPLY_TEXT_MAX - 1) {
		const char *last = memrchr(r->text, '\n', r->text_len);

		last = last ? last + 1 : r->text;
		fuzz_reply_check(strncmp(last, r->ecode, strlen(r->ecode)) == 0);
	}
	flags = smtp_reply_ehlo(r, &size);
	fuzz_reply_check(r->code == 250 || (flags == 0 && size == 0));
	fuzz_reply_check((flags & SMTP_EXT_SIZE) || size == 0);
	fuzz_reply_check(smtp_reply_ehlo(r, NULL) == flags);

	h = fuzz_reply_hash(h, &r->code, sizeof(r->code));
	h = fuzz_reply_hash(h, &r->nlines, sizeof(r->nlines));
	h = fuzz_reply_hash(h, r->ecode, strlen(r->ecode) + 1);
	return fuzz_reply_hash(h, r->text, r->text_len + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	struct smtp_reply *r;
	struct fuzz_reply_ev *ev;
	const char *s;
	size_t n, nev = 0, off = 0, k = 0;
	uint32_t seed;

	if (size < 1)
		return 0;
	seed = data[0] | 0x100u;
	s = (const char *)data + 1;
	n = size - 1;
	r = malloc(sizeof(*r));
	/* Each result but the last is a DONE of at least 4 octets. */
	ev = malloc((n / 4 + 2) * sizeof(*ev));

	/* Whole: feed what is left after each reply. */
	smtp_reply_parser_init(&p);
	for (;;) {
		size_t used = (size_t)-1;
		int ret = smtp_reply_feed(&p, s + off, n - off, &used, r);

		fuzz_reply_check(used <= n - off);
		off += used;
		if (ret == SMTP_REPLY_MORE) {
			fuzz_reply_check(off == n);
			break;
		}
		ev[nev].ret = ret;
		ev[nev].end = off;
		ev[nev].digest = 0;
		nev++;
		if (ret != SMTP_REPLY_DONE) {
			fuzz_reply_check(ret == SMTP_REPLY_E_SYNTAX || ret == SMTP_REPLY_E_TOO_LONG);
			fuzz_reply_check(used >= 1);
			break;
		}
		fuzz_reply_check(used >= 4);
		ev[nev - 1].digest = fuzz_reply_take(r);
	}

	/* In pieces: the same results at the same offsets. */
	smtp_reply_parser_init(&p);
	off = 0;
	while (off < n) {
		size_t len, pos = 0;
		char *piece;
		bool stop = false;

		seed = seed * 1103515245u + 12345u;
		len = 1 + (seed >> 16) % 64;
		if (len > n - off)
			len = n - off;
		piece = malloc(len);
		memcpy(piece, s + off, len);
		while (pos < len) {
			size_t used = (size_t)-1;
			int ret = smtp_reply_feed(&p, piece + pos, len - pos, &used, r);

			fuzz_reply_check(used <= len - pos);
			pos += used;
			if (ret == SMTP_REPLY_MORE) {
				fuzz_reply_check(pos == len);
				break;
			}
			fuzz_reply_check(k < nev && ev[k].ret == ret && ev[k].end == off + pos);
			if (ret == SMTP_REPLY_DONE)
				fuzz_reply_check(fuzz_reply_take(r) == ev[k].digest);
			k++;
			if (ret != SMTP_REPLY_DONE) {
				stop = true;
				break;
			}
		}
		free(piece);
		off += len;
		if (stop)
			break;
	}
	fuzz_reply_check(k == nev);
	free(ev);
	free(r);
	return 0;
}
