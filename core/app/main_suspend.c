/*
 * main_suspend.c: `ringmta suspend|resume|suspensions|top`, the admin
 * API's suspensions and live per-site view from the command line, through
 * main_admin_call(). Human tables by default,
 * --json for scripts (the API's answer as it came); errors name what the
 * API said. `top` redraws every second like top(1) until interrupted;
 * --once prints one screen and exits.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/app/main.h"

static int msus_usage(void)
{
	fprintf(stderr,
		"usage: ringmta suspend --site S|--domain D|--source X|--sender-domain D"
		" --duration 2h [--reason TEXT] [--json]\n"
		"       ringmta resume --site S|--domain D|--source X|--sender-domain D [--json]\n"
		"       ringmta suspensions [--json]\n"
		"       ringmta top [--once] [--json] [--limit N]\n");
	return 2;
}

struct msus_args {
	const char *selector, *name;	/* the API's field and value */
	const char *duration, *reason;
	const char *limit;
	bool json, once;
};

static int msus_parse(const char *verb, int argc, char **argv, struct msus_args *a)
{
	static const char *const sel[][2] = {
		{ "--site", "site" }, { "--domain", "domain" }, { "--source", "source" },
		{ "--sender-domain", "sender_domain" },
	};

	memset(a, 0, sizeof(*a));
	for (int i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool known = false;

		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
			continue;
		}
		if (strcmp(argv[i], "--once") == 0 && strcmp(verb, "top") == 0) {
			a->once = true;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "ringmta: %s: %s needs a value\n", verb, argv[i]);
			return -1;
		}
		for (unsigned k = 0; k < sizeof(sel) / sizeof(sel[0]); k++) {
			if (strcmp(argv[i], sel[k][0]) != 0)
				continue;
			if (a->selector != NULL) {
				fprintf(stderr, "ringmta: %s: one of --site, --domain, --source,"
					" --sender-domain\n", verb);
				return -1;
			}
			a->selector = sel[k][1];
			a->name = v;
			known = true;
		}
		if (strcmp(argv[i], "--duration") == 0)
			a->duration = v, known = true;
		else if (strcmp(argv[i], "--reason") == 0)
			a->reason = v, known = true;
		else if (strcmp(argv[i], "--limit") == 0 && strcmp(verb, "top") == 0)
			a->limit = v, known = true;
		if (!known) {
			fprintf(stderr, "ringmta: %s: unknown argument '%s'\n", verb, argv[i]);
			return -1;
		}
		i++;
	}
	if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0) {
		if (a->selector == NULL) {
			fprintf(stderr, "ringmta: %s: one of --site, --domain, --source,"
				" --sender-domain\n", verb);
			return -1;
		}
		if ((strcmp(verb, "suspend") == 0) != (a->duration != NULL)) {
			fprintf(stderr, "ringmta: %s: %s\n", verb, a->duration == NULL ?
				"--duration is required (e.g. 2h)" : "--duration is for suspend");
			return -1;
		}
	} else if (a->selector != NULL || a->duration != NULL || a->reason != NULL) {
		fprintf(stderr, "ringmta: %s takes no selector\n", verb);
		return -1;
	}
	return 0;
}

/* The answer of one API call, or NULL after printing why (exit code 1). */
static json_t *msus_call(const struct config *cfg, const char *verb, const char *method,
			 const char *path, json_t *body)
{
	json_t *reply = NULL;
	char err[512];
	int status = main_admin_call(cfg, method, path, body, &reply, err, sizeof(err));

	json_decref(body);
	if (status < 0) {
		fprintf(stderr, "ringmta: %s: %s\n", verb, err);
		return NULL;
	}
	if (status >= 300) {
		const char *e = json_string_value(json_object_get(reply, "error"));
		const char *d = json_string_value(json_object_get(reply, "detail"));

		fprintf(stderr, "ringmta: %s: %s%s%s (HTTP %d)\n", verb, e ? e : "error",
			d ? ": " : "", d ? d : "", status);
		json_decref(reply);
		return NULL;
	}
	return reply;
}

static void msus_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

static const char *msus_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* "2h13m", "45s", "3d4h" from seconds. */
static void msus_span(long long s, char *out, size_t len)
{
	if (s >= 86400)
		snprintf(out, len, "%lldd%lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%lldm%llds", s / 60, s % 60);
	else
		snprintf(out, len, "%llds", s);
}

static void msus_print_susp(json_t *s, bool head)
{
	char left[32];

	if (head)
		printf("%-13s %-40s %-20s %-9s %-8s %s\n", "SELECTOR", "NAME", "UNTIL", "LEFT",
		       "WHO", "REASON");
	msus_span(json_integer_value(json_object_get(s, "remaining_s")), left, sizeof(left));
	printf("%-13s %-40s %-20s %-9s %-8s %s\n", msus_str(s, "selector"), msus_str(s, "name"),
	       msus_str(s, "until"), left, msus_str(s, "who"), msus_str(s, "reason"));
}

static int msus_suspend(const struct config *cfg, const char *verb, const struct msus_args *a)
{
	bool suspend = strcmp(verb, "suspend") == 0;
	json_t *body = json_pack("{s:s}", a->selector, a->name), *r;

	if (suspend) {
		json_object_set_new(body, "duration", json_string(a->duration));
		if (a->reason != NULL)
			json_object_set_new(body, "reason", json_string(a->reason));
	}
	r = msus_call(cfg, verb, "POST", suspend ? "/api/v1/suspend" : "/api/v1/resume", body);
	if (r == NULL)
		return 1;
	if (a->json)
		msus_print_json(r);
	else if (suspend)
		msus_print_susp(json_object_get(r, "suspended"), true);
	else
		printf("resumed %s %s: %lld messages due now\n", a->selector, a->name,
		       (long long)json_integer_value(json_object_get(r, "messages_due_now")));
	json_decref(r);
	return 0;
}

static int msus_list(const struct config *cfg, const struct msus_args *a)
{
	json_t *r = msus_call(cfg, "suspensions", "GET", "/api/v1/suspensions", NULL), *s;
	size_t i;

	if (r == NULL)
		return 1;
	if (a->json) {
		msus_print_json(r);
	} else if (json_array_size(json_object_get(r, "suspensions")) == 0) {
		printf("no suspensions\n");
	} else {
		json_array_foreach(json_object_get(r, "suspensions"), i, s)
			msus_print_susp(s, i == 0);
	}
	json_decref(r);
	return 0;
}

/* One screen of top from the API's answer. */
static void msus_top_screen(json_t *r)
{
	json_t *sites = json_object_get(r, "sites"), *s;
	time_t now = time(NULL);
	struct tm tm;
	char when[32];
	size_t i;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("ringmta top - %s - %lld sites, %zu shown; rates over the last %llds\n\n", when,
	       (long long)json_integer_value(json_object_get(r, "total_sites")),
	       json_array_size(sites),
	       (long long)json_integer_value(json_object_get(r, "window_s")));
	printf("%-44s %7s %6s %8s %8s %9s  %s\n", "SITE", "READY", "CONNS", "INFLIGHT", "RATE/s",
	       "DEFERRED", "SUSPENDED");
	json_array_foreach(sites, i, s) {
		char susp[300] = "-";

		if (json_is_true(json_object_get(s, "suspended")))
			snprintf(susp, sizeof(susp), "until %s (%s)", msus_str(s, "suspended_until"),
				 msus_str(s, "why"));
		printf("%-44s %7lld %6lld %8lld %8.2f %9lld  %s\n", msus_str(s, "site"),
		       (long long)json_integer_value(json_object_get(s, "ready")),
		       (long long)json_integer_value(json_object_get(s, "connections")),
		       (long long)json_integer_value(json_object_get(s, "in_flight")),
		       json_real_value(json_object_get(s, "rate_per_s")),
		       (long long)json_integer_value(json_object_get(s, "deferred")), susp);
	}
	if (json_array_size(sites) == 0)
		printf("(no site has mail moving)\n");
}

static int msus_top(const struct config *cfg, const struct msus_args *a)
{
	char path[64];
	char *end;
	unsigned long n = a->limit != NULL ? strtoul(a->limit, &end, 10) : 20;

	if (a->limit != NULL && (*end != '\0' || n == 0 || n > 1000)) {
		fprintf(stderr, "ringmta: top: --limit: 1 to 1000\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/top?limit=%lu", n);
	for (;;) {
		json_t *r = msus_call(cfg, "top", "GET", path, NULL);

		if (r == NULL)
			return 1;
		if (a->json) {
			msus_print_json(r);
		} else {
			if (!a->once)
				printf("\033[H\033[2J");	/* home, clear: redraw in place */
			msus_top_screen(r);
		}
		json_decref(r);
		fflush(stdout);
		if (a->once)
			return 0;
		sleep(1);
	}
}

int main_suspend(const struct config *cfg, const char *verb, int argc, char **argv)
{
	struct msus_args a;

	if (msus_parse(verb, argc, argv, &a) < 0)
		return msus_usage();
	if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0)
		return msus_suspend(cfg, verb, &a);
	if (strcmp(verb, "suspensions") == 0)
		return msus_list(cfg, &a);
	return msus_top(cfg, &a);
}
