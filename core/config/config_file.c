/*
 * config_file.c: config_load_file(), reading ringmta.conf with inih.
 *
 * The file goes through our own line reader, which counts lines (the
 * Debian build of inih hands the handler no line number), rejects
 * [section] headers and overlong lines, and notes which lines start with
 * whitespace so that continuation lines can extend list values. Each
 * setting is applied with config_set(); the first error wins and names
 * the file and line. Owns only its per-load state.
 */
#include "core/config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys are short; a longer name is unknown anyway. */
#define CONFIG_KEY_MAX 64

/* State of one config_load_file(): the reader and the handler share it. */
struct config_load {
	struct config *cl_cfg;
	FILE *cl_fp;
	const char *cl_path;
	int cl_lineno;		/* lines handed to inih so far */
	bool cl_indented;	/* the current line starts with a blank */
	char cl_prev_key[CONFIG_KEY_MAX];  /* key of the last setting line */
	char *cl_prev_value;	/* its value so far, for continuation lines */
	int cl_err_line;	/* line of the first error we saw, 0 = none */
	char *cl_err;
	size_t cl_errlen;
};

static void config_load_error(struct config_load *cl, const char *msg)
{
	if (cl->cl_err_line != 0)
		return;
	cl->cl_err_line = cl->cl_lineno;
	snprintf(cl->cl_err, cl->cl_errlen, "%s:%d: %s", cl->cl_path,
		 cl->cl_lineno, msg);
}

/*
 * inih's line reader (fgets-style). Besides counting lines it catches what
 * inih would accept silently or misreport: a line longer than inih's buffer
 * (inih would parse the pieces as separate lines) and a [section] header
 * (inih takes it without calling the handler).
 */
static char *config_load_read(char *str, int num, void *stream)
{
	struct config_load *cl = stream;
	char msg[CONFIG_MSG_MAX];
	size_t len;
	char *p;
	int c;

	if (fgets(str, num, cl->cl_fp) == NULL)
		return NULL;
	cl->cl_lineno++;

	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		c = getc(cl->cl_fp);
		if (c != '\n' && c != EOF) {
			while (c != '\n' && c != EOF)
				c = getc(cl->cl_fp);
			/* A long comment loses only its tail; anything else
			 * would be misread, so it is an error. */
			for (p = str; isspace((unsigned char)*p); p++)
				;
			if (*p != '#' && *p != ';') {
				snprintf(msg, sizeof(msg), "line too long (at"
					 " most %d characters); continue a long"
					 " list on lines that start with a"
					 " blank", num - 1);
				config_load_error(cl, msg);
			}
		}
	}

	if (cl->cl_lineno == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1);

	for (p = str; *p != '\0' && isspace((unsigned char)*p); p++)
		;
	cl->cl_indented = p > str;
	/* inih reads an indented line as a continuation when a setting came
	 * before; otherwise a leading '[' opens a section. */
	if (*p == '[' && (!cl->cl_indented || cl->cl_prev_key[0] == '\0')) {
		len = strcspn(p, "\r\n");
		snprintf(msg, sizeof(msg), "section headers are not supported"
			 " ('%.*s'); write plain 'key = value' lines",
			 (int)(len > 64 ? 64 : len), p);
		config_load_error(cl, msg);
	}
	return str;
}

static int config_load_handler(void *user, const char *section,
			       const char *name, const char *value)
{
	struct config_load *cl = user;
	char msg[CONFIG_MSG_MAX];
	char *joined;
	size_t oldlen;

	(void)section;	/* the reader already rejected [section] lines */
	if (value == NULL)
		value = "";

	if (cl->cl_indented && cl->cl_prev_key[0] != '\0' &&
	    cl->cl_prev_value != NULL) {
		/* Continuation: inih hands us the previous key again. */
		oldlen = strlen(cl->cl_prev_value);
		joined = realloc(cl->cl_prev_value, oldlen + 1 + strlen(value) + 1);
		if (joined == NULL) {
			config_load_error(cl, "out of memory");
			return 0;
		}
		joined[oldlen] = ' ';
		strcpy(joined + oldlen + 1, value);
		cl->cl_prev_value = joined;
	} else {
		snprintf(cl->cl_prev_key, sizeof(cl->cl_prev_key), "%s", name);
		free(cl->cl_prev_value);
		cl->cl_prev_value = strdup(value);
		if (cl->cl_prev_value == NULL) {
			config_load_error(cl, "out of memory");
			return 0;
		}
	}

	if (cl->cl_err_line != 0)
		return 1;	/* report only the first error */
	if (config_set(cl->cl_cfg, name, cl->cl_prev_value, msg,
		       sizeof(msg)) < 0) {
		config_load_error(cl, msg);
		return 0;
	}
	return 1;
}

int config_load_file(struct config *cfg, const char *path,
		     char *err, size_t errlen)
{
	struct config_load cl;
	int rc;

	memset(&cl, 0, sizeof(cl));
	cl.cl_cfg = cfg;
	cl.cl_path = path;
	cl.cl_err = err;
	cl.cl_errlen = errlen;

	cl.cl_fp = fopen(path, "re");
	if (cl.cl_fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	errno = 0;
	rc = ini_parse_stream(config_load_read, &cl, config_load_handler, &cl);
	if (ferror(cl.cl_fp)) {
		snprintf(err, errlen, "%s: %s", path,
			 strerror(errno != 0 ? errno : EIO));
		rc = -1;
	} else if (cl.cl_err_line != 0 && (rc <= 0 || cl.cl_err_line <= rc)) {
		rc = -1;	/* our message is already in err */
	} else if (rc > 0) {
		snprintf(err, errlen, "%s:%d: syntax error: expected"
			 " 'key = value'", path, rc);
		rc = -1;
	} else if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
	}
	fclose(cl.cl_fp);
	free(cl.cl_prev_value);
	return rc;
}
