/*
 * test_smtp_scan: the 64-octet masks of core/wire/smtp_scan.h against
 * their definition, octet by octet. Every octet value at every position
 * of a block, over four backgrounds, then random blocks, for the SWAR
 * words (what a machine without SSE2 runs) and, where built and the CPU
 * has them, SSE2 and AVX2.
 */
#include "core/wire/smtp_scan.h"
#include "tests/unit/tap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef void test_scan_fn(const char *p, struct smtp_scan_masks *m);

static bool test_scan_agrees(test_scan_fn *fn, const unsigned char *blk)
{
	struct smtp_scan_masks m, want = { 0, 0, 0 };

	for (unsigned i = 0; i < SMTP_SCAN_BLOCK; i++) {
		want.lf |= (uint64_t)(blk[i] == '\n') << i;
		want.cr |= (uint64_t)(blk[i] == '\r') << i;
		want.dot |= (uint64_t)(blk[i] == '.') << i;
	}
	fn((const char *)blk, &m);
	return m.lf == want.lf && m.cr == want.cr && m.dot == want.dot;
}

static void test_scan(const char *what, test_scan_fn *fn)
{
	/* One octet more than a block, read from an odd address. */
	unsigned char buf[SMTP_SCAN_BLOCK + 1], *blk = buf + 1;
	static const unsigned char backgrounds[] = { 'x', 0x00, 0xff, '\n' };
	size_t bad = 0;

	for (size_t b = 0; b < sizeof(backgrounds); b++)
		for (unsigned pos = 0; pos < SMTP_SCAN_BLOCK; pos++)
			for (unsigned v = 0; v < 256; v++) {
				memset(blk, backgrounds[b], SMTP_SCAN_BLOCK);
				blk[pos] = (unsigned char)v;
				bad += !test_scan_agrees(fn, blk);
			}
	tap_ok(bad == 0, "%s: every octet at every position, 4 backgrounds (%zu wrong)", what, bad);
	srand(64);
	bad = 0;
	for (int t = 0; t < 20000; t++) {
		static const unsigned char pick[] = { '\n', '\r', '.', 'a', 0x8a, 0x8d, 0xae, 0x0b };

		for (unsigned i = 0; i < SMTP_SCAN_BLOCK; i++)
			blk[i] = t % 2 ? pick[rand() % 8] : (unsigned char)rand();
		bad += !test_scan_agrees(fn, blk);
	}
	tap_ok(bad == 0, "%s: 20000 random blocks (%zu wrong)", what, bad);
}

int main(void)
{
	test_scan("SWAR", smtp_scan_block_swar);
#ifdef __SSE2__
	test_scan("SSE2", smtp_scan_block_sse2);
#endif
#ifdef SMTP_SCAN_AVX2
	if (__builtin_cpu_supports("avx2"))
		test_scan("AVX2", smtp_scan_block_avx2);
	else
		printf("# no AVX2 on this CPU: its masks not tested\n");
#endif
	test_scan("smtp_scan_block", smtp_scan_block);
	return tap_done();
}
