/*
 * qrecord: the stored form of a message's envelope (LMDB value under the
 * queue id in the "meta" database).
 *
 * Little-endian, versioned, self-checking: decode validates every length
 * before handing back views into the stored bytes, so a damaged record is
 * reported, never read past. Decoding copies nothing: the views live as
 * long as the bytes given (an LMDB read transaction).
 *
 * Versions: encode always writes "RMQ5"; decode reads "RMQ5" and the
 * previous releases' "RMQ4" and "RMQ3" (a queue written before an
 * upgrade still delivers), handing back the fields they lack as zero /
 * "" (no class, the default pool, nothing to strip, no DSN parameters).
 *
 * Layout (v5; v4 is the same without dsn_ret, envid, and each
 * recipient's notify and orcpt; v3 is v4 without pool, strip_off and
 * strip_len, and its byte after each recipient's state is padding, read
 * as class 0):
 *   magic u32, arrival u64, next_attempt u64, size u64, flags u32,
 *   nrcpt u32, sender str, client str, helo str, pool str,
 *   strip_off u64, strip_len u32, dsn_ret u8, envid str,
 *   nrcpt x { state u8, bclass u8, attempts u16, next_attempt u64,
 *             addr str, reply str, notify u8, orcpt str }
 * where str is a u16 length and that many bytes.
 */
#ifndef RINGMTA_QRECORD_H
#define RINGMTA_QRECORD_H

#include <stddef.h>
#include <stdint.h>

#define QRECORD_MAGIC 0x35514d52u	/* "RMQ5", what encode writes */
#define QRECORD_MAGIC_V4 0x34514d52u	/* "RMQ4", still decoded */
#define QRECORD_MAGIC_V3 0x33514d52u	/* "RMQ3", still decoded */
#define QRECORD_F_8BIT		0x01u
#define QRECORD_F_SMTPUTF8	0x02u
#define QRECORD_F_DELAY_WARNED	0x04u	/* a delay DSN was sent */
#define QRECORD_F_LOOPING	0x08u	/* hop limit reached at acceptance */
/* Held by an operator (admin API): never dispatched; its schedule entry
 * sits at QRECORD_HELD_NEXT, after every real time, until released. The
 * recipients keep their own next attempts. */
#define QRECORD_F_HELD		0x10u
#define QRECORD_HELD_NEXT	UINT64_MAX
/* Received: fields, the receiving MTA's included, at which a message is
 * looping: it is bounced 5.4.6, not delivered (Postfix's hopcount_limit). */
#define QRECORD_HOPCOUNT_LIMIT	50u

/* DSN parameters (RFC 3461) as received: the message's RET= and each
 * recipient's NOTIFY= (bits); 0 = not given. Values as in
 * core/wire/smtp_cmd.h. */
#define QRECORD_RET_FULL	1u
#define QRECORD_RET_HDRS	2u
#define QRCPT_NOTIFY_SUCCESS	0x01u
#define QRCPT_NOTIFY_FAILURE	0x02u
#define QRCPT_NOTIFY_DELAY	0x04u
#define QRCPT_NOTIFY_NEVER	0x08u

enum qrcpt_state {
	QRCPT_PENDING = 0,
	QRCPT_DELIVERED = 1,
	QRCPT_FAILED = 2,
};

struct qrcpt {
	uint8_t state;			/* enum qrcpt_state */
	uint16_t attempts;
	uint64_t next_attempt;		/* unix microseconds */
	const char *addr;
	uint16_t addr_len;
	const char *reply;		/* last reply or reason; may be NULL */
	uint16_t reply_len;
	/* Bounce class of the last failure or deferral (core/bounce's enum
	 * bclass, opaque here); 0 = none yet. */
	uint8_t bclass;
	/* DSN (v5): NOTIFY= bits (QRCPT_NOTIFY_*, 0 = not given) and ORCPT=
	 * as received ("addr-type;xtext", len 0 = none). */
	uint8_t notify;
	const char *orcpt;
	uint16_t orcpt_len;
};

struct qrecord {
	uint64_t arrival;		/* unix microseconds */
	uint64_t next_attempt;		/* earliest over pending recipients */
	uint64_t size;			/* stored message octets */
	uint32_t flags;			/* QRECORD_F_* */
	const char *sender;		/* "" for the null sender */
	uint16_t sender_len;
	const char *client;		/* client address, text */
	uint16_t client_len;
	const char *helo;
	uint16_t helo_len;
	/* Source pool chosen at acceptance; "" (or NULL, len 0) = default. */
	const char *pool;
	uint16_t pool_len;
	/* A byte range of the stored message (the header field an injector
	 * set to choose the pool) that the outbound client leaves out when
	 * sending; strip_len 0 = none. Decode checks it lies within size. */
	uint64_t strip_off;
	uint32_t strip_len;
	uint32_t nrcpt;
	/* encode: the recipients; decode: NULL, use qrecord_rcpt_next */
	const struct qrcpt *rcpts;
	const unsigned char *rcpt_data;	/* decode only */
	size_t rcpt_len;		/* decode only */
	uint8_t version;		/* decode only: 3, 4 or 5 */
	/* DSN (v5): RET= (QRECORD_RET_*, 0 = not given) and ENVID= as
	 * received (xtext; len 0 = none). */
	uint8_t dsn_ret;
	const char *envid;
	uint16_t envid_len;
};

size_t qrecord_encoded_size(const struct qrecord *r);
/* Write the record into buf (qrecord_encoded_size bytes). */
void qrecord_encode(const struct qrecord *r, void *buf);
/* Validate and view. Returns 0 or -EBADMSG. */
int qrecord_decode(const void *buf, size_t len, struct qrecord *r_r);
/*
 * Next recipient of a decoded record; *off starts at 0. Returns 1 and
 * fills *rc_r, or 0 at the end.
 */
int qrecord_rcpt_next(const struct qrecord *r, size_t *off, struct qrcpt *rc_r);

#endif
