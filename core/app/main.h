/* main.h: pieces of the ringmta command shared between main*.c. */
#ifndef RINGMTA_MAIN_H
#define RINGMTA_MAIN_H

#include "core/config/config.h"

#define RINGMTA_VERSION "0.1.0"

/* After a verb: "-c FILE" (main() loaded it already) and "-o KEY=VALUE"
 * (applied to cfg and validated). Returns 1 when argv[*i] was one of them
 * (*i then stands on its value), 0 when it was not, -1 after printing why
 * an override was refused. */
int main_verb_config_arg(struct config *cfg, int argc, char **argv, int *i);

/* "ringmta queue ARGS": returns the exit code. */
int main_queue(const struct config *cfg, int argc, char **argv);

/* "ringmta suppress add|remove|check|list|purge ...": the exit code. */
int main_suppress(const struct config *cfg, int argc, char **argv);

/* "ringmta domain check DOMAIN ...": returns the exit code (0 all
 * checks pass, 1 one failed, 2 usage). -o after the verb changes cfg. */
int main_domain(struct config *cfg, int argc, char **argv);

/* "ringmta shaping show --mx HOSTS ...": returns the exit code (0 shown,
 * 2 usage or a rules error). -o after the verb changes cfg. */
int main_shaping(struct config *cfg, int argc, char **argv);

/* "ringmta config show [-n]": the exit code (0 shown, 1 output failed,
 * 2 usage). */
int main_config(const struct config *cfg, int argc, char **argv);

#endif
