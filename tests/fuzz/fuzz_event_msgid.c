/*
 * fuzz_event_msgid: libFuzzer target for the Message-ID reader of the
 * reception event (core/events/event_render.c, event_msgid), which walks
 * a client's message header across the receive buffers it arrived in.
 *
 * Input layout: byte 0 seeds the piece sizes (1 to 32 octets); the rest
 * is the message. Read whole and in pieces (each an exact-size heap
 * block), the results must be equal, shorter than the buffer, and free of
 * control characters.
 */
#include "core/events/events_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec whole, iov[512];
	char a[200], b[200];
	size_t pos = 0, piece;
	unsigned n = 0;

	if (size < 1)
		return 0;
	piece = 1 + data[0] % 32;
	data++;
	size--;
	whole.iov_base = (void *)data;
	whole.iov_len = size;
	event_msgid(&whole, 1, a, sizeof(a));
	while (pos < size && n < 512) {
		size_t len = size - pos < piece ? size - pos : piece;
		char *p = malloc(len);

		memcpy(p, data + pos, len);
		iov[n].iov_base = p;
		iov[n++].iov_len = len;
		pos += len;
	}
	if (pos == size) {
		event_msgid(iov, n, b, sizeof(b));
		fuzz_check(strcmp(a, b) == 0);
	}
	for (unsigned i = 0; i < n; i++)
		free(iov[i].iov_base);
	fuzz_check(strlen(a) < sizeof(a));
	for (const char *p = a; *p; p++)
		fuzz_check((unsigned char)*p >= 0x20 && *p != 0x7f);
	return 0;
}
