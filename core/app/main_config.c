/*
 * main_config.c: "ringmta config show [-n]", the settings in effect in
 * the manner of postconf: every setting as "key = value" (the output
 * loads back as a ringmta.conf), or with -n only those whose values
 * differ from the built-in defaults. It shows what -c and -o before the
 * verb make of the configuration, not the running daemon's copy.
 */
#include <stdio.h>
#include <string.h>

#include "core/app/main.h"

static void main_config_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmta [-c FILE] [-o key=value]... config show [-n]\n"
		"Prints every setting as \"key = value\"; -n prints only those that differ\n"
		"from the built-in defaults.\n");
}

int main_config(const struct config *cfg, int argc, char **argv)
{
	bool changed = false;

	if (argc < 1 || strcmp(argv[0], "show") != 0) {
		main_config_usage(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0) {
			changed = true;
		} else {
			fprintf(stderr, "ringmta: config show: unknown argument '%s'\n", argv[i]);
			main_config_usage(stderr);
			return 2;
		}
	}
	if (!changed) {
		config_dump(cfg, stdout);
	} else if (config_dump_changed(cfg, stdout) < 0) {
		fprintf(stderr, "ringmta: config show: out of memory\n");
		return 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("ringmta: config show");
		return 1;
	}
	return 0;
}
