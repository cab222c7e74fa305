/*
 * bclass: bounce classes, what a failed or deferred recipient's reply
 * means for the sender (RFC 3463's subjects, regrouped by what a bulk
 * sender does about them: stop mailing the address, fix the content,
 * slow down, fix authentication, wait for the network).
 *
 * The numbers are stored in queue records (qrcpt.bclass) and so never
 * change meaning: a new class takes the next free number. The names are
 * the stable strings written in logs, metrics ("class" label), DSNs
 * (X-Ringmta-Bounce-Class) and rules files. Pure; any thread.
 */
#ifndef RINGMTA_BCLASS_H
#define RINGMTA_BCLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bclass {
	BCLASS_NONE = 0,		/* not classified (delivered, or v3) */
	BCLASS_INVALID_RECIPIENT = 1,	/* no such user, disabled account */
	BCLASS_MAILBOX_FULL = 2,	/* over quota */
	BCLASS_MESSAGE_TOO_LARGE = 3,
	BCLASS_SPAM_OR_CONTENT = 4,	/* content, URLs, attachments, spam */
	BCLASS_REPUTATION_OR_RATE = 5,	/* IP/domain reputation, rate limits */
	BCLASS_AUTHENTICATION = 6,	/* SPF, DKIM, DMARC, PTR, ARC; our
					 * SMTP AUTH at the next hop */
	BCLASS_POLICY = 7,		/* receiver policy, loops, blocked sender */
	BCLASS_RELAYING = 8,		/* relay denied, not our domain */
	BCLASS_BAD_DOMAIN = 9,		/* NXDOMAIN, null MX, no mail server */
	BCLASS_DNS = 10,		/* temporary DNS failure */
	BCLASS_TLS = 11,		/* TLS required or failed */
	BCLASS_CONNECTION = 12,		/* refused, timed out, dropped */
	BCLASS_PROTOCOL = 13,		/* syntax, bad sequence, broken replies */
	BCLASS_EXPIRED = 14,		/* max_queue_lifetime passed */
	BCLASS_OTHER = 15,		/* nothing matched */
	BCLASS_COUNT			/* one past the last */
};

/* "invalid-recipient" ... "other"; "none" for 0; NULL past the end. */
const char *bclass_name(unsigned c);
/* The class named s (len bytes), or -1. "none" is not a class name. */
int bclass_parse(const char *s, size_t len);
/* Hard classes: the address itself is bad, mail to it will fail again
 * (invalid-recipient, bad-domain); these feed the suppression list. */
bool bclass_is_hard(unsigned c);

#endif
