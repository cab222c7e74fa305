/*
 * test_yaml_tree: YAML text into a tree with lines; the refusals (anchors,
 * aliases, depth, size, duplicate keys, complex keys, several documents)
 * and the scalar helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/yaml_tree.h"
#include "tests/unit/tap.h"

static struct yaml_tree *parse(const char *text, char *err, size_t errlen)
{
	struct yaml_tree *t = NULL;

	if (yaml_tree_parse(&t, "t.yaml", text, strlen(text), err, errlen) < 0)
		return NULL;
	return t;
}

/* The error for text starts with want. */
static void refuse(const char *text, const char *want, const char *what)
{
	char err[256] = "";
	struct yaml_tree *t = parse(text, err, sizeof(err));

	tap_ok(t == NULL && strncmp(err, want, strlen(want)) == 0, "%s: \"%s\"", what, err);
	yaml_tree_free(&t);
}

static void test_shapes(void)
{
	char err[256] = "";
	struct yaml_tree *t = parse("# comment\n"
				    "a: 1\n"
				    "b:\n"
				    "  - x\n"
				    "  - 'y z'\n"
				    "c: {d: \"q\", e: [1, 2]}\n"
				    "empty:\n",
				    err, sizeof(err));
	const struct yaml_node *r, *b, *c, *e;

	tap_ok(t != NULL, "a map with lists, flow collections and quotes parses (%s)", err);
	if (t == NULL)
		return;
	r = t->yt_root;
	tap_ok(r->yn_kind == YAML_MAP && r->yn_n == 4, "root is a map of 4");
	tap_ok(strcmp(r->yn_keys[0]->yn_str, "a") == 0 && r->yn_keys[0]->yn_line == 2,
	       "first key \"a\" at line 2");
	tap_ok(strcmp(yaml_map_get(r, "a")->yn_str, "1") == 0 && !yaml_map_get(r, "a")->yn_quoted,
	       "a = plain 1");
	b = yaml_map_get(r, "b");
	tap_ok(b->yn_kind == YAML_SEQ && b->yn_n == 2 && b->yn_items[1]->yn_line == 5 &&
		       strcmp(b->yn_items[1]->yn_str, "y z") == 0 && b->yn_items[1]->yn_quoted,
	       "b is a list; its second item 'y z' quoted, line 5");
	c = yaml_map_get(r, "c");
	e = yaml_map_get(c, "e");
	tap_ok(c->yn_kind == YAML_MAP && c->yn_line == 6 && e->yn_kind == YAML_SEQ && e->yn_n == 2,
	       "flow map with a flow list at line 6");
	tap_ok(strcmp(t->yt_root->yn_file, "t.yaml") == 0, "nodes know the file name");
	tap_ok(yaml_map_get(r, "empty")->yn_len == 0, "an empty value is an empty scalar");
	tap_ok(yaml_map_get(r, "nope") == NULL && yaml_map_get(b, "x") == NULL,
	       "missing key and a list give NULL");
	yaml_tree_free(&t);
	tap_ok(t == NULL, "free sets the pointer to NULL");

	t = parse("", err, sizeof(err));
	tap_ok(t != NULL && t->yt_root == NULL, "an empty file is an empty tree");
	yaml_tree_free(&t);
	t = parse("# only a comment\n", err, sizeof(err));
	tap_ok(t != NULL && t->yt_root == NULL, "a file of comments is an empty tree");
	yaml_tree_free(&t);
}

static void test_refusals(void)
{
	char deep[512] = "", big_err[256] = "";
	struct yaml_tree *t = NULL;
	char *big;

	refuse("a: &x 1\nb: 2\n", "t.yaml:1: anchors", "an anchor is refused");
	refuse("a: 1\nb: &x [1]\n", "t.yaml:2: anchors", "an anchor on a list is refused");
	refuse("a: &x {b: 1}\n", "t.yaml:1: anchors", "an anchor on a map is refused");
	refuse("a: 1\nb: *x\n", "t.yaml:2: ", "an alias is refused (undefined)");
	refuse("a: 1\nb: 2\nc:\n  d: 1\n  d: 2\n", "t.yaml:5: duplicate key \"d\" (first at line 4)",
	       "a duplicate key is refused with both lines");
	refuse("a: 1\nb: 2\na: 3\n", "t.yaml:3: duplicate key \"a\"", "a duplicate top-level key");
	refuse("? [a, b]\n: 1\n", "t.yaml:1: a map key must be", "a list as key is refused");
	refuse("a: 1\n---\nb: 2\n", "t.yaml:2: more than one YAML document",
	       "a second document is refused");
	refuse("a: [1, 2\nb: 3\n", "t.yaml:", "a syntax error names the file");
	refuse("a: 1\n b: 2\nc: 3\n", "t.yaml:2: ", "bad indentation names its line");
	refuse("a: \"x\\0y\"\n", "t.yaml:1: a value holds a NUL", "a NUL inside a value is refused");

	for (unsigned i = 0; i <= YAML_TREE_MAX_DEPTH; i++)
		strcat(deep, "[");
	refuse(deep, "t.yaml:1: nested deeper than 32", "33 open lists are too deep");
	deep[YAML_TREE_MAX_DEPTH - 1] = '\0';
	for (unsigned i = 0; i < YAML_TREE_MAX_DEPTH - 1; i++)
		strcat(deep, "]");
	t = parse(deep, big_err, sizeof(big_err));
	tap_ok(t != NULL, "31 nested lists are fine (%s)", big_err);
	yaml_tree_free(&t);

	big = malloc(YAML_TREE_MAX_BYTES + 2);
	memset(big, '#', YAML_TREE_MAX_BYTES + 1);
	big[YAML_TREE_MAX_BYTES + 1] = '\0';
	tap_ok(yaml_tree_parse(&t, "t.yaml", big, YAML_TREE_MAX_BYTES + 1, big_err,
			       sizeof(big_err)) < 0 && strstr(big_err, "larger than") != NULL,
	       "a buffer over the size limit is refused: %s", big_err);
	free(big);
}

static void test_dups_large(void)
{
	size_t cap = 20000 * 16;
	char *s = malloc(cap), err[256] = "";
	size_t n = 0;
	struct yaml_tree *t;

	for (unsigned i = 0; i < 20000; i++)
		n += (size_t)snprintf(s + n, cap - n, "d%u.com: 1\n", i);
	t = parse(s, err, sizeof(err));
	tap_ok(t != NULL && t->yt_root->yn_n == 20000, "20000 distinct keys load (%s)", err);
	yaml_tree_free(&t);
	snprintf(s + n, cap - n, "d7.com: 2\n");
	t = parse(s, err, sizeof(err));
	tap_ok(t == NULL && strstr(err, ":20001: duplicate key \"d7.com\" (first at line 8)") != NULL,
	       "the 20001st key repeating the 8th is found: %s", err);
	free(s);
}

static void test_scalars(void)
{
	char err[256] = "";
	struct yaml_tree *t = parse("n: 42\nbig: 18446744073709551615\nover: 18446744073709551616\n"
				    "neg: -1\nt: Yes\nf: off\nq: maybe\n"
				    "d1: 30s\nd2: 10m\nd3: 2h\nd4: 1d\nd5: 500ms\nd6: 1h30m\n"
				    "d7: 30\nd8: 10x\nd9: m\nlist: [1]\n",
				    err, sizeof(err));
	const struct yaml_node *r = t->yt_root;
	uint64_t v = 0;
	bool b = false;

	tap_ok(yaml_scalar_u64(yaml_map_get(r, "n"), &v, err, sizeof(err)) == 0 && v == 42, "u64 42");
	tap_ok(yaml_scalar_u64(yaml_map_get(r, "big"), &v, err, sizeof(err)) == 0 && v == UINT64_MAX,
	       "u64 max");
	tap_ok(yaml_scalar_u64(yaml_map_get(r, "over"), &v, err, sizeof(err)) < 0 &&
		       strncmp(err, "t.yaml:3: ", 10) == 0,
	       "u64 overflow refused at its line: %s", err);
	tap_ok(yaml_scalar_u64(yaml_map_get(r, "neg"), &v, err, sizeof(err)) < 0, "negative refused");
	tap_ok(yaml_scalar_u64(yaml_map_get(r, "list"), &v, err, sizeof(err)) < 0 &&
		       strstr(err, "found a list") != NULL,
	       "a list is not a number: %s", err);
	tap_ok(yaml_scalar_bool(yaml_map_get(r, "t"), &b, err, sizeof(err)) == 0 && b, "Yes is true");
	tap_ok(yaml_scalar_bool(yaml_map_get(r, "f"), &b, err, sizeof(err)) == 0 && !b, "off is false");
	tap_ok(yaml_scalar_bool(yaml_map_get(r, "q"), &b, err, sizeof(err)) < 0 &&
		       strncmp(err, "t.yaml:7: ", 10) == 0,
	       "maybe is refused: %s", err);
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d1"), &v, err, sizeof(err)) == 0 && v == 30000000,
	       "30s");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d2"), &v, err, sizeof(err)) == 0 && v == 600000000,
	       "10m");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d3"), &v, err, sizeof(err)) == 0 &&
		       v == 7200000000ull,
	       "2h");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d4"), &v, err, sizeof(err)) == 0 &&
		       v == 86400000000ull,
	       "1d");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d5"), &v, err, sizeof(err)) == 0 && v == 500000,
	       "500ms");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d6"), &v, err, sizeof(err)) == 0 &&
		       v == 5400000000ull,
	       "1h30m");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d7"), &v, err, sizeof(err)) < 0 &&
		       strncmp(err, "t.yaml:14: not a duration", 25) == 0,
	       "a bare number is not a duration: %s", err);
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d8"), &v, err, sizeof(err)) < 0, "10x refused");
	tap_ok(yaml_scalar_duration(yaml_map_get(r, "d9"), &v, err, sizeof(err)) < 0, "m refused");
	yaml_error(yaml_map_get(r, "d9"), err, sizeof(err), "custom %d", 7);
	tap_ok(strcmp(err, "t.yaml:16: custom 7") == 0, "yaml_error prefixes file:line: %s", err);
	yaml_tree_free(&t);
}

static void test_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[512], err[256] = "";
	struct yaml_tree *t = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/test_yaml_tree.yaml", dir != NULL ? dir : "/tmp");
	f = fopen(path, "w");
	fputs("x:\n  y: z\n", f);
	fclose(f);
	tap_ok(yaml_tree_load(&t, path, err, sizeof(err)) == 0 &&
		       strcmp(yaml_map_get(yaml_map_get(t->yt_root, "x"), "y")->yn_str, "z") == 0 &&
		       strcmp(t->yt_file, path) == 0,
	       "load from a file (%s)", err);
	yaml_tree_free(&t);
	unlink(path);
	tap_ok(yaml_tree_load(&t, path, err, sizeof(err)) < 0 && strstr(err, ":0: No such file") != NULL,
	       "a missing file: %s", err);
}

/* An error message is one line (a log line, one line of --check), even
 * when it quotes a value with line breaks or control characters. */
static void test_one_line_errors(void)
{
	static const char dup[] = "\"a\\nb\": 1\n\"a\\nb\": 2\n";
	static const char val[] = "k: \"x\\ny\\rz\\te\\x1b\"\nl: |\n  one\n  two\n";
	char err[256] = "";
	struct yaml_tree *t = NULL;

	tap_ok(yaml_tree_parse(&t, "t.yaml", dup, sizeof(dup) - 1, err, sizeof(err)) < 0 &&
	       strstr(err, "duplicate key") != NULL && strpbrk(err, "\r\n") == NULL,
	       "a duplicate key with a line break is reported on one line: %s", err);
	tap_ok(yaml_tree_parse(&t, "t.yaml", val, sizeof(val) - 1, err, sizeof(err)) == 0,
	       "values with control characters parse (%s)", err);
	yaml_error(yaml_map_get(t->yt_root, "k"), err, sizeof(err), "bad \"%s\"",
		   yaml_map_get(t->yt_root, "k")->yn_str);
	tap_ok(strncmp(err, "t.yaml:1: bad \"x", 16) == 0 && strpbrk(err, "\r\n\t\x1b") == NULL,
	       "yaml_error quoting a value with control characters is one line: %s", err);
	yaml_error(yaml_map_get(t->yt_root, "l"), err, sizeof(err), "bad \"%s\"",
		   yaml_map_get(t->yt_root, "l")->yn_str);
	tap_ok(strstr(err, "one") != NULL && strstr(err, "two") != NULL && strchr(err, '\n') == NULL,
	       "a block scalar quoted in an error is one line: %s", err);
	yaml_tree_free(&t);
}

int main(void)
{
	test_shapes();
	test_refusals();
	test_dups_large();
	test_scalars();
	test_file();
	test_one_line_errors();
	return tap_done();
}
