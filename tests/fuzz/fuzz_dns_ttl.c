/*
 * fuzz_dns_ttl: the bounds-checked parts of core/dns.c that read
 * untrusted bytes: the DNS answer walker (dns_wire_ttls, fed raw server
 * replies) and the domain and address-literal checks (fed recipient
 * domains). They are static, so the file is included; the target links
 * with c-ares and io/loop like dns.c itself.
 */
#include "core/dns.c"

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
	len = dns_normalize(str, name);
	if (len >= 0 && (size_t)len != strlen(name))
		abort();
	(void)dns_parse_literal(str, &ss);
	return 0;
}
