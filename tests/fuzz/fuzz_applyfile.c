/*
 * libFuzzer harness: the file of haloyd-ctl apply as the master parses it
 * (master/applyfile.c, with route set's table of master/commands.c). Each
 * input is a whole file. Oracle: a file that parses writes back, route by
 * route, lines that parse again into the same lines (export then apply
 * changes nothing); a refused file names its line.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/applyfile.h"
#include "share/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	return 0;
}

/* The line of route i of af (as the store would read it back). */
static char *
line_of(const struct applyfile *af, size_t i)
{
	const struct applyfile_route *fr = &af->routes[i];
	struct store_route r;
	char *line, err[400];

	memset(&r, 0, sizeof(r));
	r.name = fr->name;
	r.aliases = fr->aliases;
	r.naliases = fr->naliases;
	r.backends = fr->backends;
	r.nbackends = fr->nbackends;
	r.set = fr->set;
	if (applyfile_format(&r, &line, err, sizeof(err)) == -1)
		return NULL;
	return line;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct applyfile af, again;
	char err[600], *line, *line2;
	size_t i;

	if (applyfile_parse((const char *)data, size, "f", &af, err, sizeof(err)) == -1) {
		if (strncmp(err, "f", 1) != 0)
			abort();
		return 0;
	}
	for (i = 0; i < af.n; i++) {
		/* A word the file cannot hold (a space in a unix path) is refused, not written. */
		if ((line = line_of(&af, i)) == NULL)
			continue;
		if (applyfile_parse(line, strlen(line), "again", &again, err, sizeof(err)) == -1 ||
		    again.n != 1) {
			fprintf(stderr, "written line refused: %s\n%s\n", line, err);
			abort();
		}
		line2 = line_of(&again, 0);
		if (line2 == NULL || strcmp(line, line2) != 0) {
			fprintf(stderr, "round trip differs:\n%s\n%s\n", line, line2 ? line2 : "(null)");
			abort();
		}
		free(line2);
		free(line);
		applyfile_free(&again);
	}
	applyfile_free(&af);
	return 0;
}
