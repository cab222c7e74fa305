/*
 * bclass_rules.c: loading the bounce class rules (YAML via yaml_tree,
 * patterns via PCRE2), matching a reply against them, and the
 * process-wide current set that SIGHUP replaces. See bclass_rules.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/bounce/bclass_rules.h"
#include "core/bounce/bclass.h"
#include "core/base/yaml_tree.h"

#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCR_STATUS_MAX 16u		/* statuses in one rule */

struct bclass_rule {
	uint8_t bru_class;
	uint16_t bru_code;		/* 0 any; 4, 5: that class; else exact */
	unsigned bru_nstatus;
	char bru_status[BCR_STATUS_MAX][16];	/* exact, or prefix ending in '.' or '*' */
	pcre2_code *bru_re;		/* NULL: no pattern */
	char bru_where[96];		/* "file:line" */
};

struct bclass_rules {
	atomic_uint brs_refs;
	struct bclass_rule *brs_rules;
	unsigned brs_n, brs_cap;
};

int bclass_rules_new(struct bclass_rules **r_r)
{
	struct bclass_rules *r = calloc(1, sizeof(*r));

	*r_r = r;
	if (r == NULL)
		return -ENOMEM;
	atomic_init(&r->brs_refs, 1);
	return 0;
}

unsigned bclass_rules_count(const struct bclass_rules *r)
{
	return r ? r->brs_n : 0;
}

struct bclass_rules *bclass_rules_ref(struct bclass_rules *r)
{
	if (r != NULL)
		atomic_fetch_add(&r->brs_refs, 1);
	return r;
}

void bclass_rules_unref(struct bclass_rules **rp)
{
	struct bclass_rules *r = *rp;

	*rp = NULL;
	if (r == NULL || atomic_fetch_sub(&r->brs_refs, 1) != 1)
		return;
	for (unsigned i = 0; i < r->brs_n; i++)
		pcre2_code_free(r->brs_rules[i].bru_re);
	free(r->brs_rules);
	free(r);
}

/* "5.1.1", a prefix by parts "5.1." / "5.", or by characters "5.7.6*":
 * digits and dots, class 2/4/5. */
static bool bcr_status_ok(const char *s, size_t len)
{
	bool dot = true;
	unsigned ndots = 0;

	if (len == 0 || len >= sizeof(((struct bclass_rule *)0)->bru_status[0]))
		return false;	/* with its "*", it must fit a status slot */
	if (len > 2 && s[len - 1] == '*' && s[len - 2] != '.')
		len--;		/* "4.7.6*": any status that starts "4.7.6" */
	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (dot || ++ndots > 2)
				return false;	/* ".." or leading '.' */
			dot = true;
		} else if (s[i] >= '0' && s[i] <= '9') {
			dot = false;
		} else {
			return false;
		}
	}
	return dot || ndots == 2 || s[len] == '*';	/* a prefix, or x.y.z */
}

static int bcr_add_status(struct bclass_rule *ru, const struct yaml_node *n, char *err,
			  size_t errlen)
{
	if (n->yn_kind != YAML_SCALAR || !bcr_status_ok(n->yn_str, n->yn_len)) {
		yaml_error(n, err, errlen, "status: expected an enhanced status code such as"
			   " 5.1.1, or a prefix such as \"5.7.\"");
		return -1;
	}
	if (ru->bru_nstatus == BCR_STATUS_MAX) {
		yaml_error(n, err, errlen, "status: at most %u codes in one rule", BCR_STATUS_MAX);
		return -1;
	}
	memcpy(ru->bru_status[ru->bru_nstatus++], n->yn_str, n->yn_len + 1);
	return 0;
}

/* "4xx", "5xx" or a code 200..599. */
static int bcr_code(struct bclass_rule *ru, const struct yaml_node *n, char *err,
		    size_t errlen)
{
	const char *s = n->yn_str;

	if (n->yn_kind == YAML_SCALAR && n->yn_len == 3 && (s[0] == '4' || s[0] == '5') &&
	    (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
		ru->bru_code = (uint16_t)(s[0] - '0');
		return 0;
	}
	if (n->yn_kind == YAML_SCALAR && n->yn_len == 3 && s[0] >= '2' && s[0] <= '5' &&
	    s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9') {
		ru->bru_code = (uint16_t)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
		return 0;
	}
	yaml_error(n, err, errlen, "code: expected 4xx, 5xx or a reply code such as 550");
	return -1;
}

static int bcr_pattern(struct bclass_rule *ru, const struct yaml_node *n, char *err,
		       size_t errlen)
{
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	int ec;

	if (n->yn_kind != YAML_SCALAR || n->yn_len == 0) {
		yaml_error(n, err, errlen, "reply: expected a regular expression (PCRE2)");
		return -1;
	}
	ru->bru_re = pcre2_compile((PCRE2_SPTR)n->yn_str, n->yn_len, PCRE2_CASELESS, &ec, &off,
				   NULL);
	if (ru->bru_re == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		yaml_error(n, err, errlen, "reply: bad regular expression at offset %zu: %s",
			   (size_t)off, (const char *)msg);
		return -1;
	}
	/* JIT where the platform has it; the interpreter otherwise. */
	(void)pcre2_jit_compile(ru->bru_re, PCRE2_JIT_COMPLETE);
	return 0;
}

/* One item of "rules:" into *ru. */
static int bcr_rule(struct bclass_rule *ru, const struct yaml_node *n, char *err,
		    size_t errlen)
{
	const struct yaml_node *cls = NULL;
	int c;

	memset(ru, 0, sizeof(*ru));
	if (n->yn_kind != YAML_MAP) {
		yaml_error(n, err, errlen, "a rule is a map (class, status, reply, code)");
		return -1;
	}
	snprintf(ru->bru_where, sizeof(ru->bru_where), "%s:%u", n->yn_file, n->yn_line);
	for (unsigned i = 0; i < n->yn_n; i++) {
		const struct yaml_node *k = n->yn_keys[i], *v = n->yn_items[i];
		int rc = 0;

		if (strcmp(k->yn_str, "class") == 0) {
			cls = v;
		} else if (strcmp(k->yn_str, "status") == 0 && v->yn_kind == YAML_SEQ) {
			for (unsigned j = 0; j < v->yn_n && rc == 0; j++)
				rc = bcr_add_status(ru, v->yn_items[j], err, errlen);
		} else if (strcmp(k->yn_str, "status") == 0) {
			rc = bcr_add_status(ru, v, err, errlen);
		} else if (strcmp(k->yn_str, "reply") == 0) {
			rc = bcr_pattern(ru, v, err, errlen);
		} else if (strcmp(k->yn_str, "code") == 0) {
			rc = bcr_code(ru, v, err, errlen);
		} else {
			yaml_error(k, err, errlen, "unknown key '%s' (class, status, reply, code)",
				   k->yn_str);
			rc = -1;
		}
		if (rc < 0) {
			pcre2_code_free(ru->bru_re);
			ru->bru_re = NULL;
			return -1;
		}
	}
	if (cls == NULL || cls->yn_kind != YAML_SCALAR ||
	    (c = bclass_parse(cls->yn_str, cls->yn_len)) < 0) {
		const struct yaml_node *at = cls ? cls : n;

		yaml_error(at, err, errlen, cls ? "class: unknown class '%s'" :
			   "a rule needs a class%s", cls && cls->yn_kind == YAML_SCALAR ?
			   cls->yn_str : "");
		pcre2_code_free(ru->bru_re);
		ru->bru_re = NULL;
		return -1;
	}
	ru->bru_class = (uint8_t)c;
	if (ru->bru_nstatus == 0 && ru->bru_re == NULL) {
		yaml_error(n, err, errlen, "a rule needs status or reply (or both)");
		return -1;
	}
	return 0;
}

/* Append one error line (no newline in it) to the errors so far in err:
 * "--check" and a refused start or reload report every problem of every
 * file, not only the first. A line that does not fit is left out. */
static void bcr_err_append(char *err, size_t errlen, const char *line)
{
	size_t have = strnlen(err, errlen), n = strlen(line);

	if (have > 0 && have + 1 + n < errlen) {
		err[have] = '\n';
		memcpy(err + have + 1, line, n + 1);
	} else if (have == 0 && n < errlen) {
		memcpy(err, line, n + 1);
	}
}

/* The rules of one tree, all or nothing: every bad rule is reported
 * (appended to err), and none of the tree's rules is kept then. */
static int bcr_add_tree(struct bclass_rules *r, const struct yaml_tree *t, char *err,
			size_t errlen)
{
	const struct yaml_node *root = t->yt_root, *list;
	unsigned base = r->brs_n;
	char one[512];
	bool bad = false;

	if (root == NULL)
		return 0;	/* an empty file adds nothing */
	if (root->yn_kind != YAML_MAP || (list = yaml_map_get(root, "rules")) == NULL ||
	    list->yn_kind != YAML_SEQ || root->yn_n != 1) {
		yaml_error(root, one, sizeof(one), "expected one key, \"rules:\", holding a"
			   " list of rules");
		bcr_err_append(err, errlen, one);
		return -1;
	}
	for (unsigned i = 0; i < list->yn_n; i++) {
		if (r->brs_n == r->brs_cap) {
			unsigned cap = r->brs_cap ? r->brs_cap * 2 : 64;
			struct bclass_rule *nr = realloc(r->brs_rules, cap * sizeof(*nr));

			if (nr == NULL) {
				snprintf(one, sizeof(one), "%s: out of memory", t->yt_file);
				bcr_err_append(err, errlen, one);
				goto fail;
			}
			r->brs_rules = nr;
			r->brs_cap = cap;
		}
		if (bcr_rule(&r->brs_rules[r->brs_n], list->yn_items[i], one, sizeof(one)) < 0) {
			bcr_err_append(err, errlen, one);
			bad = true;
			continue;
		}
		r->brs_n++;
	}
	if (!bad)
		return 0;
fail:
	while (r->brs_n > base)
		pcre2_code_free(r->brs_rules[--r->brs_n].bru_re);
	return -1;
}

/* bclass_rules_add_text/_file, their errors appended to those in err. */
static int bcr_add_text(struct bclass_rules *r, const char *name, const void *buf, size_t len,
			char *err, size_t errlen)
{
	struct yaml_tree *t;
	int rc;

	char one[512];

	if (yaml_tree_parse(&t, name, buf, len, one, sizeof(one)) < 0) {
		bcr_err_append(err, errlen, one);
		return -1;
	}
	rc = bcr_add_tree(r, t, err, errlen);
	yaml_tree_free(&t);
	return rc;
}

static int bcr_add_file(struct bclass_rules *r, const char *path, char *err, size_t errlen)
{
	struct yaml_tree *t;
	int rc;

	char one[512];

	if (yaml_tree_load(&t, path, one, sizeof(one)) < 0) {
		bcr_err_append(err, errlen, one);
		return -1;
	}
	rc = bcr_add_tree(r, t, err, errlen);
	yaml_tree_free(&t);
	return rc;
}

int bclass_rules_add_text(struct bclass_rules *r, const char *name, const void *buf,
			  size_t len, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	return bcr_add_text(r, name, buf, len, err, errlen);
}

int bclass_rules_add_file(struct bclass_rules *r, const char *path, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	return bcr_add_file(r, path, err, errlen);
}

int bclass_rules_add_builtin(struct bclass_rules *r, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	return bcr_add_text(r, "(built-in) conf/bounce-classes.yaml", bclass_builtin_yaml,
			    bclass_builtin_yaml_len, err, errlen);
}

int bclass_rules_load(struct bclass_rules **r_r, const char *files, char *err, size_t errlen)
{
	const char *p = files ? files : "";
	char path[4096];
	bool bad = false;

	if (errlen > 0)
		err[0] = '\0';
	if (bclass_rules_new(r_r) < 0) {
		snprintf(err, errlen, "bounce class rules: out of memory");
		return -1;
	}
	while (*p != '\0') {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n == 0)
			break;
		if (n >= sizeof(path)) {
			bcr_err_append(err, errlen, "bounce_class_rules: a path is too long");
			bad = true;
			p += n;
			continue;
		}
		memcpy(path, p, n);
		path[n] = '\0';
		p += n;
		if (bcr_add_file(*r_r, path, err, errlen) < 0)
			bad = true;	/* go on: report the other files' errors too */
	}
	if (bcr_add_text(*r_r, "(built-in) conf/bounce-classes.yaml", bclass_builtin_yaml,
			 bclass_builtin_yaml_len, err, errlen) == 0 && !bad)
		return 0;
	bclass_rules_unref(r_r);
	return -1;
}

static bool bcr_status_match(const struct bclass_rule *ru, const char *status)
{
	size_t sl = strlen(status);

	if (ru->bru_nstatus == 0)
		return true;
	for (unsigned i = 0; i < ru->bru_nstatus; i++) {
		const char *want = ru->bru_status[i];
		size_t wl = strlen(want);

		if (want[wl - 1] == '*' ? sl >= wl - 1 && memcmp(status, want, wl - 1) == 0 :
		    want[wl - 1] == '.' ? sl > wl && memcmp(status, want, wl) == 0 :
		    sl == wl && memcmp(status, want, wl) == 0)
			return true;
	}
	return false;
}

/* One match context for every thread (read-only once made) that bounds
 * the work of one match, as the shaping rules do: an operator's pattern
 * that backtracks without end ("(a+)+$") fails to match instead of
 * stalling a delivery worker on each failed recipient. */
#define BCR_MATCH_LIMIT 100000u
#define BCR_DEPTH_LIMIT 10000u

static pthread_once_t bcr_mctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *bcr_mctx;

static void bcr_mctx_init(void)
{
	bcr_mctx = pcre2_match_context_create(NULL);
	if (bcr_mctx != NULL) {
		pcre2_set_match_limit(bcr_mctx, BCR_MATCH_LIMIT);
		pcre2_set_depth_limit(bcr_mctx, BCR_DEPTH_LIMIT);
	}
}

unsigned bclass_rules_match(const struct bclass_rules *r, const struct bclass_reply *in,
			    const char **where_r)
{
	pcre2_match_data *md = NULL;
	unsigned found = BCLASS_NONE;

	pthread_once(&bcr_mctx_once, bcr_mctx_init);

	for (unsigned i = 0; r != NULL && i < r->brs_n && found == BCLASS_NONE; i++) {
		const struct bclass_rule *ru = &r->brs_rules[i];

		if (ru->bru_code != 0 && (ru->bru_code < 10 ? in->br_code / 100 != ru->bru_code :
					  in->br_code != ru->bru_code))
			continue;
		if (!bcr_status_match(ru, in->br_status))
			continue;
		if (ru->bru_re != NULL) {
			if (md == NULL && (md = pcre2_match_data_create(1, NULL)) == NULL)
				break;
			/* 0: matched, ovector too small for groups: fine. Past
			 * the bound (PCRE2_ERROR_MATCHLIMIT): no match. */
			if (pcre2_match(ru->bru_re, (PCRE2_SPTR)in->br_text, in->br_len, 0, 0, md,
					bcr_mctx) < 0)
				continue;
		}
		found = ru->bru_class;
		if (where_r != NULL)
			*where_r = ru->bru_where;
	}
	pcre2_match_data_free(md);
	return found;
}

static pthread_mutex_t bcr_current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bclass_rules *bcr_current;

void bclass_current_set(struct bclass_rules *r)
{
	struct bclass_rules *old;

	pthread_mutex_lock(&bcr_current_lock);
	old = bcr_current;
	bcr_current = r;
	pthread_mutex_unlock(&bcr_current_lock);
	bclass_rules_unref(&old);
}

unsigned bclass_classify(const char *reply, const char *ecode, bool failed)
{
	struct bclass_rules *r;
	struct bclass_reply in;
	char buf[1024];
	unsigned c;

	pthread_mutex_lock(&bcr_current_lock);
	r = bclass_rules_ref(bcr_current);
	pthread_mutex_unlock(&bcr_current_lock);
	bclass_reply_init(&in, reply, ecode, failed, buf, sizeof(buf));
	c = bclass_rules_match(r, &in, NULL);
	bclass_rules_unref(&r);
	return c != BCLASS_NONE ? c : BCLASS_OTHER;
}
