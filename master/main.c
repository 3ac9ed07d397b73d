/*
 * The haloyd program: one binary for every role. With `-R ROLE` it is a
 * child started by the master (fork + fexecve of this executable, its
 * master socket on fd 3); without it, it is the master.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme/acmechild.h"
#include "master/master.h"
#include "share/log.h"
#include "share/util.h"
#include "tunnel/tunproc.h"
#include "worker/worker.h"

/*
 * Parses `-R worker|acme|tunnel [-I n] -U user [-v]... [-L target] [-N]`, the child
 * command line; -N: no sandbox (haloyd.conf `sandbox off`).
 */
static int
child_main(int argc, char **argv)
{
	struct worker_args wa = { .index = -1, .user = NULL, .verbose = 0, .log_target = 0,
	    .sandbox = 1 };
	const char *role = NULL;
	uint64_t n;
	int c;

	while ((c = getopt(argc, argv, "R:I:U:L:vN")) != -1) {
		switch (c) {
		case 'R': role = optarg; break;
		case 'I':
			if (util_parse_u64(optarg, 0, 1023, &n) == -1)
				fatalx("bad instance %s", optarg);
			wa.index = (int)n;
			break;
		case 'U': wa.user = optarg; break;
		case 'L': wa.log_target = log_target_parse(optarg); break;
		case 'v': wa.verbose++; break;
		case 'N': wa.sandbox = 0; break;
		default: fatalx("bad child command line");
		}
	}
	if (role != NULL && strcmp(role, "worker") == 0 && wa.index >= 0 && wa.log_target >= 0)
		return worker_main(&wa);
	if (role != NULL && strcmp(role, "tunnel") == 0 && wa.log_target >= 0)
		return tunnel_main(&wa);
	if (role != NULL && strcmp(role, "acme") == 0 && wa.log_target >= 0) {
		struct acme_args aa = { wa.user, wa.verbose, wa.log_target, wa.sandbox };
		return acme_main(&aa);
	}
	fprintf(stderr, "haloyd: unknown child role\n");
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "-R") == 0)
		return child_main(argc, argv);
	return master_main(argc, argv);
}
