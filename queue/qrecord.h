/*
 * qrecord: the stored form of a message's envelope (LMDB value under the
 * queue id in the "meta" database).
 *
 * Little-endian, versioned, self-checking: decode validates every length
 * before handing back views into the stored bytes, so a damaged record is
 * reported, never read past. Decoding copies nothing: the views live as
 * long as the bytes given (an LMDB read transaction).
 */
#ifndef RINGMTA_QRECORD_H
#define RINGMTA_QRECORD_H

#include <stddef.h>
#include <stdint.h>

#define QRECORD_MAGIC 0x33514d52u	/* "RMQ3" */
#define QRECORD_F_8BIT		0x01u
#define QRECORD_F_SMTPUTF8	0x02u
#define QRECORD_F_DELAY_WARNED	0x04u	/* a delay DSN was sent */
#define QRECORD_F_LOOPING	0x08u	/* hop limit reached at acceptance */
/* Received: fields, the receiving MTA's included, at which a message is
 * looping: it is bounced 5.4.6, not delivered (Postfix's hopcount_limit). */
#define QRECORD_HOPCOUNT_LIMIT	50u

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
	uint32_t nrcpt;
	/* encode: the recipients; decode: NULL, use qrecord_rcpt_next */
	const struct qrcpt *rcpts;
	const unsigned char *rcpt_data;	/* decode only */
	size_t rcpt_len;		/* decode only */
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
