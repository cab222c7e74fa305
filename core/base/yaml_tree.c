/*
 * yaml_tree.c: see yaml_tree.h. libyaml's event parser builds the tree
 * node by node; a stack of open collections (at most YAML_TREE_MAX_DEPTH)
 * receives each finished node. Every node and string is a separate
 * allocation freed by a walk of the tree (its depth is bounded, so the
 * walk's recursion is too).
 */
#include "core/base/yaml_tree.h"
#include "core/base/decimal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A collection being filled: items (and, for a map, keys) grow here. */
struct yt_open {
	struct yaml_node *yo_node;
	unsigned yo_cap;
	struct yaml_node *yo_key;	/* MAP: key waiting for its value */
};

struct yt_build {
	const char *yb_file;
	struct yt_open yb_stack[YAML_TREE_MAX_DEPTH];
	unsigned yb_depth;
	struct yaml_node *yb_root;
	unsigned yb_docs;
	char *yb_err;
	size_t yb_errlen;
};

static void yt_node_free(struct yaml_node *n)
{
	if (n == NULL)
		return;
	if (n->yn_kind == YAML_SCALAR) {
		free((char *)n->yn_str);
	} else {
		for (unsigned i = 0; i < n->yn_n; i++) {
			if (n->yn_keys != NULL)
				yt_node_free(n->yn_keys[i]);
			yt_node_free(n->yn_items[i]);
		}
		free(n->yn_keys);
		free(n->yn_items);
	}
	free(n);
}

/* Messages quote values, which may hold line breaks (a quoted "\n", a
 * block scalar) or other control characters: a message stays one line
 * (one log line, one line of --check), so they become blanks. */
static void yt_one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void yaml_error(const struct yaml_node *n, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (err == NULL || errlen == 0)
		return;
	k = snprintf(err, errlen, "%s:%u: ", n != NULL ? n->yn_file : "?", n != NULL ? n->yn_line : 0);
	if (k < 0 || (size_t)k >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
	va_end(ap);
	yt_one_line(err);
}

static int yt_fail(struct yt_build *b, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int yt_fail(struct yt_build *b, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int k;

	k = snprintf(b->yb_err, b->yb_errlen, "%s:%u: ", b->yb_file, line);
	if (k >= 0 && (size_t)k < b->yb_errlen) {
		va_start(ap, fmt);
		vsnprintf(b->yb_err + k, b->yb_errlen - (size_t)k, fmt, ap);
		va_end(ap);
	}
	if (b->yb_err != NULL && b->yb_errlen > 0)
		yt_one_line(b->yb_err);
	return -1;
}

static struct yaml_node *yt_node_new(struct yt_build *b, enum yaml_kind kind, const yaml_event_t *ev)
{
	struct yaml_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->yn_kind = (uint8_t)kind;
	n->yn_line = (unsigned)ev->start_mark.line + 1;
	n->yn_file = b->yb_file;
	return n;
}

static int yt_key_cmp(const void *a, const void *b)
{
	const struct yaml_node *x = *(const struct yaml_node *const *)a;
	const struct yaml_node *y = *(const struct yaml_node *const *)b;

	if (x->yn_len != y->yn_len)
		return x->yn_len < y->yn_len ? -1 : 1;
	return memcmp(x->yn_str, y->yn_str, x->yn_len);
}

/* A map is complete: refuse a key given twice (sorted copy, so a large
 * "domains:" map costs n log n, not n squared). */
static int yt_map_check_dups(struct yt_build *b, const struct yaml_node *m)
{
	struct yaml_node **k;
	int rc = 0;

	if (m->yn_n < 2)
		return 0;
	k = malloc(m->yn_n * sizeof(*k));
	if (k == NULL)
		return yt_fail(b, m->yn_line, "out of memory");
	memcpy(k, m->yn_keys, m->yn_n * sizeof(*k));
	qsort(k, m->yn_n, sizeof(*k), yt_key_cmp);
	for (unsigned i = 1; i < m->yn_n; i++) {
		if (yt_key_cmp(&k[i - 1], &k[i]) == 0) {
			const struct yaml_node *later =
				k[i]->yn_line >= k[i - 1]->yn_line ? k[i] : k[i - 1];
			const struct yaml_node *first = later == k[i] ? k[i - 1] : k[i];

			rc = yt_fail(b, later->yn_line, "duplicate key \"%s\" (first at line %u)",
				     later->yn_str, first->yn_line);
			break;
		}
	}
	free(k);
	return rc;
}

/* Hand a finished node to the open collection (or make it the root).
 * Takes ownership of n in every case. */
static int yt_attach(struct yt_build *b, struct yaml_node *n)
{
	struct yt_open *o;
	struct yaml_node *c;

	if (b->yb_depth == 0) {
		b->yb_root = n;
		return 0;
	}
	o = &b->yb_stack[b->yb_depth - 1];
	c = o->yo_node;
	if (c->yn_kind == YAML_MAP && o->yo_key == NULL) {
		if (n->yn_kind != YAML_SCALAR) {
			unsigned line = n->yn_line;

			yt_node_free(n);
			return yt_fail(b, line, "a map key must be a plain value");
		}
		o->yo_key = n;
		return 0;
	}
	if (c->yn_n == o->yo_cap) {
		unsigned cap = o->yo_cap ? o->yo_cap * 2 : 4;
		struct yaml_node **it = realloc(c->yn_items, cap * sizeof(*it));

		if (it != NULL)
			c->yn_items = it;
		if (it != NULL && c->yn_kind == YAML_MAP) {
			struct yaml_node **k = realloc(c->yn_keys, cap * sizeof(*k));

			if (k == NULL)
				it = NULL;
			else
				c->yn_keys = k;
		}
		if (it == NULL) {
			yt_node_free(n);
			return yt_fail(b, c->yn_line, "out of memory");
		}
		o->yo_cap = cap;
	}
	if (c->yn_kind == YAML_MAP) {
		c->yn_keys[c->yn_n] = o->yo_key;
		o->yo_key = NULL;
	}
	c->yn_items[c->yn_n++] = n;
	return 0;
}

static int yt_open(struct yt_build *b, enum yaml_kind kind, const yaml_event_t *ev)
{
	struct yaml_node *n;

	if (b->yb_depth == YAML_TREE_MAX_DEPTH)
		return yt_fail(b, (unsigned)ev->start_mark.line + 1,
			       "nested deeper than %u levels", YAML_TREE_MAX_DEPTH);
	n = yt_node_new(b, kind, ev);
	if (n == NULL)
		return yt_fail(b, (unsigned)ev->start_mark.line + 1, "out of memory");
	b->yb_stack[b->yb_depth++] = (struct yt_open){ .yo_node = n };
	return 0;
}

static int yt_close(struct yt_build *b)
{
	struct yt_open *o = &b->yb_stack[--b->yb_depth];
	struct yaml_node *n = o->yo_node;

	yt_node_free(o->yo_key);	/* only set when libyaml misbehaves */
	o->yo_key = NULL;
	if (n->yn_kind == YAML_MAP && yt_map_check_dups(b, n) < 0) {
		yt_node_free(n);
		return -1;
	}
	return yt_attach(b, n);
}

static int yt_scalar(struct yt_build *b, const yaml_event_t *ev)
{
	struct yaml_node *n = yt_node_new(b, YAML_SCALAR, ev);
	char *s;

	if (n == NULL)
		return yt_fail(b, (unsigned)ev->start_mark.line + 1, "out of memory");
	s = malloc(ev->data.scalar.length + 1);
	if (s == NULL) {
		free(n);
		return yt_fail(b, (unsigned)ev->start_mark.line + 1, "out of memory");
	}
	memcpy(s, ev->data.scalar.value, ev->data.scalar.length);
	s[ev->data.scalar.length] = '\0';
	if (memchr(s, '\0', ev->data.scalar.length) != NULL) {
		free(s);
		free(n);
		return yt_fail(b, (unsigned)ev->start_mark.line + 1, "a value holds a NUL character");
	}
	n->yn_str = s;
	n->yn_len = ev->data.scalar.length;
	n->yn_quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	return yt_attach(b, n);
}

/* One event; returns 1 at the end of the stream, 0 to go on, -1 on error. */
static int yt_event(struct yt_build *b, const yaml_event_t *ev)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;

	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (++b->yb_docs > 1)
			return yt_fail(b, line, "more than one YAML document in the file");
		return 0;
	case YAML_ALIAS_EVENT:
		return yt_fail(b, line, "aliases (*%s) are not allowed in rules files",
			       (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor != NULL)
			return yt_fail(b, line, "anchors (&%s) are not allowed in rules files",
				       (const char *)ev->data.scalar.anchor);
		return yt_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		if (ev->data.sequence_start.anchor != NULL)
			return yt_fail(b, line, "anchors (&%s) are not allowed in rules files",
				       (const char *)ev->data.sequence_start.anchor);
		return yt_open(b, YAML_SEQ, ev);
	case YAML_MAPPING_START_EVENT:
		if (ev->data.mapping_start.anchor != NULL)
			return yt_fail(b, line, "anchors (&%s) are not allowed in rules files",
				       (const char *)ev->data.mapping_start.anchor);
		return yt_open(b, YAML_MAP, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->yb_depth == 0)
			return yt_fail(b, line, "unbalanced collection end");
		return yt_close(b);
	default:
		return 0;
	}
}

int yaml_tree_parse(struct yaml_tree **t_r, const char *name, const void *buf, size_t len,
		    char *err, size_t errlen)
{
	struct yt_build b = { .yb_err = err, .yb_errlen = errlen };
	struct yaml_tree *t;
	yaml_parser_t p;
	int rc = 0;

	*t_r = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->yt_file = strdup(name)) == NULL) {
		free(t);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	b.yb_file = t->yt_file;
	if (len > YAML_TREE_MAX_BYTES) {
		yt_fail(&b, 0, "larger than %u bytes", YAML_TREE_MAX_BYTES);
		yaml_tree_free(&t);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		yt_fail(&b, 0, "out of memory");
		yaml_tree_free(&t);
		return -1;
	}
	yaml_parser_set_input_string(&p, buf, len);
	while (rc == 0) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&p, &ev)) {
			if (p.context != NULL)
				rc = yt_fail(&b, (unsigned)p.problem_mark.line + 1, "%s %s", p.problem,
					     p.context);
			else
				rc = yt_fail(&b, (unsigned)p.problem_mark.line + 1, "%s",
					     p.problem != NULL ? p.problem : "YAML syntax error");
			break;
		}
		rc = yt_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	while (b.yb_depth > 0) {
		struct yt_open *o = &b.yb_stack[--b.yb_depth];

		yt_node_free(o->yo_key);
		yt_node_free(o->yo_node);
	}
	t->yt_root = b.yb_root;
	if (rc < 0) {
		yaml_tree_free(&t);
		return -1;
	}
	*t_r = t;
	return 0;
}

int yaml_tree_load(struct yaml_tree **t_r, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc;

	*t_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s:0: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > YAML_TREE_MAX_BYTES) {
		snprintf(err, errlen, "%s:0: %s", path,
			 S_ISREG(st.st_mode) ? "file too large" : "not a regular file");
		close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s:0: out of memory", path);
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	rc = yaml_tree_parse(t_r, path, buf, got, err, errlen);
	free(buf);
	return rc;
}

void yaml_tree_free(struct yaml_tree **t)
{
	if (*t == NULL)
		return;
	yt_node_free((*t)->yt_root);
	free((*t)->yt_file);
	free(*t);
	*t = NULL;
}

const struct yaml_node *yaml_map_get(const struct yaml_node *n, const char *key)
{
	if (n == NULL || n->yn_kind != YAML_MAP)
		return NULL;
	for (unsigned i = 0; i < n->yn_n; i++)
		if (strcmp(n->yn_keys[i]->yn_str, key) == 0)
			return n->yn_items[i];
	return NULL;
}

static int yt_want_scalar(const struct yaml_node *n, char *err, size_t errlen, const char *what)
{
	if (n != NULL && n->yn_kind == YAML_SCALAR && n->yn_len > 0)
		return 0;
	yaml_error(n, err, errlen, "expected %s, found %s", what,
		   n == NULL ? "nothing" : n->yn_kind == YAML_MAP ? "a map" :
		   n->yn_kind == YAML_SEQ ? "a list" : "an empty value");
	return -1;
}

int yaml_scalar_u64(const struct yaml_node *n, uint64_t *v_r, char *err, size_t errlen)
{
	const char *p;

	if (yt_want_scalar(n, err, errlen, "a number") < 0)
		return -1;
	p = n->yn_str;
	if (decimal_u64(&p, v_r) < 0 || *p != '\0') {
		yaml_error(n, err, errlen, "not a whole number (or too large): \"%s\"", n->yn_str);
		return -1;
	}
	return 0;
}

int yaml_scalar_bool(const struct yaml_node *n, bool *v_r, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on" }, *const no[] = { "no", "false", "off" };

	if (yt_want_scalar(n, err, errlen, "yes or no") < 0)
		return -1;
	for (unsigned i = 0; i < 3; i++) {
		if (strcasecmp(n->yn_str, yes[i]) == 0) {
			*v_r = true;
			return 0;
		}
		if (strcasecmp(n->yn_str, no[i]) == 0) {
			*v_r = false;
			return 0;
		}
	}
	yaml_error(n, err, errlen, "expected yes or no, found \"%s\"", n->yn_str);
	return -1;
}

/* "1h30m" is allowed too: number-unit pairs summed. A bare number is
 * refused: "30" could be seconds or minutes, and a rules file says which. */
int yaml_scalar_duration(const struct yaml_node *n, uint64_t *us_r, char *err, size_t errlen)
{
	static const struct {
		const char *u;
		uint64_t us;
	} units[] = {
		{ "ms", 1000ull }, { "s", 1000000ull }, { "m", 60000000ull },
		{ "h", 3600000000ull }, { "d", 86400000000ull }, { "w", 604800000000ull },
	};
	const char *p;
	uint64_t total = 0;

	if (yt_want_scalar(n, err, errlen, "a duration (\"30s\", \"10m\", \"2h\", \"1d\")") < 0)
		return -1;
	p = n->yn_str;
	while (*p != '\0') {
		uint64_t v, mul = 0;
		size_t ul = 0;

		if (decimal_u64(&p, &v) < 0)
			goto bad;
		for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].u);

			/* "m" must not take the "m" of "ms" */
			if (strncmp(p, units[i].u, l) == 0 && l > ul) {
				ul = l;
				mul = units[i].us;
			}
		}
		if (mul == 0 || (v != 0 && v > UINT64_MAX / mul) || total > UINT64_MAX - v * mul)
			goto bad;
		total += v * mul;
		p += ul;
	}
	*us_r = total;
	return 0;
bad:
	yaml_error(n, err, errlen,
		   "not a duration: \"%s\" (a number and a unit: ms, s, m, h, d, w; e.g. \"30s\", \"10m\")",
		   n->yn_str);
	return -1;
}
