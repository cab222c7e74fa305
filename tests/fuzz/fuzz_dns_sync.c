/*
 * fuzz_dns_sync: dns_sync_parse (core/dns/dns_sync.c), which walks raw
 * server answers for the SPF checks and the domain check. The first byte
 * picks the record type; the rest is the answer.
 */
#include "core/dns/dns_sync.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = { DNS_SYNC_A, DNS_SYNC_PTR, DNS_SYNC_MX, DNS_SYNC_TXT,
				     DNS_SYNC_AAAA };
	struct dns_sync_result r;
	int type;

	if (size < 1 || size > 65536)
		return 0;
	type = types[data[0] % 5];
	memset(&r, 0, sizeof(r));
	if (dns_sync_parse(data + 1, (int)(size - 1), type, &r) == 0) {
		for (unsigned i = 0; i < r.ds_n; i++) {
			const struct dns_sync_rr *rr = &r.ds_rr[i];

			if ((type == DNS_SYNC_A || type == DNS_SYNC_AAAA) != (rr->dr_text == NULL))
				abort();
			if (rr->dr_text != NULL && type != DNS_SYNC_TXT &&
			    strlen(rr->dr_text) != rr->dr_len)
				abort();
			if (rr->dr_text != NULL && rr->dr_text[rr->dr_len] != '\0')
				abort();
		}
	}
	dns_sync_result_free(&r);
	return 0;
}
