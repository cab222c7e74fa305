/* shp_blob.c: see shp_blob.h. */
#include <stdlib.h>
#include <string.h>

#include "core/shaping/shp_blob.h"

int shp_blob_parse(const char *buf, size_t len, const char *head,
		   bool (*fn)(void *arg, char *line), void *arg)
{
	char *copy, *line, *next;
	bool ok = true;

	while (len > 0 && buf[len - 1] == '\0')
		len--;
	if (memchr(buf, '\0', len) != NULL || (copy = strndup(buf, len)) == NULL)
		return -1;
	line = copy;
	next = strchr(line, '\n');
	if (next == NULL || (size_t)(next - line) != strlen(head) ||
	    memcmp(line, head, strlen(head)) != 0)
		ok = false;
	while (ok && next != NULL) {
		line = next + 1;
		next = strchr(line, '\n');
		if (next == NULL) {
			ok = *line == '\0';	/* the blob ends with a newline */
			break;
		}
		*next = '\0';
		ok = fn(arg, line);
	}
	free(copy);
	return ok ? 0 : -1;
}
