/*
 * yaml_tree: a YAML file read (with libyaml) into a small tree of maps,
 * sequences and scalars, each node knowing the line it came from, so that
 * the rules files' loaders report "file:line: what is wrong".
 *
 * Only what rules files need: block and flow maps and sequences, plain
 * and quoted scalars; anchors and aliases are refused (a rules file has
 * no use for them and they allow billion-laughs expansion); a file over
 * YAML_TREE_MAX_BYTES or deeper than YAML_TREE_MAX_DEPTH is refused.
 * Map keys are scalars; a duplicate key in one map is an error.
 *
 * Ownership: yaml_tree_load() returns one allocation tree owned by the
 * caller and released by yaml_tree_free(); every pointer into it (nodes,
 * strings, the file name) lives as long as the tree. Read-only after
 * loading: may be shared between threads.
 */
#ifndef RINGMTA_YAML_TREE_H
#define RINGMTA_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YAML_TREE_MAX_BYTES (16u << 20)
#define YAML_TREE_MAX_DEPTH 32u

enum yaml_kind {
	YAML_SCALAR = 0,
	YAML_MAP,
	YAML_SEQ,
};

struct yaml_node {
	uint8_t yn_kind;		/* enum yaml_kind */
	bool yn_quoted;			/* scalar was quoted ('..' or "..") */
	unsigned yn_line;		/* 1-based line of the node's start */
	const char *yn_file;		/* the file's name as given to load */
	/* SCALAR: the text (NUL-terminated; yn_len excludes the NUL). */
	const char *yn_str;
	size_t yn_len;
	/* MAP: yn_n pairs, yn_keys[i] (scalars) -> yn_items[i].
	 * SEQ: yn_n items in yn_items. In file order. */
	unsigned yn_n;
	struct yaml_node **yn_keys;
	struct yaml_node **yn_items;
};

struct yaml_tree {
	struct yaml_node *yt_root;	/* NULL for an empty file */
	char *yt_file;			/* owned copy of the name */
};

/* Read path. On error returns -1 with "path:line: message" in err. */
int yaml_tree_load(struct yaml_tree **t_r, const char *path, char *err, size_t errlen);
/* The same from memory (name is used in messages); for tests and fuzzing. */
int yaml_tree_parse(struct yaml_tree **t_r, const char *name, const void *buf, size_t len,
		    char *err, size_t errlen);
void yaml_tree_free(struct yaml_tree **t);

/* The value under key in a map, or NULL (also when n is not a map). */
const struct yaml_node *yaml_map_get(const struct yaml_node *n, const char *key);
/* Scalar helpers: 0 on success, -1 with "file:line: why" in err (the
 * node does not know its key: callers that want it name it themselves). */
int yaml_scalar_u64(const struct yaml_node *n, uint64_t *v_r, char *err, size_t errlen);
int yaml_scalar_bool(const struct yaml_node *n, bool *v_r, char *err, size_t errlen);
/* "30s", "10m", "2h", "1d", "500ms" -> microseconds. */
int yaml_scalar_duration(const struct yaml_node *n, uint64_t *us_r, char *err, size_t errlen);
/* Format "file:line: " + fmt into err (for loaders' own messages). */
void yaml_error(const struct yaml_node *n, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
