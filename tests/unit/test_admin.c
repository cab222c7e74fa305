/*
 * test_admin: the admin API's route table (longest prefix, 404 vs 405,
 * prefixes end at '/') and its bearer tokens (file permissions, comments,
 * exact match only).
 */
#include "core/admin/admin_internal.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_marks[8];

static void test_h(void *ctx, const struct admin_req *req, struct admin_reply *rep)
{
	(void)req;
	(void)rep;
	(void)ctx;
}

static void test_router(void)
{
	struct admin_router ro = { .ro_n = 0 };
	const struct admin_route *rt;

	tap_ok(admin_router_add(&ro, "GET", "/api/v1/queue/messages", 0, 0, test_h,
				&test_marks[0]) == 0 &&
	       admin_router_add(&ro, "POST", "/api/v1/queue/hold/", 0, 0, test_h, &test_marks[1]) == 0 &&
	       admin_router_add(&ro, "GET", "/api/v1/queue", 0, 4096, test_h, &test_marks[2]) == 0 &&
	       admin_router_add(&ro, NULL, "/api/v1/any", 0, 0, test_h, &test_marks[3]) == 0 &&
	       admin_router_add(&ro, "DELETE", "/api/v1/queue/messages", 0, 0, test_h,
				&test_marks[4]) == 0,
	       "routes added");
	tap_ok(admin_router_add(&ro, "GET", "relative", 0, 0, test_h, NULL) != 0 &&
	       admin_router_add(&ro, "GET", "/x", 0, 0, NULL, NULL) != 0, "bad routes refused");
	tap_ok(admin_router_match(&ro, "GET", "/api/v1/queue/messages", &rt) == ADMIN_MATCH_OK &&
	       rt->rt_ctx == &test_marks[0], "exact path");
	tap_ok(admin_router_match(&ro, "GET", "/api/v1/queue/messages/00000000000000ab", &rt) ==
	       ADMIN_MATCH_OK && rt->rt_ctx == &test_marks[0] &&
	       strcmp("/api/v1/queue/messages/00000000000000ab" + rt->rt_prefix_len,
		      "/00000000000000ab") == 0, "longer path, rest after the prefix");
	tap_ok(admin_router_match(&ro, "DELETE", "/api/v1/queue/messages/1", &rt) ==
	       ADMIN_MATCH_OK && rt->rt_ctx == &test_marks[4], "same prefix, other method");
	tap_ok(admin_router_match(&ro, "POST", "/api/v1/queue/messages", &rt) ==
	       ADMIN_MATCH_NO_METHOD && rt == NULL,
	       "longest prefix decides: 405, no fall back to /api/v1/queue");
	tap_ok(admin_router_match(&ro, "GET", "/api/v1/queue/summary", &rt) == ADMIN_MATCH_OK &&
	       rt->rt_ctx == &test_marks[2] && rt->rt_body_max == 4096, "shorter prefix");
	tap_ok(admin_router_match(&ro, "POST", "/api/v1/queue/hold", &rt) == ADMIN_MATCH_OK &&
	       rt->rt_ctx == &test_marks[1] && rt->rt_body_max == ADMIN_BODY_MAX,
	       "a trailing '/' in the prefix is dropped; default body limit");
	tap_ok(admin_router_match(&ro, "GET", "/api/v1/queuex", &rt) == ADMIN_MATCH_NO_PATH &&
	       admin_router_match(&ro, "GET", "/api/v1/que", &rt) == ADMIN_MATCH_NO_PATH &&
	       admin_router_match(&ro, "GET", "/", &rt) == ADMIN_MATCH_NO_PATH &&
	       admin_router_match(&ro, "GET", "", &rt) == ADMIN_MATCH_NO_PATH,
	       "prefixes end at '/': 404");
	tap_ok(admin_router_match(&ro, "PATCH", "/api/v1/any/x", &rt) == ADMIN_MATCH_OK &&
	       rt->rt_ctx == &test_marks[3], "any method");
	for (unsigned i = ro.ro_n; i < ADMIN_ROUTES_MAX; i++)
		admin_router_add(&ro, "GET", "/f", 0, 0, test_h, NULL);
	tap_ok(admin_router_add(&ro, "GET", "/g", 0, 0, test_h, NULL) != 0, "table full");
}

static const char *test_file(const char *text, mode_t mode)
{
	static char path[256];
	const char *dir = getenv("TMPDIR");
	FILE *f;

	snprintf(path, sizeof(path), "%s/test_admin_tokens", dir != NULL ? dir : "/tmp");
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void test_tokens(void)
{
	struct admin_tokens t;
	char err[256];
	const char *p;

	memset(&t, 0, sizeof(t));
	tap_ok(admin_tokens_check(&t, NULL) && admin_tokens_check(&t, "junk"),
	       "no tokens: anything goes (loopback only, config_validate)");
	p = test_file("# comment\n\n  abc123  \r\nxyz\n", 0600);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) == 0 && t.at_n == 2, "two tokens");
	tap_ok(admin_tokens_check(&t, "Bearer abc123") && admin_tokens_check(&t, "bearer xyz") &&
	       admin_tokens_check(&t, "Bearer  xyz"), "good tokens pass");
	tap_ok(!admin_tokens_check(&t, NULL) && !admin_tokens_check(&t, "Bearer abc12") &&
	       !admin_tokens_check(&t, "Bearer abc1234") && !admin_tokens_check(&t, "abc123") &&
	       !admin_tokens_check(&t, "Bearer ") && !admin_tokens_check(&t, "Bearer # comment") &&
	       !admin_tokens_check(&t, "Basic abc123"), "bad ones do not");
	p = test_file("abc\n", 0640);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) < 0 && strstr(err, "0640") != NULL &&
	       t.at_n == 0, "group-readable refused: %s", err);
	p = test_file("abc\n", 0602);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) < 0, "world-writable refused");
	p = test_file("# none\n\n", 0600);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) < 0 && strstr(err, "no token") != NULL,
	       "empty refused: %s", err);
	p = test_file("a b\n", 0600);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) < 0, "a blank inside a token refused");
	unlink(p);
	tap_ok(admin_tokens_load(&t, p, err, sizeof(err)) < 0 && strstr(err, "No such") != NULL,
	       "missing file: %s", err);
}

int main(void)
{
	test_router();
	test_tokens();
	return tap_done();
}
