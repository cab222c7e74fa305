/*
 * bclass_rules: which bounce class (bclass.h) a reply belongs to, by
 * rules read from YAML files (core/base/yaml_tree.h): the operator's
 * files (setting bounce_class_rules), then the built-in file
 * conf/bounce-classes.yaml compiled into the binary. First match wins.
 *
 * A rules file:
 *
 *   rules:
 *     - class: reputation-or-rate     # a class name (bclass.h)
 *       status: [4.7.28, "5.7."]      # enhanced status: exact, or a
 *                                     # prefix ending in "." (whole parts)
 *                                     # or "*" ("4.7.6*"); any of them
 *       reply: 'unusual rate'         # PCRE2, caseless, on the reply text
 *       code: 4xx                     # 4xx, 5xx or a 3-digit code
 *
 * A rule needs status or reply (or both); all that it gives must match.
 *
 * The reply a rule sees (struct bclass_reply): the basic code and the
 * enhanced status from the reply itself, or, for a reason ringmta wrote
 * ("host mx.example[192.0.2.1] said: 421 4.7.0 [TSS04] ..."), the first
 * "ddd x.y.z" inside it, else ringmta's own status and the result's
 * class (4 deferred, 5 failed). Continuation lines repeat the status
 * ("... of 4.7.0 unsolicited mail"): bclass_reply_init removes the
 * repeats so that phrases read across lines.
 *
 * Ownership: a struct bclass_rules is immutable once loaded and shared
 * by reference (bclass_rules_ref/unref); matching is thread-safe (each
 * match has its own PCRE2 match data; one shared, read-only match context
 * bounds a pattern's work: past it the rule does not match). The process-wide current rules
 * (bclass_current_*) are swapped under a lock on reload; a classification
 * holds a reference for its duration.
 */
#ifndef RINGMTA_BCLASS_RULES_H
#define RINGMTA_BCLASS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bclass_rules;

/* What the rules look at; views, see bclass_reply_init. */
struct bclass_reply {
	unsigned br_code;		/* 200..599; 0 unknown */
	char br_status[16];		/* "5.1.1" or "" */
	const char *br_text;		/* whole reply text, normalised */
	size_t br_len;
};

/*
 * Fill r from a stored reply or reason (reply), ringmta's status for it
 * (ecode, may be NULL or "") and whether it failed (else deferred). The
 * normalised text goes into buf (buflen bytes; longer text is cut), which
 * r->br_text points into.
 */
void bclass_reply_init(struct bclass_reply *r, const char *reply, const char *ecode,
		       bool failed, char *buf, size_t buflen);

/* An empty rule set; 0 or -ENOMEM. */
int bclass_rules_new(struct bclass_rules **r_r);
/* Append the rules of one YAML document (name for messages): 0, or -1
 * with every problem in err, one per line, each "name:line: why"; on
 * error nothing of it is added. */
int bclass_rules_add_text(struct bclass_rules *r, const char *name, const void *buf,
			  size_t len, char *err, size_t errlen);
int bclass_rules_add_file(struct bclass_rules *r, const char *path, char *err, size_t errlen);
/* Append the built-in rules (conf/bounce-classes.yaml). */
int bclass_rules_add_builtin(struct bclass_rules *r, char *err, size_t errlen);
/* The operator's files (space-separated; "" none) then the built-in
 * rules, into a new set: 0, or -1 with every error of every file in err,
 * one per line ("file:line: why"), as much as fits. */
int bclass_rules_load(struct bclass_rules **r_r, const char *files, char *err,
		      size_t errlen);
unsigned bclass_rules_count(const struct bclass_rules *r);
struct bclass_rules *bclass_rules_ref(struct bclass_rules *r);
void bclass_rules_unref(struct bclass_rules **r);

/* The class of the first rule that matches, 0 (BCLASS_NONE) if none.
 * When where_r is given it gets "file:line" of that rule (valid while
 * r is). */
unsigned bclass_rules_match(const struct bclass_rules *r, const struct bclass_reply *in,
			    const char **where_r);

/* The built-in rules file as compiled in (for tests and --check). */
extern const char bclass_builtin_yaml[];
extern const size_t bclass_builtin_yaml_len;

/*
 * Process-wide rules for delivery. bclass_current_set takes the caller's
 * reference (NULL: none) and drops the old one. bclass_classify: the
 * class of a failed or deferred reply by the current rules, BCLASS_OTHER
 * when none matches (or none are loaded). Any thread.
 */
void bclass_current_set(struct bclass_rules *r);
unsigned bclass_classify(const char *reply, const char *ecode, bool failed);

#endif
