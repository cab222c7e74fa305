/*
 * fuzz_dns_ttl: the parts of core/dns that read untrusted bytes: the DNS
 * answer walker (dns_wire_ttls in core/dns_wire.c, fed raw server
 * replies) and the domain and address-literal checks (core/dns_name.c,
 * fed recipient domains). Both are compiled into the target alone; it
 * needs c-ares only for the declarations in core/dns_internal.h.
 */
#include "core/dns/dns_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_wire_ttl wt;
	struct sockaddr_storage ss;
	char str[DNS_NAME_MAX + 8], name[DNS_NAME_MAX + 1];
	size_t n;
	int len;

	if (dns_wire_ttls(data, size, &wt) == 0) {
		if ((wt.wt_has_answer && wt.wt_answer > 0x7fffffffu) ||
		    (wt.wt_has_soa && wt.wt_negative > 0x7fffffffu))
			abort();
	}

	n = size < sizeof(str) - 1 ? size : sizeof(str) - 1;
	memcpy(str, data, n);
	str[n] = '\0';
	len = dns_name_normalize(str, name);
	if (len >= 0 && (size_t)len != strlen(name))
		abort();
	(void)dns_name_parse_literal(str, &ss);
	return 0;
}
