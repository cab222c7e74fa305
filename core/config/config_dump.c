/*
 * config_dump.c: config_dump(), the settings in effect as "key = value"
 * lines in the table's order (that of docs/ringmta.conf.example). Long
 * lists wrap onto continuation lines that fit inih's line length, so the
 * output loads back into an equal configuration; config_dump_changed()
 * writes only the settings whose values differ from the defaults
 * ("ringmta config show -n"), config_dump_restart() those a running
 * daemon keeps until it restarts ("config show -r"). Owns nothing.
 */
#include "core/config/config_internal.h"
#include "core/config/netacl.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Print list items separated by ", ", breaking long lists onto
 * continuation lines so the output stays within inih's line length. */
static void config_dump_item(FILE *f, size_t *col, bool first,
			     const char *item, size_t len)
{
	if (!first && *col + 2 + len > 76) {
		fputs(",\n    ", f);
		*col = 4;
	} else if (!first) {
		fputs(", ", f);
		*col += 2;
	}
	fwrite(item, 1, len, f);
	*col += len;
}

static void config_dump_listen(const struct config *cfg, FILE *f)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	char item[NI_MAXHOST + NI_MAXSERV + 20];
	size_t col;
	unsigned int i;
	int n;

	fputs("listen = ", f);
	col = strlen("listen = ");
	for (i = 0; i < cfg->listen_count; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (getnameinfo((const struct sockaddr *)&l->cl_addr,
				l->cl_addrlen, host, sizeof(host), port,
				sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)
		    != 0)
			continue;	/* cannot happen for parsed entries */
		n = snprintf(item, sizeof(item),
			     l->cl_addr.ss_family == AF_INET6 ? "[%s]:%s%s" :
			     "%s:%s%s", host, port,
			     l->cl_kind == CONFIG_LISTEN_SUBMISSION ? "/submission" :
			     l->cl_kind == CONFIG_LISTEN_SUBMISSIONS ? "/submissions" : "");
		config_dump_item(f, &col, i == 0, item, (size_t)n);
	}
	fputc('\n', f);
}

static void config_dump_netacl(const struct netacl *acl, const char *name,
			       FILE *f)
{
	const char *p, *sep;
	char *text;
	size_t col, len;
	bool first = true;
	int n;

	n = netacl_format(acl, NULL, 0);
	text = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (text == NULL) {
		fprintf(f, "# %s: out of memory\n", name);
		return;
	}
	netacl_format(acl, text, (size_t)n + 1);
	fprintf(f, "%s = ", name);
	col = strlen(name) + 3;
	for (p = text; *p != '\0'; p += len) {
		sep = strstr(p, ", ");
		len = sep != NULL ? (size_t)(sep - p) : strlen(p);
		config_dump_item(f, &col, first, p, len);
		first = false;
		if (sep != NULL)
			len += 2;
	}
	fputc('\n', f);
	free(text);
}

/* One setting as config_dump() writes it (one line, or more for a long
 * list). */
static void config_dump_key(const struct config *cfg,
			    const struct config_key *k, FILE *f)
{
	const void *p = config_member_const(cfg, k);
	char num[32];

	switch (k->ck_type) {
	case CONFIG_T_LISTEN:
		config_dump_listen(cfg, f);
		break;
	case CONFIG_T_HOSTNAME:
	case CONFIG_T_PATH:
	case CONFIG_T_STRING:
	case CONFIG_T_RELAYHOST:
	case CONFIG_T_ADDRPORT:
	case CONFIG_T_DNS_SERVERS:
		fprintf(f, "%s = %s\n", k->ck_name,
			*(char *const *)p != NULL ? *(char *const *)p : "");
		break;
	case CONFIG_T_NUMBER:
		config_format_number(config_get_number(cfg, k),
				     k->ck_unit, num, sizeof(num));
		fprintf(f, "%s = %s\n", k->ck_name, num);
		break;
	case CONFIG_T_NETACL:
		config_dump_netacl(*(struct netacl *const *)p, k->ck_name, f);
		break;
	case CONFIG_T_LOG_LEVEL:
		fprintf(f, "%s = %s\n", k->ck_name,
			config_log_level_name(*(const enum config_log_level *)p));
		break;
	case CONFIG_T_BOOL:
		fprintf(f, "%s = %s\n", k->ck_name,
			*(const bool *)p ? "yes" : "no");
		break;
	}
}

void config_dump(const struct config *cfg, FILE *f)
{
	for (size_t i = 0; i < config_nkeys; i++)
		config_dump_key(cfg, &config_keys[i], f);
}

/* config_dump_key() into a string the caller frees; NULL when memory
 * runs out. */
static char *config_dump_key_str(const struct config *cfg,
				 const struct config_key *k)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (m == NULL)
		return NULL;
	config_dump_key(cfg, k, m);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *config_key_value_str(const struct config *cfg, const struct config_key *k)
{
	char *line = config_dump_key_str(cfg, k), *out, *o;
	const char *p;

	if (line == NULL)
		return NULL;
	out = malloc(strlen(line) + 1);
	if (out == NULL) {
		free(line);
		return NULL;
	}
	/* Skip "key = "; a continuation ",\n    " becomes ", ". */
	p = line + strlen(k->ck_name) + 3;
	for (o = out; *p != '\0'; p++) {
		if (*p == '\n') {
			while (p[1] == ' ')
				p++;
			if (p[1] != '\0')
				*o++ = ' ';
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	free(line);
	return out;
}

void config_dump_restart(const struct config *cfg, FILE *f)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].ck_restart)
			config_dump_key(cfg, &config_keys[i], f);
}

/* Settings compare by their written form, which comes from the parsed
 * value: "16G" and "17179869184" are the same setting. */
int config_dump_changed(const struct config *cfg, FILE *f)
{
	struct config def;
	int rc = 0;

	config_defaults(&def);
	for (size_t i = 0; i < config_nkeys && rc == 0; i++) {
		char *have = config_dump_key_str(cfg, &config_keys[i]);
		char *dflt = config_dump_key_str(&def, &config_keys[i]);

		if (have == NULL || dflt == NULL)
			rc = -1;
		else if (strcmp(have, dflt) != 0)
			fputs(have, f);
		free(have);
		free(dflt);
	}
	config_free(&def);
	return rc;
}
