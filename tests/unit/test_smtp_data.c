/*
 * test_smtp_data: table-driven tests of the DATA / BDAT body decoder
 * (core/smtp_data.c): exact unstuffing, the terminator split at every
 * offset, pipelined bytes left alone, the SMTP-smuggling endings, line and
 * size limits, header tracking, RAW mode and the refusal replies.
 *
 * Every piece is copied into its own heap block of exactly its size, so
 * AddressSanitizer catches a read outside the piece, and every emitted
 * slice is checked to lie inside the piece it came from.
 */
#include "core/wire/smtp_data.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

#define F_BARE_CR	SMTP_DATA_F_BARE_CR
#define F_BARE_LF	SMTP_DATA_F_BARE_LF
#define F_LONG		SMTP_DATA_F_LONG_LINE
#define F_BIG		SMTP_DATA_F_TOO_BIG
#define F_DATE		SMTP_DATA_F_HAS_DATE
#define F_MSGID		SMTP_DATA_F_HAS_MSGID
#define F_8BIT		SMTP_DATA_F_8BIT

/* What one decode produced. */
struct test_out {
	char *buf;
	size_t len, cap;
	size_t emits;
	size_t outside;		/* slices not inside the current piece */
	const char *lo, *hi;	/* the current piece */
	size_t consumed;	/* summed over all pieces */
	bool done;
	uint32_t flags;
	uint64_t size;
	unsigned hops;		/* Received: fields counted */
};

static void test_emit(void *ctx, const char *p, size_t n)
{
	struct test_out *o = ctx;

	/* The one allowed exception: a held-back bare CR (see smtp_data.c). */
	if (!(p >= o->lo && p + n <= o->hi) && !(n == 1 && *p == '\r'))
		o->outside++;
	if (n == 0)
		o->outside++;
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->buf = realloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->emits++;
}

static void test_out_free(struct test_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

/*
 * Decode msg[0..len) cut at the ascending offsets cuts[0..ncuts). Stops
 * feeding once done, as a session would. RAW mode calls finish.
 */
static void test_decode(const char *msg, size_t len, const size_t *cuts, size_t ncuts,
			enum smtp_data_mode mode, uint64_t max, struct test_out *o)
{
	struct smtp_data d;
	size_t start = 0;

	memset(o, 0, sizeof(*o));
	smtp_data_init(&d, mode, max);
	for (size_t c = 0; c <= ncuts && !o->done; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		size_t n = end - start;
		char *piece = malloc(n ? n : 1);
		size_t used;
		bool done;

		memcpy(piece, msg + start, n);
		o->lo = piece;
		o->hi = piece + n;
		used = smtp_data_feed(&d, piece, n, test_emit, o, &done);
		free(piece);
		o->consumed += used;
		o->done = done;
		if (!done && used != n)
			o->outside++;	/* short count without done: a bug */
		start = end;
	}
	o->flags = mode == SMTP_DATA_RAW ? smtp_data_finish(&d) : d.flags;
	o->size = d.size;
	o->hops = d.hops;
}

static void test_decode1(const char *msg, size_t len, enum smtp_data_mode mode, uint64_t max,
			 struct test_out *o)
{
	test_decode(msg, len, NULL, 0, mode, max, o);
}

static bool test_out_is(const struct test_out *o, const char *want, size_t want_len)
{
	return o->len == want_len && (want_len == 0 || memcmp(o->buf, want, want_len) == 0) &&
	       o->outside == 0;
}

/* A complete DATA case: input, unstuffed output, consumed, done, flags. */
struct data_case {
	const char *what;
	const char *in;
	const char *out;
	size_t consumed;	/* 0: all of the input */
	bool done;
	uint32_t flags;
};

#define T(s) s, sizeof(s) - 1

static const struct data_case data_cases[] = {
	/* unstuffing */
	{ "empty message", ".\r\n", "", 3, true, 0 },
	{ "one empty line", "\r\n.\r\n", "\r\n", 0, true, 0 },
	{ "plain", "Subject: x\r\n\r\nhello\r\n.\r\n", "Subject: x\r\n\r\nhello\r\n", 0, true, 0 },
	{ "stuffed dot line", "..\r\n.\r\n", ".\r\n", 0, true, 0 },
	{ "stuffed two dots", "...\r\n.\r\n", "..\r\n", 0, true, 0 },
	{ "stuffed text", "a\r\n..hello\r\n.\r\n", "a\r\n.hello\r\n", 0, true, 0 },
	{ "unstuffed .foo", "a\r\n.foo\r\n.\r\n", "a\r\nfoo\r\n", 0, true, 0 },
	{ "mixed", "a\r\n.b\r\n..c\r\n...\r\nd.\r\n.\r\n", "a\r\nb\r\n.c\r\n..\r\nd.\r\n", 0, true, 0 },
	{ "dot mid-line", "a.b\r\n a .\r\n.\r\n", "a.b\r\n a .\r\n", 0, true, 0 },
	{ "dot first octet", ".x\r\n.\r\n", "x\r\n", 0, true, 0 },
	/* pipelining: what follows the terminator is not consumed */
	{ "pipelined QUIT", "hello\r\n.\r\nQUIT\r\n", "hello\r\n", 10, true, 0 },
	{ "pipelined MAIL", ".\r\nMAIL FROM:<a@b>\r\n", "", 3, true, 0 },
	{ "second terminator left", "x\r\n.\r\n.\r\n", "x\r\n", 6, true, 0 },
	{ "not finished", "hello\r\nworld", "hello\r\nworld", 0, false, 0 },
	{ "not finished, dot held", "hello\r\n.", "hello\r\n", 0, false, 0 },
	{ "not finished, dot CR held", "hello\r\n.\r", "hello\r\n", 0, false, 0 },
	{ "not finished, CR out", "hello\r", "hello\r", 0, false, 0 },

	/* SMTP smuggling: none of these ends the message */
	{ "LF.LF", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 0, true, F_BARE_LF },
	{ "LF.CRLF", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 0, true, F_BARE_LF },
	{ "CR.CR", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", 0, true, F_BARE_CR },
	{ "CR.CRLF", "a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", 0, true, F_BARE_CR },
	{ "CRLF.CR", "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 0, true, F_BARE_CR },
	{ "CRLF.LF", "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 0, true, F_BARE_LF },
	{ ".CRCRLF", "a\r\n.\r\r\nb\r\n.\r\n", "a\r\n\r\r\nb\r\n", 0, true, F_BARE_CR },
	{ "LF.CR", "a\n.\rb\r\n.\r\n", "a\n.\rb\r\n", 0, true, F_BARE_LF | F_BARE_CR },
	{ "CRLFLF.CRLF", "a\r\n\n.\r\nb\r\n.\r\n", "a\r\n\n.\r\nb\r\n", 0, true, F_BARE_LF },
	{ "LF.LF at start", "\n.\nb\r\n.\r\n", "\n.\nb\r\n", 0, true, F_BARE_LF },
	{ ".LF at start", ".\nb\r\n.\r\n", "\nb\r\n", 0, true, F_BARE_LF },
	{ ".CR at start", ".\rb\r\n.\r\n", "\rb\r\n", 0, true, F_BARE_CR },
	{ "CRLF.LF, unfinished", "a\r\n.\n", "a\r\n\n", 0, false, F_BARE_LF },
	{ "LF.LF, unfinished", "a\n.\n", "a\n.\n", 0, false, F_BARE_LF },
	/* a real terminator after a bare CR still ends the message */
	{ "CRCRLF.CRLF", "a\r\r\n.\r\n", "a\r\r\n", 0, true, F_BARE_CR },

	/* bare CR and LF elsewhere */
	{ "bare CR mid-line", "a\rb\r\n.\r\n", "a\rb\r\n", 0, true, F_BARE_CR },
	{ "bare LF mid-line", "a\nb\r\n.\r\n", "a\nb\r\n", 0, true, F_BARE_LF },
	{ "bare LF first", "\nb\r\n.\r\n", "\nb\r\n", 0, true, F_BARE_LF },
	{ "bare CR first", "\rb\r\n.\r\n", "\rb\r\n", 0, true, F_BARE_CR },
	{ "CRCR", "a\r\r\nb\r\n.\r\n", "a\r\r\nb\r\n", 0, true, F_BARE_CR },
	{ "LFLF", "a\r\n\n\r\n.\r\n", "a\r\n\n\r\n", 0, true, F_BARE_LF },

	/* 8-bit */
	{ "8bit", "caf\xc3\xa9\r\n.\r\n", "caf\xc3\xa9\r\n", 0, true, F_8BIT },
	{ "8bit late", "0123456789012345678901234567890123456789\x80\r\n.\r\n",
	  "0123456789012345678901234567890123456789\x80\r\n", 0, true, F_8BIT },
	{ "8bit after terminator", "a\r\n.\r\n\xff", "a\r\n", 6, true, 0 },
	{ "8bit stuffed", "..\xff\r\n.\r\n", ".\xff\r\n", 0, true, F_8BIT },

	/* header tracking */
	{ "Date", "Date: now\r\n\r\nb\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "DATE no space", "DATE:now\r\n\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "date lower", "date: now\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "Date space colon", "Date : now\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "Date tab colon", "Date\t \t: now\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "Message-ID", "Message-ID: <a@b>\r\n\r\n.\r\n", NULL, 0, true, F_MSGID },
	{ "Message-Id space", "Subject: x\r\nMessage-Id : <a@b>\r\n\r\n.\r\n", NULL, 0, true, F_MSGID },
	{ "message-id lower", "message-id:<a@b>\r\n.\r\n", NULL, 0, true, F_MSGID },
	{ "both", "From: a\r\nMESSAGE-ID: <x>\r\nDate: y\r\n\r\nbody\r\n.\r\n", NULL, 0, true,
	  F_DATE | F_MSGID },
	{ "folded value", "Subject: x\r\n Date: y\r\n\tMessage-ID: z\r\n\r\n.\r\n", NULL, 0, true, 0 },
	{ "X-Date", "X-Date: y\r\nX-Message-ID: z\r\n\r\n.\r\n", NULL, 0, true, 0 },
	{ "Dates", "Dates: y\r\nMessage-IDs: z\r\n\r\n.\r\n", NULL, 0, true, 0 },
	{ "Dat", "Dat: y\r\nMessage-I: z\r\n\r\n.\r\n", NULL, 0, true, 0 },
	{ "Date no colon", "Date\r\nDate x: y\r\n\r\n.\r\n", NULL, 0, true, 0 },
	{ "in body", "Subject: x\r\n\r\nDate: y\r\nMessage-ID: z\r\n.\r\n", NULL, 0, true, 0 },
	{ "body only", "\r\nDate: y\r\n.\r\n", NULL, 0, true, 0 },
	{ "after CR-started line", "\rDate: y\r\nDate: z\r\n.\r\n", NULL, 0, true, F_BARE_CR | F_DATE },
	{ "stuffed field", ".Date: y\r\n..Message-ID: z\r\n\r\n.\r\n", NULL, 0, true, F_DATE },
	{ "after terminator", "Subject: x\r\n.\r\nDate: y\r\n", NULL, 15, true, 0 },
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *tc = &data_cases[i];
		size_t len = strlen(tc->in);
		size_t consumed = tc->consumed ? tc->consumed : len;
		struct test_out o;
		bool ok;

		test_decode1(tc->in, len, SMTP_DATA_DOT, 0, &o);
		ok = o.consumed == consumed && o.done == tc->done && o.flags == tc->flags &&
		     o.outside == 0 && o.size == o.len;
		if (tc->out != NULL)
			ok = ok && test_out_is(&o, tc->out, strlen(tc->out));
		if (!tap_ok(ok, "dot: %s", tc->what))
			printf("# consumed %zu done %d flags %#x out \"%.*s\"\n", o.consumed, o.done,
			       o.flags, (int)o.len, o.buf ? o.buf : "");
		test_out_free(&o);
	}
}

/* Every row again, cut into two pieces at every offset and into 1-octet
 * pieces: the result must not depend on how the network split it. */
static void test_table_split(void)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *tc = &data_cases[i];
		size_t len = strlen(tc->in);
		struct test_out whole, o;
		size_t *cuts = malloc((len + 1) * sizeof(*cuts));
		int bad = 0;

		test_decode1(tc->in, len, SMTP_DATA_DOT, 0, &whole);
		for (size_t c = 0; c <= len; c++) {
			test_decode(tc->in, len, &c, 1, SMTP_DATA_DOT, 0, &o);
			if (!test_out_is(&o, whole.buf, whole.len) || o.consumed != whole.consumed ||
			    o.done != whole.done || o.flags != whole.flags) {
				printf("# %s: differs when cut at %zu\n", tc->what, c);
				bad++;
			}
			test_out_free(&o);
		}
		for (size_t c = 0; c < len; c++)
			cuts[c] = c + 1;
		test_decode(tc->in, len, cuts, len ? len - 1 : 0, SMTP_DATA_DOT, 0, &o);
		if (!test_out_is(&o, whole.buf, whole.len) || o.consumed != whole.consumed ||
		    o.done != whole.done || o.flags != whole.flags) {
			printf("# %s: differs in 1-octet pieces\n", tc->what);
			bad++;
		}
		test_out_free(&o);
		tap_ok(bad == 0, "dot split at every offset and bytewise: %s", tc->what);
		test_out_free(&whole);
		free(cuts);
	}
}

/* The sample message cut at every pair of offsets (three pieces). */
static void test_sample_pairs(void)
{
	static const char msg[] =
		"From: a@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Message-Id : <x@example.com>\r\n\r\n..dots\r\n.x\r\nbody\r\n.\r\n"
		"MAIL FROM:<b@example.com>\r\n";
	static const char want[] =
		"From: a@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Message-Id : <x@example.com>\r\n\r\n.dots\r\nx\r\nbody\r\n";
	size_t len = sizeof(msg) - 1, term = strstr(msg, "\r\n.\r\n") - msg + 5;
	int bad = 0;

	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b++) {
			size_t cuts[2] = { a, b };
			struct test_out o;

			test_decode(msg, len, cuts, 2, SMTP_DATA_DOT, 0, &o);
			if (!test_out_is(&o, want, sizeof(want) - 1) || o.consumed != term || !o.done ||
			    o.flags != (F_DATE | F_MSGID)) {
				if (bad++ < 5)
					printf("# cut at %zu,%zu: consumed %zu flags %#x\n", a, b,
					       o.consumed, o.flags);
			}
			test_out_free(&o);
		}
	}
	tap_ok(bad == 0, "sample message cut at every pair of offsets");
}

/* Pieces that end on a boundary that matters, fed as given. */
struct piece_case {
	const char *what;
	const char *pieces[6];
	const char *out;
	size_t consumed;
	bool done;
	uint32_t flags;
	size_t emits;		/* 0: not checked */
};

static const struct piece_case piece_cases[] = {
	{ "bare CR at piece end", { "a\r", "b\r\n.\r\n" }, "a\rb\r\n", 8, true, F_BARE_CR, 0 },
	{ "CR | LF is CRLF", { "a\r", "\nb\r\n.\r\n" }, "a\r\nb\r\n", 9, true, 0, 0 },
	{ "CR | LF then dot", { "a\r", "\n", ".", "\r\n" }, "a\r\n", 6, true, 0, 0 },
	{ "held .CR then x", { "\r\n.", "\r", "x\r\n.\r\n" }, "\r\n\rx\r\n", 10, true, F_BARE_CR, 0 },
	{ "held .CR then LF ends", { "a\r\n.\r", "\nQUIT\r\n" }, "a\r\n", 6, true, 0, 0 },
	{ "held .CR then CR", { "a\r\n.\r", "\r\n.\r\n" }, "a\r\n\r\r\n", 10, true, F_BARE_CR, 0 },
	/* ".\n" is "\n" and a bare LF, after which a dot is text */
	{ "held dot then LF", { "a\r\n.", "\n.\r\n" }, "a\r\n\n.\r\n", 8, false, F_BARE_LF, 0 },
	{ "terminator 1+2", { "a\r\n.", "\r\nNOOP\r\n" }, "a\r\n", 6, true, 0, 0 },
	{ "terminator 2+1", { "a\r\n.\r", "\n" }, "a\r\n", 6, true, 0, 0 },
	{ "terminator after CR|LF", { "a\r", "\n.\r\nX" }, "a\r\n", 6, true, 0, 0 },
	{ "one emit per piece", { "Subject: x\r\n\r\nline one\r\nline two\r\nline three\r\n",
				  ".\r\n" },
	  "Subject: x\r\n\r\nline one\r\nline two\r\nline three\r\n", 49, true, 0, 1 },
	{ "stuffed dot splits the run", { "a\r\n..b\r\nc\r\n.\r\n" }, "a\r\n.b\r\nc\r\n", 14, true, 0, 2 },
	{ "Date split", { "Da", "te", " ", ":", " x\r\n\r\n.\r\n" }, NULL, 15, true, F_DATE, 0 },
	{ "Message-ID split", { "mess", "age-", "iD", "\t: x\r\n.\r\n" }, NULL, 19, true,
	  F_MSGID, 0 },
	{ "empty line split", { "Subject: x\r", "\n\r", "\nDate: y\r\n.\r\n" }, NULL, 26, true, 0, 0 },
};

static void test_pieces(void)
{
	for (size_t i = 0; i < sizeof(piece_cases) / sizeof(piece_cases[0]); i++) {
		const struct piece_case *tc = &piece_cases[i];
		char msg[256];
		size_t cuts[6], ncuts = 0, len = 0;
		struct test_out o;
		bool ok;

		for (size_t p = 0; p < 6 && tc->pieces[p]; p++) {
			if (p > 0)
				cuts[ncuts++] = len;
			memcpy(msg + len, tc->pieces[p], strlen(tc->pieces[p]));
			len += strlen(tc->pieces[p]);
		}
		test_decode(msg, len, cuts, ncuts, SMTP_DATA_DOT, 0, &o);
		ok = o.consumed == tc->consumed && o.done == tc->done && o.flags == tc->flags &&
		     o.outside == 0 && (tc->emits == 0 || o.emits == tc->emits);
		if (tc->out)
			ok = ok && test_out_is(&o, tc->out, strlen(tc->out));
		if (!tap_ok(ok, "pieces: %s", tc->what))
			printf("# consumed %zu done %d flags %#x emits %zu\n", o.consumed, o.done,
			       o.flags, o.emits);
		test_out_free(&o);
	}
}

/* A line of n octets before its CRLF, optionally dot-stuffed. */
static char *test_line_msg(size_t n, bool stuffed, const char *end, size_t *len_r)
{
	size_t elen = strlen(end);
	size_t len = stuffed + n + 2 + elen;
	char *m = malloc(len);

	m[0] = '.';
	memset(m + stuffed, 'x', n);
	memcpy(m + stuffed + n, "\r\n", 2);
	memcpy(m + stuffed + n + 2, end, elen);
	*len_r = len;
	return m;
}

static void test_long_lines(void)
{
	static const struct {
		const char *what;
		size_t n;
		bool stuffed;
		enum smtp_data_mode mode;
		uint32_t flags;
	} cases[] = {
		{ "998 + CRLF = 1000 passes", 998, false, SMTP_DATA_DOT, 0 },
		{ "999 + CRLF = 1001 flagged", 999, false, SMTP_DATA_DOT, F_LONG },
		{ "stuffed: . + 998 + CRLF passes (unstuffed 1000)", 998, true, SMTP_DATA_DOT, 0 },
		{ "stuffed: . + 999 + CRLF flagged", 999, true, SMTP_DATA_DOT, F_LONG },
		{ "100000-octet line flagged", 100000, false, SMTP_DATA_DOT, F_LONG },
		{ "RAW 998 + CRLF passes", 998, false, SMTP_DATA_RAW, 0 },
		{ "RAW 999 + CRLF flagged", 999, false, SMTP_DATA_RAW, F_LONG },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *end = cases[i].mode == SMTP_DATA_DOT ? "short\r\n.\r\n" : "short\r\n";
		size_t len, cut;
		char *m = test_line_msg(cases[i].n, cases[i].stuffed, end, &len);
		struct test_out o;
		int bad = 0;

		/* whole, then cut inside the line, at the CR and at the LF */
		size_t offs[] = { 0, 1, 500, cases[i].n, cases[i].n + 1, cases[i].n + 2 };
		for (size_t k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
			cut = offs[k];
			test_decode(m, len, &cut, k == 0 ? 0 : 1, cases[i].mode, 0, &o);
			if (o.flags != cases[i].flags || o.consumed != len || o.outside)
				bad++;
			test_out_free(&o);
		}
		tap_ok(bad == 0, "long line: %s", cases[i].what);
		free(m);
	}

	/* A long line ending in a bare LF is still long; the next line starts at 0. */
	{
		size_t len;
		char *m = test_line_msg(1001, false, ".\r\n", &len);
		struct test_out o;

		m[1001] = 'y';	/* "xxx...y\n": 1003 octets ending in a bare LF */
		test_decode1(m, len, SMTP_DATA_DOT, 0, &o);
		tap_ok(o.flags == (F_LONG | F_BARE_LF) && !o.done, "long line with bare LF");
		test_out_free(&o);
		free(m);
	}
	/* The limit exactly, for a line that starts anywhere in a 64-octet
	 * block (after a first line of pre octets): the block scan carries
	 * the octets after a block's last LF into the next line's count. */
	{
		char *m = malloc(80 + 2 + 999 + 2 + 3);
		int bad = 0;

		for (size_t pre = 0; pre < 80; pre++)
			for (size_t n = 998; n <= 999; n++) {
				struct test_out o;
				size_t len = 0;

				memset(m, 'y', pre);
				len = pre;
				memcpy(m + len, "\r\n", 2);
				len += 2;
				memset(m + len, 'x', n);
				len += n;
				memcpy(m + len, "\r\n.\r\n", 5);
				len += 5;
				test_decode1(m, len, SMTP_DATA_DOT, 0, &o);
				if (o.flags != (n == 999 ? F_LONG : 0u) || !o.done)
					bad++;
				test_out_free(&o);
			}
		tap_ok(bad == 0, "998 + CRLF passes and 999 + CRLF is long after a first line of "
		       "0-79 octets (%d wrong)", bad);
		free(m);
	}
	/* Many short lines never add up to a long one. */
	{
		size_t n = 5000 * 12;
		char *m = malloc(n + 3);
		struct test_out o;

		for (size_t i = 0; i < 5000; i++)
			memcpy(m + i * 12, "0123456789\r\n", 12);
		memcpy(m + n, ".\r\n", 3);
		test_decode1(m, n + 3, SMTP_DATA_DOT, 0, &o);
		tap_ok(o.flags == 0 && o.done && o.len == n && o.emits == 1,
		       "5000 short lines: no flag, one emit");
		test_out_free(&o);
		free(m);
	}
}

static void test_max_size(void)
{
	static const char msg[] = "Subject: x\r\n\r\n..body\r\nmore body\r\n.\r\nQUIT\r\n";
	static const char want[] = "Subject: x\r\n\r\n.body\r\nmore body\r\n";
	size_t len = sizeof(msg) - 1, wlen = sizeof(want) - 1, term = len - 6;
	struct test_out o;
	int bad = 0;

	test_decode1(msg, len, SMTP_DATA_DOT, wlen, &o);
	tap_ok(test_out_is(&o, want, wlen) && o.flags == 0 && o.done && o.consumed == term,
	       "max_size == message size passes");
	test_out_free(&o);

	test_decode1(msg, len, SMTP_DATA_DOT, wlen - 1, &o);
	tap_ok((o.flags & F_BIG) && o.done && o.consumed == term && o.len <= wlen - 1 &&
	       o.size == wlen && memcmp(o.buf ? o.buf : "", want, o.len) == 0,
	       "max_size + 1: flagged, terminator still found, emitted prefix within max");
	test_out_free(&o);

	test_decode1(msg, len, SMTP_DATA_DOT, 1, &o);
	tap_ok((o.flags & F_BIG) && o.done && o.consumed == term && o.len == 0,
	       "tiny max_size: nothing emitted, terminator found");
	test_out_free(&o);

	test_decode1(msg, len, SMTP_DATA_DOT, 0, &o);
	tap_ok(!(o.flags & F_BIG) && test_out_is(&o, want, wlen), "max_size 0 is unlimited");
	test_out_free(&o);

	/* The boundary does not move with the split. */
	for (size_t c = 0; c <= len; c++) {
		test_decode(msg, len, &c, 1, SMTP_DATA_DOT, wlen, &o);
		if (o.flags != 0 || !test_out_is(&o, want, wlen) || o.consumed != term)
			bad++;
		test_out_free(&o);
		test_decode(msg, len, &c, 1, SMTP_DATA_DOT, wlen - 1, &o);
		if (o.flags != F_BIG || o.len > wlen - 1 || o.consumed != term || !o.done)
			bad++;
		test_out_free(&o);
	}
	tap_ok(bad == 0, "max_size boundary at every cut");

	/* Once too big, later pieces emit nothing. */
	{
		size_t cuts[] = { 5, 20, 30 };

		test_decode(msg, len, cuts, 3, SMTP_DATA_DOT, 21, &o);
		tap_ok((o.flags & F_BIG) && o.len <= 21 && o.done && o.consumed == term,
		       "max_size reached in a middle piece stops emitting");
		test_out_free(&o);
	}
}

static void test_raw(void)
{
	static const char body[] = "Date: x\r\n\r\n.\r\n..y\r\n.\r\nend";
	size_t len = sizeof(body) - 1;
	struct test_out o;
	int bad = 0;

	test_decode1(body, len, SMTP_DATA_RAW, 0, &o);
	tap_ok(test_out_is(&o, body, len) && !o.done && o.consumed == len && o.flags == F_DATE,
	       "RAW: no unstuffing, no terminator, all consumed");
	test_out_free(&o);

	for (size_t c = 0; c <= len; c++) {
		test_decode(body, len, &c, 1, SMTP_DATA_RAW, 0, &o);
		if (!test_out_is(&o, body, len) || o.done || o.consumed != len || o.flags != F_DATE)
			bad++;
		test_out_free(&o);
	}
	tap_ok(bad == 0, "RAW: same at every cut");

	test_decode1(T("a\r\nb\r"), SMTP_DATA_RAW, 0, &o);
	tap_ok(o.flags == F_BARE_CR, "RAW: trailing CR is bare at finish");
	test_out_free(&o);

	test_decode1(T("a\r\nb\r\n"), SMTP_DATA_RAW, 0, &o);
	tap_ok(o.flags == 0, "RAW: trailing CRLF is fine");
	test_out_free(&o);

	test_decode1(T("a\r\nno newline at end"), SMTP_DATA_RAW, 0, &o);
	tap_ok(o.flags == 0, "RAW: a body may end mid-line");
	test_out_free(&o);

	{
		size_t cut = 2;

		test_decode(T("a\r\nb\r\n"), &cut, 1, SMTP_DATA_RAW, 0, &o);
		tap_ok(o.flags == 0 && o.len == 6, "RAW: CR | LF across chunks is CRLF");
		test_out_free(&o);
		test_decode(T("a\rb\r\n"), &cut, 1, SMTP_DATA_RAW, 0, &o);
		tap_ok(o.flags == F_BARE_CR, "RAW: CR | b across chunks is bare");
		test_out_free(&o);
	}

	test_decode1(T("a\nb\r\n"), SMTP_DATA_RAW, 0, &o);
	tap_ok(o.flags == F_BARE_LF, "RAW: bare LF");
	test_out_free(&o);

	test_decode1(T("Message-ID: <a>\r\n\xc3\xa9\r\n"), SMTP_DATA_RAW, 0, &o);
	tap_ok(o.flags == (F_MSGID | F_8BIT), "RAW: headers and 8bit tracked");
	test_out_free(&o);

	test_decode1(body, len, SMTP_DATA_RAW, len, &o);
	tap_ok(o.flags == F_DATE && o.len == len, "RAW: max_size == size passes");
	test_out_free(&o);

	test_decode1(body, len, SMTP_DATA_RAW, len - 1, &o);
	tap_ok(o.flags == (F_DATE | F_BIG) && o.len < len && o.consumed == len,
	       "RAW: max_size + 1 flagged, all consumed");
	test_out_free(&o);

	/* BDAT chunks share one decoder: the header state crosses them. */
	{
		size_t cuts[] = { 3, 9, 12 };

		test_decode(T("Mess\r\nDate: x\r\n\r\nMessage-ID: y\r\n"), cuts, 3, SMTP_DATA_RAW, 0,
			    &o);
		tap_ok(o.flags == F_DATE, "RAW: header state crosses chunks, stops at empty line");
		test_out_free(&o);
	}
}

static void test_after_done(void)
{
	struct smtp_data d;
	struct test_out o;
	bool done;
	size_t n;

	memset(&o, 0, sizeof(o));
	smtp_data_init(&d, SMTP_DATA_DOT, 0);
	o.lo = ".\r\nQUIT\r\n";
	o.hi = o.lo + 9;
	n = smtp_data_feed(&d, o.lo, 9, test_emit, &o, &done);
	tap_ok(n == 3 && done && o.len == 0, "terminator first: consumed 3 of 9");
	n = smtp_data_feed(&d, "more", 4, test_emit, &o, &done);
	tap_ok(n == 0 && done && o.len == 0, "feeding after the end consumes nothing");
	n = smtp_data_feed(&d, "", 0, test_emit, &o, &done);
	tap_ok(n == 0 && done, "empty feed after the end");

	smtp_data_init(&d, SMTP_DATA_DOT, 0);
	n = smtp_data_feed(&d, "", 0, test_emit, &o, &done);
	tap_ok(n == 0 && !done && o.emits == 0, "empty feed emits nothing");
	test_out_free(&o);
}

static void test_refusal(void)
{
	static const struct {
		uint32_t flags;
		const char *text;
	} cases[] = {
		{ 0, NULL },
		{ F_DATE | F_MSGID | F_8BIT, NULL },
		{ F_BARE_CR, "550 5.6.0 Message refused: bare CR or LF in message "
			     "(only CRLF line endings are allowed)" },
		{ F_BARE_LF, "550 5.6.0 Message refused: bare CR or LF in message "
			     "(only CRLF line endings are allowed)" },
		{ F_BARE_LF | F_BIG | F_LONG, "550 5.6.0 Message refused: bare CR or LF in message "
					      "(only CRLF line endings are allowed)" },
		{ F_BIG, "552 5.3.4 Message size exceeds fixed maximum message size" },
		{ F_BIG | F_LONG, "552 5.3.4 Message size exceeds fixed maximum message size" },
		{ F_LONG, "500 5.5.2 Message refused: line longer than 1000 octets" },
		{ F_LONG | F_DATE, "500 5.5.2 Message refused: line longer than 1000 octets" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = smtp_data_refusal(cases[i].flags);
		bool ok = cases[i].text ? (r && strcmp(r, cases[i].text) == 0) : r == NULL;

		tap_ok(ok, "refusal for flags %#x: %.3s", cases[i].flags,
		       cases[i].text ? cases[i].text : "none");
	}
}

/* Received: fields of the header section are counted (the hop limit):
 * any case, WSP before the colon, split anywhere; not continuation lines,
 * not look-alikes, not the body. */
static void test_hops(void)
{
	static const char msg[] =
		"Received: from a by b\r\n"
		"\tfor <x@example>; Mon, 30 Nov 2026 10:00:00 +0000\r\n"
		"RECEIVED : from b by c\r\n"
		"received:from c by d\r\n"
		"Received-SPF: pass\r\n"
		"X-Received: by e\r\n"
		"Subject: Received: no\r\n"
		"\r\n"
		"Received: in the body\r\n"
		".\r\n";
	size_t len = sizeof(msg) - 1;
	struct test_out o;
	bool all = true;

	test_decode1(msg, len, SMTP_DATA_DOT, 0, &o);
	tap_ok(o.done && o.hops == 3, "three Received: fields in the header (%u)", o.hops);
	test_out_free(&o);
	for (size_t cut = 1; cut < len; cut++) {
		test_decode(msg, len, &cut, 1, SMTP_DATA_DOT, 0, &o);
		if (o.hops != 3)
			all = false;
		test_out_free(&o);
	}
	tap_ok(all, "the same count with the input split at every offset");
	test_decode1(msg, len - 3, SMTP_DATA_RAW, 0, &o);
	tap_ok(o.hops == 3, "and in BDAT (%u)", o.hops);
	test_out_free(&o);
}

/* Decode msg (DOT mode unless raw) in two pieces cut at cut (0: one
 * piece) looking for field; whether found, with the range. */
static bool test_field_find(const char *msg, size_t len, size_t cut, const char *field, bool raw,
			    uint64_t *off_r, uint32_t *len_r, struct test_out *o)
{
	struct smtp_data d;
	size_t pos = 0;
	bool done = false;

	memset(o, 0, sizeof(*o));
	smtp_data_init(&d, raw ? SMTP_DATA_RAW : SMTP_DATA_DOT, 0);
	smtp_data_want_field(&d, field);
	for (int k = 0; k < 2 && !done; k++) {
		size_t end = k == 0 && cut != 0 ? cut : len;
		size_t n = end - pos;
		char *piece = malloc(n ? n : 1);

		memcpy(piece, msg + pos, n);
		o->lo = piece;
		o->hi = piece + n;
		pos += smtp_data_feed(&d, piece, n, test_emit, o, &done);
		free(piece);
		if (pos == len)
			break;
	}
	if (raw)
		smtp_data_finish(&d);
	return smtp_data_field(&d, off_r, len_r);
}

struct field_case {
	const char *what;
	const char *in;		/* DOT mode, ends with the terminator */
	const char *field;	/* the field's octets expected, NULL: none */
};

static const struct field_case field_cases[] = {
	{ "simple", "Subject: a\r\nX-Ringmta-Pool: bulk\r\n\r\nbody\r\n.\r\n",
	  "X-Ringmta-Pool: bulk\r\n" },
	{ "first line", "X-Ringmta-Pool: bulk\r\nSubject: a\r\n\r\n.\r\n",
	  "X-Ringmta-Pool: bulk\r\n" },
	{ "any case, WSP before the colon", "x-RINGMTA-pool \t: b\r\n\r\n.\r\n",
	  "x-RINGMTA-pool \t: b\r\n" },
	{ "folded", "A: b\r\nX-Ringmta-Pool:\r\n one\r\n\ttwo\r\nB: c\r\n\r\n.\r\n",
	  "X-Ringmta-Pool:\r\n one\r\n\ttwo\r\n" },
	{ "first occurrence only", "X-Ringmta-Pool: a\r\nX-Ringmta-Pool: b\r\n\r\n.\r\n",
	  "X-Ringmta-Pool: a\r\n" },
	{ "last field, no empty line", "S: x\r\nX-Ringmta-Pool: a\r\n.\r\n",
	  "X-Ringmta-Pool: a\r\n" },
	{ "stuffed dot line after it", "X-Ringmta-Pool: a\r\n..x: y\r\n\r\n.\r\n",
	  "X-Ringmta-Pool: a\r\n" },
	{ "after a stuffed line", "..x: y\r\nX-Ringmta-Pool: a\r\n\r\n.\r\n",
	  "X-Ringmta-Pool: a\r\n" },
	{ "in the body", "S: x\r\n\r\nX-Ringmta-Pool: a\r\n.\r\n", NULL },
	{ "a continuation line is no field", "S: x\r\n X-Ringmta-Pool: a\r\n\r\n.\r\n", NULL },
	{ "longer name", "X-Ringmta-Pools: a\r\nX-Ringmta-Pool-2: b\r\n\r\n.\r\n", NULL },
	{ "shorter name", "X-Ringmta-Poo: a\r\nX-Ringmta-Pool\r\n\r\n.\r\n", NULL },
	{ "name with no colon, then the field",
	  "X-Ringmta-Pool x\r\nX-Ringmta-Pool: y\r\n\r\n.\r\n", "X-Ringmta-Pool: y\r\n" },
	{ "a line cut inside the name", "X-Ringmta\r\nX-Ringmta-Pool: z\r\n\r\n.\r\n",
	  "X-Ringmta-Pool: z\r\n" },
};

/* The pool header field: found by name in the header section only, the
 * range covers its folded lines, the same range with the input split at
 * every offset; its value unfolded. */
static void test_field(void)
{
	for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
		const struct field_case *c = &field_cases[i];
		size_t len = strlen(c->in), bad = 0;
		struct test_out o;
		uint64_t off;
		uint32_t flen;

		for (size_t cut = 0; cut < len; cut++) {
			bool found = test_field_find(c->in, len, cut, "X-Ringmta-Pool", false, &off,
						     &flen, &o);

			if (c->field == NULL ? found :
			    !found || flen != strlen(c->field) || off + flen > o.len ||
			    memcmp(o.buf + off, c->field, flen) != 0)
				bad++;
			test_out_free(&o);
		}
		tap_ok(bad == 0, "pool field, %s: split at every offset (%zu wrong)", c->what, bad);
	}
	{
		static const char raw[] = "S: x\r\nX-Ringmta-Pool: open";
		struct test_out o;
		uint64_t off;
		uint32_t flen;
		bool found = test_field_find(T(raw), 0, "x-ringmta-pool", true, &off, &flen, &o);

		tap_ok(found && off == 6 && flen == sizeof(raw) - 1 - 6,
		       "BDAT: a message that ends inside the field: up to its end");
		test_out_free(&o);
		found = test_field_find(T(raw), 0, "", true, &off, &flen, &o);
		tap_ok(!found, "an empty name looks for nothing");
		test_out_free(&o);
	}
	{
		char out[16];
		static const char f1[] = "X-Ringmta-Pool:\r\n  bulk\r\n\t-one \t\r\n";

		tap_ok(smtp_data_field_value(T(f1), out, sizeof(out)) == 9 &&
		       strcmp(out, "bulk\t-one") == 0, "value unfolded and trimmed: %s", out);
		tap_ok(smtp_data_field_value(T("X-Ringmta-Pool: b\r\n"), out, sizeof(out)) == 1 &&
		       strcmp(out, "b") == 0, "a plain value");
		tap_ok(smtp_data_field_value(T("X-Ringmta-Pool: 0123456789abcdef\r\n"), out,
					     sizeof(out)) == -1, "a value too long for out: -1");
		tap_ok(smtp_data_field_value(T("X-Ringmta-Pool\r\n"), out, sizeof(out)) == -1,
		       "no colon: -1");
		tap_ok(smtp_data_field_value(T("X-Ringmta-Pool:  \r\n"), out, sizeof(out)) == 0 &&
		       out[0] == '\0', "an empty value");
	}
}

/* A random body for the block scan: short lines and long ones, dots and
 * 8-bit octets dense enough that every pattern falls on every side of a
 * 64-octet block edge, and at most `anomalies` bare CRs or LFs (so that
 * the flags, which stick, still tell the paths apart); in DOT mode a
 * terminator somewhere, with what a client pipelines after it (bare CR
 * and LF included). */
static size_t test_random_body(char *m, size_t cap, bool dot_mode, int anomalies)
{
	static const char *const atoms[] = {
		"\r\n", "\r\n", "\r\n.", "\r\n..", ".", "a", "\x80",
	};
	static const char *const bad[] = { "\r", "\n", "\r\r\n", "\n." };
	size_t n = 0, end = (size_t)rand() % (cap - 1100);

	while (n < end) {
		int r = rand() % 16;

		if (r < 5) {	/* a run of text, now and then a long one */
			size_t k = rand() % 40 == 0 ? 900 + (size_t)rand() % 200 : (size_t)rand() % 70;

			memset(m + n, 'x', k);
			n += k;
		} else {
			const char *a = anomalies > 0 && rand() % 24 == 0 ?
					anomalies--, bad[(size_t)rand() % 4] :
					atoms[(size_t)rand() % (sizeof(atoms) / sizeof(atoms[0]))];

			memcpy(m + n, a, strlen(a));
			n += strlen(a);
		}
	}
	if (dot_mode && rand() % 4 != 0) {
		memcpy(m + n, "\r\n.\r\nMAIL\n\r x\r\n", 16);
		n += 16;
	}
	return n;
}

/*
 * The 64-octet block scan (smtp_scan.h) against the line-at-a-time path:
 * fed one octet at a time, the decoder never has more than 64 octets in
 * hand and takes only the old path, so whole and randomly cut feeds must
 * agree with it exactly (octets out, flags, size, where the terminator
 * ends).
 */
static void test_blocks(void)
{
	enum { CAP = 4096 };
	char *m = malloc(CAP);
	size_t *cuts = malloc(CAP * sizeof(*cuts));
	int bad = 0, stuffed = 0, clean = 0, one = 0;

	srand(5321);
	for (int t = 0; t < 1000; t++) {
		enum smtp_data_mode mode = t % 3 == 2 ? SMTP_DATA_RAW : SMTP_DATA_DOT;
		size_t len = test_random_body(m, CAP, mode == SMTP_DATA_DOT, t % 4), nc = 0;
		struct test_out ref, whole, cut;

		for (size_t i = 1; i < len; i++)
			cuts[i - 1] = i;
		test_decode(m, len, cuts, len > 0 ? len - 1 : 0, mode, 0, &ref);
		test_decode1(m, len, mode, 0, &whole);
		for (size_t i = 1; i < len; i++)
			if (rand() % 97 == 0)
				cuts[nc++] = i;
		test_decode(m, len, cuts, nc, mode, 0, &cut);
		for (struct test_out *o = &whole; o <= &cut; o += &cut - &whole)
			if (o->len != ref.len || (ref.len != 0 && memcmp(o->buf, ref.buf, ref.len) != 0) ||
			    o->flags != ref.flags || o->size != ref.size ||
			    o->consumed != ref.consumed || o->done != ref.done || o->outside != 0) {
				if (bad++ == 0)
					printf("# body %d (%zu octets): len %zu/%zu flags %#x/%#x "
					       "consumed %zu/%zu done %d/%d\n", t, len, o->len, ref.len,
					       o->flags, ref.flags, o->consumed, ref.consumed, o->done,
					       ref.done);
			}
		stuffed += ref.len < ref.consumed;
		switch (ref.flags & (F_BARE_CR | F_BARE_LF)) {
		case 0:
			clean++;
			break;
		case F_BARE_CR:
		case F_BARE_LF:
			one++;
			break;
		}
		test_out_free(&ref);
		test_out_free(&whole);
		test_out_free(&cut);
	}
	tap_ok(bad == 0 && stuffed > 100 && clean > 200 && one > 100,
	       "1000 random bodies: blocks agree with the line path (%d differ, %d stuffed or "
	       "terminated, %d without a bare CR or LF, %d with one of the two)", bad, stuffed,
	       clean, one);
	free(cuts);
	free(m);
}

int main(void)
{
	test_table();
	test_table_split();
	test_sample_pairs();
	test_pieces();
	test_long_lines();
	test_max_size();
	test_raw();
	test_after_done();
	test_refusal();
	test_hops();
	test_field();
	test_blocks();
	return tap_done();
}
