/*
 * main_config.c: "ringmta config show [-n|-r]", the settings in effect in
 * the manner of postconf: every setting as "key = value" (the output
 * loads back as a ringmta.conf), or with -n only those whose values
 * differ from the built-in defaults, or with -r only those a running daemon
 * keeps until it restarts (SIGHUP does not change them). It shows what
 * -c and -o before the verb make of the configuration, not the running
 * daemon's copy.
 */
#include <stdio.h>
#include <string.h>

#include "core/app/main.h"

static void main_config_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmta [-c FILE] [-o key=value]... config show [-n|-r]\n"
		"Prints every setting as \"key = value\"; -n prints only those that differ\n"
		"from the built-in defaults, -r only those that need a restart to change\n"
		"(SIGHUP reloads the others).\n");
}

int main_config(const struct config *cfg, int argc, char **argv)
{
	bool changed = false, restart = false;

	if (argc < 1 || strcmp(argv[0], "show") != 0) {
		main_config_usage(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0) {
			changed = true;
		} else if (strcmp(argv[i], "-r") == 0) {
			restart = true;
		} else {
			fprintf(stderr, "ringmta: config show: unknown argument '%s'\n", argv[i]);
			main_config_usage(stderr);
			return 2;
		}
	}
	if (changed && restart) {
		fprintf(stderr, "ringmta: config show: -n and -r go alone\n");
		main_config_usage(stderr);
		return 2;
	}
	if (restart) {
		config_dump_restart(cfg, stdout);
	} else if (!changed) {
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
