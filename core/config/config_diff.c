/*
 * config_diff.c: two configurations compared setting by setting, for a
 * reload (SIGHUP, POST /api/v1/reload): which settings changed, as the
 * text config show writes, and which of them a running daemon keeps
 * until it restarts (the table's ck_restart); config_keep_restart() gives
 * a new configuration the running values of those. Owns only the
 * change lists it returns.
 */
#include "core/config/config_internal.h"

#include <stdlib.h>
#include <string.h>

static const struct config_key *config_diff_find(const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].ck_name, name) == 0)
			return &config_keys[i];
	return NULL;
}

int config_key_restart(const char *key)
{
	const struct config_key *k = config_diff_find(key);

	return k == NULL ? -1 : k->ck_restart ? 1 : 0;
}

const char *config_key_name(size_t i)
{
	return i < config_nkeys ? config_keys[i].ck_name : NULL;
}

char *config_value_str(const struct config *cfg, const char *key)
{
	const struct config_key *k = config_diff_find(key);

	return k == NULL ? NULL : config_key_value_str(cfg, k);
}

/* Credentials in URLs ("https://user:secret@host/...") become "***":
 * change lists go to the log and to the admin API. In place (the text
 * only shrinks, or grows by at most 3 bytes over a 1- or 2-byte
 * userinfo: v has room, see config_diff_shown()). */
static void config_diff_redact(char *v)
{
	for (char *p = strstr(v, "://"); p != NULL; p = strstr(p, "://")) {
		char *user = p + 3, *end = user + strcspn(user, "/ ,"), *at;

		at = memchr(user, '@', (size_t)(end - user));
		p = user;
		if (at == NULL)
			continue;
		memmove(user + 3, at, strlen(at) + 1);
		memcpy(user, "***", 3);
	}
}

/* A value as a change list shows it: malloc'd with room for redaction
 * (every "://" may grow the text by 3), NULL when memory runs out. */
static char *config_diff_shown(char *v)
{
	size_t n = 0, len = strlen(v);
	char *out;

	for (const char *p = strstr(v, "://"); p != NULL; p = strstr(p + 3, "://"))
		n++;
	out = realloc(v, len + 1 + 3 * n);
	if (out == NULL) {
		free(v);
		return NULL;
	}
	config_diff_redact(out);
	return out;
}

void config_changes_free(struct config_change **ch, int n)
{
	if (*ch == NULL)
		return;
	for (int i = 0; i < n; i++) {
		free((*ch)[i].cc_old);
		free((*ch)[i].cc_new);
	}
	free(*ch);
	*ch = NULL;
}

int config_diff(const struct config *a, const struct config *b, struct config_change **ch_r)
{
	struct config_change *ch = NULL;
	int n = 0;

	*ch_r = NULL;
	for (size_t i = 0; i < config_nkeys; i++) {
		char *va = config_key_value_str(a, &config_keys[i]);
		char *vb = config_key_value_str(b, &config_keys[i]);
		struct config_change *grown;

		if (va == NULL || vb == NULL)
			goto nomem;
		if (strcmp(va, vb) == 0) {
			free(va);
			free(vb);
			continue;
		}
		grown = realloc(ch, ((size_t)n + 1) * sizeof(*ch));
		if (grown == NULL)
			goto nomem;
		ch = grown;
		va = config_diff_shown(va);
		vb = config_diff_shown(vb);
		if (va == NULL || vb == NULL)
			goto nomem;
		ch[n].cc_key = config_keys[i].ck_name;
		ch[n].cc_old = va;
		ch[n].cc_new = vb;
		ch[n].cc_restart = config_keys[i].ck_restart;
		n++;
		continue;
nomem:
		free(va);
		free(vb);
		config_changes_free(&ch, n);
		return -1;
	}
	*ch_r = ch;
	return n;
}

/* Values go through config_set(), as the file's do: what config show
 * writes loads back into the same setting. */
int config_keep_restart(struct config *nc, const struct config *running, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		char *v;
		int rc;

		if (!k->ck_restart)
			continue;
		v = config_key_value_str(running, k);
		if (v == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = config_set(nc, k->ck_name, v, err, errlen);
		free(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}
