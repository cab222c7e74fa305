/*
 * fuzz_smtp_creds: libFuzzer target for the outbound AUTH credentials
 * file parser (core/outbound/smtp_creds.c), compiled in alone.
 *
 * The input is the file's text. A parse either fails with a message that
 * names the file, or gives accounts whose host, user and password are
 * non-empty and hold no line break, each found again by its own next hop
 * and port; the table is then freed (ASan sees every byte of it).
 */
#include "core/outbound/smtp_creds.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_creds_check(bool cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_creds *t = NULL, *r;
	char err[256];

	if (smtp_creds_parse(&t, (const char *)data, size, "f", err, sizeof(err)) < 0) {
		fuzz_creds_check(t == NULL && strncmp(err, "f:", 2) == 0);
		return 0;
	}
	fuzz_creds_check(t != NULL);
	/* Every account is whole and found again by its own next hop and
	 * port (keys are unique, so exactly it). */
	for (unsigned i = 0; i < smtp_creds_count(t); i++) {
		const struct smtp_cred *c = smtp_creds_at(t, i);

		fuzz_creds_check(c != NULL && c->sc_host[0] != '\0' && c->sc_user[0] != '\0' &&
				 c->sc_pass[0] != '\0');
		fuzz_creds_check(strpbrk(c->sc_host, "\r\n[] \t") == NULL &&
				 strpbrk(c->sc_user, "\r\n") == NULL &&
				 strpbrk(c->sc_pass, "\r\n") == NULL);
		fuzz_creds_check(smtp_creds_find(t, c->sc_host, c->sc_port) == c);
	}
	fuzz_creds_check(smtp_creds_at(t, smtp_creds_count(t)) == NULL);
	r = smtp_creds_ref(t);
	smtp_creds_unref(&t);
	smtp_creds_unref(&r);
	fuzz_creds_check(t == NULL && r == NULL);
	return 0;
}
