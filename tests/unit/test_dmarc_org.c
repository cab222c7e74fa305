/* test_dmarc_org.c: organizational domains and relaxed alignment. */
#include <string.h>

#include "core/dmarc/dmarc_org.h"
#include "tests/unit/tap.h"

static void org_is(const char *in, const char *want)
{
	char buf[256];
	int n = dmarc_org_domain(in, buf, sizeof(buf));

	tap_ok(n >= 0 && strcmp(buf, want) == 0, "org(%s) = %s (got %s)", in, want,
	       n >= 0 ? buf : "error");
}

int main(void)
{
	char small[4];

	dmarc_org_init();
	org_is("example.com", "example.com");
	org_is("mail.News.Example.COM", "example.com");
	org_is("a.b.example.co.uk", "example.co.uk");
	org_is("example.com.", "example.com");
	org_is("co.uk", "co.uk");			/* a public suffix: itself */
	org_is("foo.bar.github.io", "bar.github.io");	/* private suffix section */
	tap_ok(dmarc_org_domain("", small, sizeof(small)) < 0, "empty domain refused");
	tap_ok(dmarc_org_domain("example.com", small, sizeof(small)) < 0, "small buffer refused");
	tap_ok(dmarc_org_aligned("bounce.example.com", "news.example.com"), "subdomains align");
	tap_ok(dmarc_org_aligned("EXAMPLE.com", "example.COM"), "case-insensitive");
	tap_ok(!dmarc_org_aligned("example.com", "example.net"), "different orgs do not");
	tap_ok(!dmarc_org_aligned("a.co.uk", "b.co.uk"), "siblings under a public suffix do not");
	tap_ok(!dmarc_org_aligned("", "example.com"), "empty never aligns");
	return tap_done();
}
