/*
 * shp_rules_auto.c: automation rules (reply patterns -> actions) and the
 * health backoff: loading them, and matching a reply against them.
 *
 * What a pattern is matched against: the enhanced status code, one space,
 * then the reply text without its leading basic code ("421 " or "421-")
 * and without the enhanced code repeated at its start or at the start of
 * each continuation line. So the two-line reply
 *   421-4.7.28 Our system has detected an unusual rate of
 *   421 4.7.28 unsolicited mail originating from your IP address.
 * (ecode "4.7.28"; the engine hands its lines joined by spaces) is matched
 * as "4.7.28 Our system has detected an unusual rate of unsolicited mail
 * originating from your IP address.", and a reply without an enhanced code
 * as its bare text. Patterns
 * are PCRE2 (UTF, case-sensitive unless "(?i)", unanchored), JIT-compiled
 * when PCRE2 has a JIT for this machine. The basic code filters through
 * "code:" ("421", "4xx", "45x").
 *
 * A compiled pattern is read-only and shared; the match data is per
 * thread (one small block each, freed when the thread exits), so any
 * thread may call shp_rules_match() at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_rules_internal.h"
#include "core/shaping/shp_store.h"

static const uint64_t shp_backoff_default_s[] = { 60, 120, 300, 600, 1200, 1800 };

/* "3 in 10m" -> 3, 10 min; "once" / "at once" -> 1, 0. */
static bool shp_ld_trigger(struct shp_ld *ld, const struct yaml_node *v, struct shp_auto_rule *ar)
{
	struct yaml_node dur;
	const char *p, *in;
	char err[256], *end;
	unsigned long n;

	if (!shp_ld_want(ld, v, YAML_SCALAR, "trigger"))
		return false;
	if (strcmp(v->yn_str, "once") == 0 || strcmp(v->yn_str, "at once") == 0) {
		ar->ar_threshold = 1;
		ar->ar_window_us = 0;
		return true;
	}
	p = v->yn_str;
	in = strstr(p, " in ");
	n = strtoul(p, &end, 10);
	if (in == NULL || p[0] < '0' || p[0] > '9' || end != in || n == 0 || n > 1000000)
		goto bad;
	dur = *v;
	dur.yn_str = in + 4;
	while (*dur.yn_str == ' ')
		dur.yn_str++;
	dur.yn_len = strlen(dur.yn_str);
	if (yaml_scalar_duration(&dur, &ar->ar_window_us, err, sizeof(err)) < 0 ||
	    ar->ar_window_us == 0)
		goto bad;
	if (n > SHP_STORE_WINDOW_MAX) {
		shp_ld_err(ld, v, "trigger: at most %u events in a window can be counted,"
			   " found \"%s\"", SHP_STORE_WINDOW_MAX, v->yn_str);
		return false;
	}
	ar->ar_threshold = (unsigned)n;
	return true;
bad:
	shp_ld_err(ld, v, "trigger: expected \"N in DURATION\" (\"3 in 10m\") or \"once\","
		   " found \"%s\"", v->yn_str);
	return false;
}

static bool shp_ld_code(struct shp_ld *ld, const struct yaml_node *v, char code[4])
{
	const char *s = v->yn_str;

	if (v->yn_kind == YAML_SCALAR && v->yn_len == 3 && s[0] >= '2' && s[0] <= '5') {
		bool ok = true;

		for (unsigned i = 1; i < 3; i++)
			ok = ok && ((s[i] >= '0' && s[i] <= '9') || s[i] == 'x' || s[i] == 'X');
		if (ok) {
			for (unsigned i = 0; i < 3; i++)
				code[i] = s[i] == 'X' ? 'x' : s[i];
			code[3] = '\0';
			return true;
		}
	}
	shp_ld_err(ld, v, "code: expected a reply code like \"421\", \"4xx\" or \"45x\"");
	return false;
}

/* { value: 2, for: 30m } style action arguments. */
static bool shp_ld_act_args(struct shp_ld *ld, const char *act, const struct yaml_node *v,
			    const char *const *keys, const struct yaml_node **vals, unsigned nkeys)
{
	bool ok = true;

	if (!shp_ld_want(ld, v, YAML_MAP, act))
		return false;
	for (unsigned i = 0; i < v->yn_n; i++) {
		unsigned k;

		for (k = 0; k < nkeys; k++)
			if (strcmp(v->yn_keys[i]->yn_str, keys[k]) == 0)
				break;
		if (k == nkeys) {
			shp_ld_err(ld, v->yn_keys[i], "%s: unknown key \"%s\"", act,
				   v->yn_keys[i]->yn_str);
			ok = false;
		} else {
			vals[k] = v->yn_items[i];
		}
	}
	for (unsigned k = 0; k < nkeys; k++)
		if (vals[k] == NULL) {
			shp_ld_err(ld, v, "%s: \"%s\" is missing", act, keys[k]);
			ok = false;
		}
	return ok;
}

static bool shp_ld_dur(struct shp_ld *ld, const struct yaml_node *v, uint64_t *us_r)
{
	char err[256];

	if (yaml_scalar_duration(v, us_r, err, sizeof(err)) < 0) {
		shp_ld_err_msg(ld, err);
		return false;
	}
	return true;
}

static bool shp_ld_u32v(struct shp_ld *ld, const char *what, const struct yaml_node *v,
			uint32_t min, uint32_t *v_r)
{
	char err[256];
	uint64_t x;

	if (yaml_scalar_u64(v, &x, err, sizeof(err)) < 0 || x < min || x > UINT32_MAX) {
		shp_ld_err(ld, v, "%s: expected a whole number of at least %u", what, min);
		return false;
	}
	*v_r = (uint32_t)x;
	return true;
}

static bool shp_ld_action(struct shp_ld *ld, const struct yaml_node *m, struct shp_action *a)
{
	static const char *const vf[] = { "value", "for" }, *const rf[] = { "rate", "for" },
			  *const pf[] = { "pause", "step" };
	const struct yaml_node *k, *v, *args[2] = { NULL, NULL };

	if (!shp_ld_want(ld, m, YAML_MAP, "action") || m->yn_n != 1) {
		if (m->yn_kind == YAML_MAP)
			shp_ld_err(ld, m, "an action is a map of one key (suspend: 10m)");
		return false;
	}
	k = m->yn_keys[0];
	v = m->yn_items[0];
	memset(a, 0, sizeof(*a));
	if (strcmp(k->yn_str, "suspend") == 0) {
		a->sa_kind = SHP_ACT_SUSPEND;
		return shp_ld_dur(ld, v, &a->sa_duration_us);
	}
	if (strcmp(k->yn_str, "suspend_site") == 0) {
		a->sa_kind = SHP_ACT_SUSPEND_SITE;
		return shp_ld_dur(ld, v, &a->sa_duration_us);
	}
	if (strcmp(k->yn_str, "bounce") == 0) {
		a->sa_kind = SHP_ACT_BOUNCE;
		return shp_ld_dur(ld, v, &a->sa_duration_us);
	}
	if (strcmp(k->yn_str, "max_connections") == 0) {
		a->sa_kind = SHP_ACT_MAX_CONNECTIONS;
		return shp_ld_act_args(ld, k->yn_str, v, vf, args, 2) &&
		       shp_ld_u32v(ld, "max_connections: value", args[0], 1, &a->sa_value) &&
		       shp_ld_dur(ld, args[1], &a->sa_duration_us);
	}
	if (strcmp(k->yn_str, "message_rate") == 0) {
		a->sa_kind = SHP_ACT_MESSAGE_RATE;
		return shp_ld_act_args(ld, k->yn_str, v, rf, args, 2) &&
		       shp_rate_node(ld, k, args[0], &a->sa_rate) &&
		       shp_ld_dur(ld, args[1], &a->sa_duration_us);
	}
	if (strcmp(k->yn_str, "ramp") == 0) {
		a->sa_kind = SHP_ACT_RAMP;
		return shp_ld_act_args(ld, k->yn_str, v, pf, args, 2) &&
		       shp_ld_dur(ld, args[0], &a->sa_duration_us) &&
		       shp_ld_u32v(ld, "ramp: step", args[1], 1, &a->sa_value);
	}
	shp_ld_err(ld, k, "unknown action \"%s\" (expected suspend, suspend_site, max_connections,"
		   " message_rate, bounce or ramp)", k->yn_str);
	return false;
}

static bool shp_ld_pattern(struct shp_ld *ld, const struct yaml_node *v, struct shp_rule *ru)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	int code;

	if (!shp_ld_want(ld, v, YAML_SCALAR, "match"))
		return false;
	ru->ru_re = pcre2_compile((PCRE2_SPTR)v->yn_str, v->yn_len,
				  PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
	if (ru->ru_re == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		shp_ld_err(ld, v, "match: bad pattern at offset %zu: %s", (size_t)off, (char *)msg);
		return false;
	}
	(void)pcre2_jit_compile(ru->ru_re, PCRE2_JIT_COMPLETE);	/* no JIT: interpreted */
	return true;
}

static void shp_rule_free(struct shp_rule *ru)
{
	if (ru == NULL)
		return;
	pcre2_code_free(ru->ru_re);
	free(ru->ru_actions);
	free(ru);
}

/* The rule named name anywhere (its list and index), or NULL. */
static struct shp_rule *shp_rule_find(struct shp_rules *r, const char *name,
				      struct shp_rulelist **rl_r, unsigned *i_r)
{
	for (unsigned p = 0; p <= r->r_nprov; p++) {
		struct shp_rulelist *rl = p < r->r_nprov ? &r->r_prov[p]->pv_rules : &r->r_rules;

		for (unsigned i = 0; i < rl->rl_n; i++)
			if (strcmp(rl->rl_v[i]->ru_pub.ar_name, name) == 0) {
				*rl_r = rl;
				*i_r = i;
				return rl->rl_v[i];
			}
	}
	return NULL;
}

/* One rule map into a new struct shp_rule; NULL after errors. */
static struct shp_rule *shp_ld_rule(struct shp_ld *ld, const struct yaml_node *m,
				    const char *scope)
{
	const struct yaml_node *name = NULL, *match = NULL, *actions = NULL;
	struct shp_rule *ru = calloc(1, sizeof(*ru));
	unsigned nerr = ld->ld_nerr;

	if (ru == NULL) {
		shp_ld_err(ld, m, "out of memory");
		return NULL;
	}
	ru->ru_node = m;
	ru->ru_scope = scope;
	ru->ru_file = ld->ld_file;
	ru->ru_pub.ar_file = ld->ld_r->r_files[ld->ld_file];
	ru->ru_pub.ar_line = m->yn_line;
	ru->ru_pub.ar_threshold = 1;
	for (unsigned i = 0; i < m->yn_n; i++) {
		const struct yaml_node *k = m->yn_keys[i], *v = m->yn_items[i];

		if (strcmp(k->yn_str, "name") == 0) {
			if (shp_ld_name(ld, v, "automation rule"))
				name = v;
		} else if (strcmp(k->yn_str, "match") == 0) {
			match = v;
		} else if (strcmp(k->yn_str, "code") == 0) {
			shp_ld_code(ld, v, ru->ru_code);
		} else if (strcmp(k->yn_str, "trigger") == 0) {
			shp_ld_trigger(ld, v, &ru->ru_pub);
		} else if (strcmp(k->yn_str, "actions") == 0) {
			actions = v;
		} else if (strcmp(k->yn_str, "disabled") == 0) {
			char err[256];

			if (yaml_scalar_bool(v, &ru->ru_disabled, err, sizeof(err)) < 0)
				shp_ld_err_msg(ld, err);
		} else {
			shp_ld_err(ld, k, "unknown key \"%s\" in an automation rule (expected name,"
				   " match, code, trigger, actions or disabled)", k->yn_str);
		}
	}
	if (name != NULL)
		ru->ru_pub.ar_name = shp_ld_str(ld, name->yn_str);
	else if (yaml_map_get(m, "name") == NULL)	/* else a bad one, said already */
		shp_ld_err(ld, m, "an automation rule needs a name");
	if (match != NULL)
		shp_ld_pattern(ld, match, ru);
	else if (!ru->ru_disabled)
		shp_ld_err(ld, m, "automation rule %s: match is missing",
			   name ? name->yn_str : "?");
	if (actions != NULL && shp_ld_want(ld, actions, YAML_SEQ, "actions")) {
		ru->ru_actions = calloc(actions->yn_n, sizeof(*ru->ru_actions));
		for (unsigned i = 0; ru->ru_actions != NULL && i < actions->yn_n; i++)
			if (shp_ld_action(ld, actions->yn_items[i], &ru->ru_actions[ru->ru_pub.ar_nactions]))
				ru->ru_pub.ar_nactions++;
		ru->ru_pub.ar_actions = ru->ru_actions;
	} else if (actions == NULL && !ru->ru_disabled) {
		shp_ld_err(ld, m, "automation rule %s: actions are missing",
			   name ? name->yn_str : "?");
	}
	if (ld->ld_nerr != nerr) {
		shp_rule_free(ru);
		return NULL;
	}
	return ru;
}

void shp_ld_rules(struct shp_ld *ld, const struct yaml_node *list, struct shp_rulelist *rl,
		  const char *scope)
{
	for (unsigned i = 0; i < list->yn_n; i++) {
		const struct yaml_node *m = list->yn_items[i];
		struct shp_rulelist *orl;
		struct shp_rule *ru, *old;
		unsigned oi;

		if (!shp_ld_want(ld, m, YAML_MAP, "automation rule"))
			continue;
		ru = shp_ld_rule(ld, m, scope);
		if (ru == NULL)
			continue;
		old = shp_rule_find(ld->ld_r, ru->ru_pub.ar_name, &orl, &oi);
		if (old != NULL && (old->ru_file == ru->ru_file || orl != rl)) {
			shp_ld_err(ld, m, "automation rule name %s is already used (%s:%u%s%s)",
				   ru->ru_pub.ar_name, old->ru_pub.ar_file, old->ru_pub.ar_line,
				   old->ru_scope ? ", provider " : ", global",
				   old->ru_scope ? old->ru_scope : "");
			shp_rule_free(ru);
			continue;
		}
		if (old != NULL) {
			/* A later file's rule of the same name replaces it in place. */
			orl->rl_v[oi] = ru;
			shp_rule_free(old);
			continue;
		}
		if (!shp_ld_grow(ld, &rl->rl_v, rl->rl_n, &rl->rl_cap, sizeof(*rl->rl_v))) {
			shp_rule_free(ru);
			return;
		}
		rl->rl_v[rl->rl_n++] = ru;
	}
}

void shp_rulelist_free(struct shp_rulelist *rl)
{
	for (unsigned i = 0; i < rl->rl_n; i++)
		shp_rule_free(rl->rl_v[i]);
	free(rl->rl_v);
	memset(rl, 0, sizeof(*rl));
}

void shp_ld_health(struct shp_ld *ld, const struct yaml_node *map)
{
	struct shp_rules *r = ld->ld_r;

	for (unsigned i = 0; i < map->yn_n; i++) {
		const struct yaml_node *k = map->yn_keys[i], *v = map->yn_items[i];
		uint64_t *b;

		if (strcmp(k->yn_str, "backoff") != 0) {
			shp_ld_err(ld, k, "unknown key \"%s\" in health (expected backoff)", k->yn_str);
			continue;
		}
		if (!shp_ld_want(ld, v, YAML_SEQ, "backoff"))
			continue;
		if (v->yn_n == 0) {
			shp_ld_err(ld, v, "backoff: an empty list");
			continue;
		}
		b = calloc(v->yn_n, sizeof(*b));
		if (b == NULL) {
			shp_ld_err(ld, v, "out of memory");
			continue;
		}
		for (unsigned j = 0; j < v->yn_n; j++)
			if (shp_ld_dur(ld, v->yn_items[j], &b[j]) && b[j] == 0)
				shp_ld_err(ld, v->yn_items[j], "backoff: a zero duration");
		/* A later file's list replaces the earlier one. */
		free(r->r_backoff);
		r->r_backoff = b;
		r->r_nbackoff = v->yn_n;
	}
}

uint64_t shp_rules_health_backoff_us(const struct shp_rules *r, unsigned n)
{
	unsigned i = n > 0 ? n - 1 : 0;

	if (r->r_nbackoff == 0) {
		unsigned nd = sizeof(shp_backoff_default_s) / sizeof(shp_backoff_default_s[0]);

		return shp_backoff_default_s[i < nd ? i : nd - 1] * 1000000ull;
	}
	return r->r_backoff[i < r->r_nbackoff ? i : r->r_nbackoff - 1];
}

/* Per-thread match data, freed when the thread exits; one match context
 * for everyone (read-only once made, so threads may share it) that bounds
 * the work of one match: an operator's pattern that backtracks without
 * end ("(a+)+$") fails to match instead of stalling a delivery worker. */
#define SHP_MATCH_LIMIT 100000u
#define SHP_DEPTH_LIMIT 10000u

static pthread_key_t shp_md_key;
static pthread_once_t shp_md_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *shp_mctx;

static void shp_md_free(void *p)
{
	pcre2_match_data_free(p);
}

static void shp_md_init(void)
{
	(void)pthread_key_create(&shp_md_key, shp_md_free);
	shp_mctx = pcre2_match_context_create(NULL);
	if (shp_mctx != NULL) {
		pcre2_set_match_limit(shp_mctx, SHP_MATCH_LIMIT);
		pcre2_set_depth_limit(shp_mctx, SHP_DEPTH_LIMIT);
	}
}

static pcre2_match_data *shp_md(void)
{
	pcre2_match_data *md;

	pthread_once(&shp_md_once, shp_md_init);
	md = pthread_getspecific(shp_md_key);
	if (md == NULL) {
		md = pcre2_match_data_create(1, NULL);
		if (md != NULL && pthread_setspecific(shp_md_key, md) != 0) {
			pcre2_match_data_free(md);
			md = NULL;
		}
	}
	return md;
}

static bool shp_code_ok(const char *want, const char *code)
{
	if (want[0] == '\0')
		return true;
	if (code[0] == '\0')
		return false;
	for (unsigned i = 0; i < 3; i++)
		if (want[i] != 'x' && want[i] != code[i])
			return false;
	return true;
}

static unsigned shp_match_list(const struct shp_rulelist *rl, const char *code, PCRE2_SPTR subj,
			       size_t len, pcre2_match_data *md, const struct shp_auto_rule **out,
			       unsigned n, unsigned max)
{
	for (unsigned i = 0; i < rl->rl_n && n < max; i++) {
		const struct shp_rule *ru = rl->rl_v[i];

		if (ru->ru_disabled || ru->ru_re == NULL || !shp_code_ok(ru->ru_code, code))
			continue;
		if (pcre2_match(ru->ru_re, subj, len, 0, 0, md, shp_mctx) >= 0)
			out[n++] = &ru->ru_pub;
	}
	return n;
}

/* text into out without the enhanced code that starts each continuation
 * line of a multi-line reply (" 4.7.28 " where the lines were joined), so
 * that a pattern sees the sentence the receiver wrote. Returns the length
 * written (out has room for strlen(text) + 1). */
static size_t shp_subject_text(char *out, const char *text, const char *ecode, size_t el)
{
	size_t n = 0;

	while (*text != '\0') {
		if (el > 0 && text[0] == ' ' && strncmp(text + 1, ecode, el) == 0 &&
		    (text[el + 1] == ' ' || text[el + 1] == '\0')) {
			text += el + 1;
			continue;
		}
		out[n++] = *text++;
	}
	out[n] = '\0';
	return n;
}

unsigned shp_rules_match(const struct shp_rules *r, const struct shp_provider *p,
			 const char *ecode, const char *text,
			 const struct shp_auto_rule **out, unsigned max)
{
	char code[4] = "", stackbuf[1024], *subj = stackbuf;
	size_t el = ecode != NULL ? strlen(ecode) : 0, tl, len;
	pcre2_match_data *md = shp_md();
	unsigned n = 0;

	if (md == NULL || text == NULL)
		return 0;
	/* "421 " / "421-" off the front, then the enhanced code if repeated. */
	if (text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
	    text[2] >= '0' && text[2] <= '9' && (text[3] == ' ' || text[3] == '-' || !text[3])) {
		memcpy(code, text, 3);
		text += text[3] ? 4 : 3;
	}
	while (*text == ' ')
		text++;
	if (el > 0 && strncmp(text, ecode, el) == 0 && (text[el] == ' ' || text[el] == '\0'))
		text += el + (text[el] == ' ');
	tl = strlen(text);
	len = el + (el > 0) + tl;
	if (len + 1 > sizeof(stackbuf) && (subj = malloc(len + 1)) == NULL)
		return 0;
	if (el > 0) {
		memcpy(subj, ecode, el);
		subj[el] = ' ';
	}
	len = el + (el > 0) + shp_subject_text(subj + el + (el > 0), text, ecode, el);
	if (p != NULL)
		n = shp_match_list(&p->pv_rules, code, (PCRE2_SPTR)subj, len, md, out, n, max);
	n = shp_match_list(&r->r_rules, code, (PCRE2_SPTR)subj, len, md, out, n, max);
	if (subj != stackbuf)
		free(subj);
	return n;
}

static unsigned shp_list_append(const struct shp_rulelist *rl, const struct shp_auto_rule **out,
				unsigned n, unsigned max)
{
	for (unsigned i = 0; i < rl->rl_n && n < max; i++)
		if (!rl->rl_v[i]->ru_disabled)
			out[n++] = &rl->rl_v[i]->ru_pub;
	return n;
}

unsigned shp_rules_list(const struct shp_rules *r, const struct shp_provider *p,
			const struct shp_auto_rule **out, unsigned max)
{
	unsigned n = 0;

	if (p != NULL)
		n = shp_list_append(&p->pv_rules, out, n, max);
	return shp_list_append(&r->r_rules, out, n, max);
}
