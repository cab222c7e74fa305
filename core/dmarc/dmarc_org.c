/*
 * dmarc_org.c: organizational domains with libpsl. See dmarc_org.h.
 */
#include "core/dmarc/dmarc_org.h"

#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <string.h>

#define DMARC_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dafsa"

static const psl_ctx_t *dmarc_psl;
static pthread_once_t dmarc_psl_once = PTHREAD_ONCE_INIT;

static void dmarc_psl_load(void)
{
	/* Debian's data, newer than libpsl's built-in copy when updated. */
	const psl_ctx_t *p = psl_latest(DMARC_PSL_FILE);

	dmarc_psl = p != NULL ? p : psl_builtin();
}

void dmarc_org_init(void)
{
	pthread_once(&dmarc_psl_once, dmarc_psl_load);
}

int dmarc_org_domain(const char *domain, char *buf, size_t cap)
{
	char low[256];
	const char *reg;
	size_t n = strlen(domain);

	dmarc_org_init();
	while (n > 0 && domain[n - 1] == '.')
		n--;			/* a trailing root dot */
	if (n == 0 || n >= sizeof(low))
		return -1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)domain[i]);
	low[n] = '\0';
	reg = dmarc_psl != NULL ? psl_registrable_domain(dmarc_psl, low) : NULL;
	if (reg == NULL)
		reg = low;	/* a public suffix, or unknown: itself */
	n = strlen(reg);
	if (n + 1 > cap)
		return -1;
	memcpy(buf, reg, n + 1);
	return (int)n;
}

bool dmarc_org_aligned(const char *a, const char *b)
{
	char oa[256], ob[256];

	if (a == NULL || b == NULL || dmarc_org_domain(a, oa, sizeof(oa)) < 0 ||
	    dmarc_org_domain(b, ob, sizeof(ob)) < 0)
		return false;
	return strcmp(oa, ob) == 0;
}
