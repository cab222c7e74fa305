/* bclass.c: the class names (see bclass.h). */
#include "core/bounce/bclass.h"

#include <string.h>

static const char *const bclass_names[BCLASS_COUNT] = {
	[BCLASS_NONE] = "none",
	[BCLASS_INVALID_RECIPIENT] = "invalid-recipient",
	[BCLASS_MAILBOX_FULL] = "mailbox-full",
	[BCLASS_MESSAGE_TOO_LARGE] = "message-too-large",
	[BCLASS_SPAM_OR_CONTENT] = "spam-or-content",
	[BCLASS_REPUTATION_OR_RATE] = "reputation-or-rate",
	[BCLASS_AUTHENTICATION] = "authentication",
	[BCLASS_POLICY] = "policy",
	[BCLASS_RELAYING] = "relaying",
	[BCLASS_BAD_DOMAIN] = "bad-domain",
	[BCLASS_DNS] = "dns",
	[BCLASS_TLS] = "tls",
	[BCLASS_CONNECTION] = "connection",
	[BCLASS_PROTOCOL] = "protocol",
	[BCLASS_EXPIRED] = "expired",
	[BCLASS_OTHER] = "other",
};

const char *bclass_name(unsigned c)
{
	return c < BCLASS_COUNT ? bclass_names[c] : NULL;
}

int bclass_parse(const char *s, size_t len)
{
	for (unsigned c = 1; c < BCLASS_COUNT; c++)
		if (strlen(bclass_names[c]) == len && memcmp(bclass_names[c], s, len) == 0)
			return (int)c;
	return -1;
}

bool bclass_is_hard(unsigned c)
{
	return c == BCLASS_INVALID_RECIPIENT || c == BCLASS_BAD_DOMAIN;
}
