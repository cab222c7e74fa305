/*
 * config_fixture.h: helpers shared by the configuration test programs
 * (test_config.c, test_config_load.c): printable test names and reading
 * back what config_dump() prints. Included, not compiled alone.
 */
#ifndef RINGMTA_CONFIG_FIXTURE_H
#define RINGMTA_CONFIG_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config/config.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

/* s with control characters written as \xNN, so that a test name stays
 * on its TAP line; in buf. */
static const char *test_show(const char *s, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; *s != '\0' && used + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			used += (size_t)snprintf(buf + used, size - used,
						 "\\x%02x", c);
		else
			buf[used++] = (char)c;
	}
	buf[used] = '\0';
	return buf;
}

/* config_dump() into a malloc'd string. */
static char *test_dump(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	config_dump(cfg, f);
	fclose(f);
	return buf;
}

/*
 * The value config_dump() prints for key, with continuation lines joined
 * by a blank (as the loader joins them), in buf. False if key is absent.
 */
static bool test_dump_value(const struct config *cfg, const char *key,
			    char *buf, size_t size)
{
	char *dump = test_dump(cfg), *line, *next;
	size_t klen = strlen(key), used = 0;
	bool found = false;

	buf[0] = '\0';
	for (line = dump; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (!found && strncmp(line, key, klen) == 0 &&
		    strncmp(line + klen, " = ", 3) == 0) {
			found = true;
			used = (size_t)snprintf(buf, size, "%s", line + klen + 3);
		} else if (found && (line[0] == ' ' || line[0] == '\t')) {
			while (*line == ' ' || *line == '\t')
				line++;
			if (used < size)
				used += (size_t)snprintf(buf + used, size - used,
							 " %s", line);
		} else if (found) {
			break;
		}
	}
	free(dump);
	return found;
}

#pragma GCC diagnostic pop

#endif
