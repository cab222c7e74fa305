/*
 * smtp_scan.h: the line structure of 64 octets at once, for the body paths.
 *
 * The DATA decoder (smtp_data.c) and outbound dot-stuffing
 * (core/outbound/smtp_client_body.c) ask the same questions of every
 * octet of a body: is it LF, CR, a dot? Answered a line at a time with
 * memchr(), that was two calls per inbound line and one per outbound
 * line: at 100 KiB of 78-octet lines, 9 % of ringmta's CPU samples were
 * in memchr(). Here the answers come as bit masks for a block of 64
 * octets (bit i for octet i), so a caller finds every line end of the
 * block at once and handles the block in constant time: the workers'
 * CPU per 100 KiB message fell 13 % (bench/RESULTS.md section 30).
 *
 * Three ways to the same masks. With AVX2, two 32-octet loads, six
 * compares and six movemasks; the callers build their block loop twice
 * and pick the AVX2 one at run time (__builtin_cpu_supports), since
 * Debian's x86-64 baseline has only SSE2. With SSE2, four 16-octet loads
 * and twelve of each. Elsewhere, 64-bit words (an exact zero-octet test,
 * then the eight high bits gathered by one multiply). All three are built
 * on x86-64, so the unit test checks each against the octet-by-octet
 * definition there.
 *
 * No state, no I/O; p must have 64 readable octets.
 */
#ifndef RINGMTA_CORE_WIRE_SMTP_SCAN_H
#define RINGMTA_CORE_WIRE_SMTP_SCAN_H

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SMTP_SCAN_BLOCK 64

/* Bit i set where octet i of the block is LF, CR, ".". */
struct smtp_scan_masks {
	uint64_t lf;
	uint64_t cr;
	uint64_t dot;
};

/* The high bit of each octet of x that equals c's octet in cx (c
 * repeated eight times), gathered into the low eight bits. */
static inline uint64_t smtp_scan_word_eq(uint64_t x, uint64_t cx)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
	uint64_t y = x ^ cx;
	/* High bit set exactly where an octet of y is zero: no borrow can
	 * cross octets because the low seven bits are added apart. */
	uint64_t z = ~(((y & low7) + low7) | y | low7);

	/* Bit 8k+7 to bit 56+k for every k. The other partial products
	 * land above bit 63 (dropped) or below bit 56, where even all of
	 * them together sum to less than 2^56: no carry reaches the result. */
	return ((z >> 7) * 0x0102040810204080ull) >> 56;
}

static inline void smtp_scan_block_swar(const char *p, struct smtp_scan_masks *m)
{
	const uint64_t ones = 0x0101010101010101ull;

	m->lf = m->cr = m->dot = 0;
	for (unsigned w = 0; w < SMTP_SCAN_BLOCK / 8; w++) {
		uint64_t x;

		memcpy(&x, p + 8 * w, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		x = __builtin_bswap64(x);	/* octet 0 in the low bits */
#endif
		m->lf |= smtp_scan_word_eq(x, ones * '\n') << (8 * w);
		m->cr |= smtp_scan_word_eq(x, ones * '\r') << (8 * w);
		m->dot |= smtp_scan_word_eq(x, ones * '.') << (8 * w);
	}
}

#ifdef __SSE2__
static inline uint64_t smtp_scan_sse2_eq(const __m128i v[4], char c)
{
	const __m128i cv = _mm_set1_epi8(c);
	uint64_t m = 0;

	for (unsigned k = 0; k < 4; k++)
		m |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[k], cv)) << (16 * k);
	return m;
}

static inline void smtp_scan_block_sse2(const char *p, struct smtp_scan_masks *m)
{
	__m128i v[4];

	for (unsigned k = 0; k < 4; k++)
		v[k] = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
	m->lf = smtp_scan_sse2_eq(v, '\n');
	m->cr = smtp_scan_sse2_eq(v, '\r');
	m->dot = smtp_scan_sse2_eq(v, '.');
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SMTP_SCAN_AVX2 1

__attribute__((target("avx2")))
static inline uint64_t smtp_scan_avx2_eq(__m256i a, __m256i b, char c)
{
	const __m256i cv = _mm256_set1_epi8(c);

	return (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, cv)) |
	       (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, cv)) << 32;
}

__attribute__((target("avx2")))
static inline void smtp_scan_block_avx2(const char *p, struct smtp_scan_masks *m)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
	__m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));

	m->lf = smtp_scan_avx2_eq(a, b, '\n');
	m->cr = smtp_scan_avx2_eq(a, b, '\r');
	m->dot = smtp_scan_avx2_eq(a, b, '.');
}
#endif

static inline void smtp_scan_block(const char *p, struct smtp_scan_masks *m)
{
#ifdef __SSE2__
	smtp_scan_block_sse2(p, m);
#else
	smtp_scan_block_swar(p, m);
#endif
}

#endif
