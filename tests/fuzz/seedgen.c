/*
 * Writes the generated seeds of the fuzzing corpora: real snapshot images
 * (master/snapbuild.c) and keyrings (master/keyringbuild.c). Run by hand after a
 * format change, in a fuzzing build; its output is committed in
 * tests/fuzz/corpus/. usage: seedgen snapshot|keyring DIR
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/keyringbuild.h"
#include "master/snapbuild.h"
#include "share/snap.h"
#include "tests/fuzz/fuzzworker.h"

static const uint8_t sg_key[16] = "seedgen-hash-key";

/* Copies the image in memfd fd to DIR/name. */
static void
sg_write(int fd, const char *dir, const char *name)
{
	char path[512];
	struct stat st;
	char *p;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (fstat(fd, &st) == -1 || (p = malloc((size_t)st.st_size)) == NULL ||
	    pread(fd, p, (size_t)st.st_size, 0) != st.st_size || (f = fopen(path, "wb")) == NULL) {
		perror(path);
		exit(1);
	}
	fwrite(p, 1, (size_t)st.st_size, f);
	fclose(f);
	free(p);
	close(fd);
}

static void
sg_snap(const struct snapb_input *in, const char *dir, const char *name)
{
	char err[256];
	int fd;

	if (snapb_build(in, &fd, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", name, err);
		exit(1);
	}
	sg_write(fd, dir, name);
}

static void
sg_snapshots(const char *dir)
{
	static const struct snapb_route routes[] = {
		{ 1, "a.example.com", 0, 2, SNAP_ROUTE_HSTS, 1000, 2000, 3000, 4000, 1 << 20 },
		{ 2, "b.example.org", 2, 3, SNAP_ROUTE_NO_HTTPS_REDIRECT | SNAP_ROUTE_BALANCE_RR, 0,
		    0, 0, 0, 0 },
		{ 3, "default.invalid", 0, 0, 0, 0, 0, 0, 0, 0 },
	};
	static const struct snapb_host hosts[] = {
		{ 1, "a.example.com", 0, SNAP_HOST_EXACT, NULL },
		{ 2, "www.a.example.com", 0, SNAP_HOST_ALIAS, NULL },
		{ 3, "*.a.example.com", 0, SNAP_HOST_WILDCARD, NULL },
		{ 4, "b.example.org", 1, SNAP_HOST_EXACT, NULL },
		{ 5, "default.invalid", 2, SNAP_HOST_EXACT, NULL },
	};
	/* Every kind: IPv4, IPv6, a unix socket and a tunnel (AF_UNIX 1, AF_UNSPEC 0). */
	static const struct snapb_backend bes[] = {
		{ 1, 2, 8080, { 127, 0, 0, 1 }, 0, NULL }, { 2, 2, 8081, { 10, 1, 2, 3 }, 0, NULL },
		{ 3, 10, 443, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, 0, NULL },
		{ 4, 1, 0, { 0 }, 0, "/run/app/b.sock" },
		{ 5, 0, 0, { 0 }, SNAP_BACKEND_TUNNEL, "office-nas" },
	};
	static const struct snapb_chal chals[] = { { "abc_DEF-1", "abc_DEF-1.tp" }, { "x", "x.y" } };
	static const uint32_t certs[] = { 7, 7, 7, 0, 0 };
	struct snapb_input in = { routes, 3, hosts, 5, bes, 5, chals, 2, 2, 42, 1, sg_key, certs };
	struct snapb_input empty = { .default_route = SNAP_NONE, .generation = 1, .hash_key = sg_key };

	/* Image 5 of 64: a route, its local alias, and an alias whose route is another image's. */
	static const struct snapb_host shard_hosts[] = {
		{ 1, "a.example.com", 0, SNAP_HOST_EXACT, NULL },
		{ 2, "www.a.example.com", 0, SNAP_HOST_ALIAS, NULL },
		{ 6, "b.example.net", SNAP_NONE, SNAP_HOST_ALIAS, "b.example.org" },
		{ 7, "*.c.example.net", SNAP_NONE, SNAP_HOST_WILDCARD, "b.example.org" },
	};
	struct snapb_input shard = { routes, 1, shard_hosts, 4, bes, 2, NULL, 0, SNAP_NONE, 42, 1,
	    sg_key, NULL, 5, SNAP_SHARDS };


	sg_snap(fuzzworker_snap_input(), dir, "fixture");
	sg_snap(&shard, dir, "shard-remote-alias");
	sg_snap(&in, dir, "routes-backends-chals");
	sg_snap(&empty, dir, "empty");
}

static void
sg_keyrings(const char *dir)
{
	static const char *const names_a[] = { "a.example.com", "*.a.example.com" };
	static const char *const names_b[] = { "b.example.org" };
	static const char chain[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	static const char key[] = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";
	struct keyring_ticket_key keys[2];
	struct mkeyring_cert_in certs[3] = {
		{ 1, KEYRING_SRC_DEFAULT, { 1 }, 0, 4102444800, chain, sizeof(chain) - 1, key,
		  sizeof(key) - 1, NULL, 0 },
		{ 5, KEYRING_SRC_IMPORTED, { 5 }, 1700000000, 1800000000, chain, sizeof(chain) - 1, key,
		  sizeof(key) - 1, names_a, 2 },
		{ 9, KEYRING_SRC_ACME, { 9 }, 1700000000, 1800000000, chain, sizeof(chain) - 1, key,
		  sizeof(key) - 1, names_b, 1 },
	};
	struct mkeyring_input in = { keys, 2, certs, 3, 0, 42, 1 };
	char err[256];
	int fd;

	memset(keys, 0, sizeof(keys));
	memset(keys[0].name, 'a', sizeof(keys[0].name));
	memset(keys[1].name, 'b', sizeof(keys[1].name));
	keys[0].not_after = keys[1].not_after = 4102444800;
	if (mkeyring_build(&in, &fd, err, sizeof(err)) == -1)
		goto fail;
	sg_write(fd, dir, "keys-certs");
	in.nkeys = 1;
	in.ncerts = 1;
	if (mkeyring_build(&in, &fd, err, sizeof(err)) == -1)
		goto fail;
	sg_write(fd, dir, "default-only");
	return;
fail:
	fprintf(stderr, "keyring: %s\n", err);
	exit(1);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: seedgen snapshot|keyring DIR\n");
		return 2;
	}
	if (strcmp(argv[1], "snapshot") == 0)
		sg_snapshots(argv[2]);
	else if (strcmp(argv[1], "keyring") == 0)
		sg_keyrings(argv[2]);
	else
		return 2;
	return 0;
}
