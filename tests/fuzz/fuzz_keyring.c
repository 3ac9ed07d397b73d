/*
 * libFuzzer harness: the keyring reader (share/keyring.c). As for the
 * snapshot: validated as it came, then with its CRC and file size made
 * right; an image that validates goes into a sealed memfd, is mapped as the
 * worker maps it (keyring_map) and read as worker/tls.c reads it: ticket
 * keys, every certificate's PEMs and names, lookups by id, the default.
 * Seeds: images built by master/keyringbuild.c (tests/fuzz/seedgen.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/hash.h"
#include "share/keyring.h"
#include "share/log.h"
#include "share/sealed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void
kr_fix_crc(uint8_t *p, size_t size)
{
	struct keyring_header h;
	uint32_t crc;

	memcpy(&h, p, sizeof(h));
	h.file_size = size;
	h.crc32c = 0;
	memcpy(p, &h, sizeof(h));
	crc = hash_crc32c(0, p, size);
	memcpy(p + offsetof(struct keyring_header, crc32c), &crc, sizeof(crc));
}

static void
kr_read_all(const struct keyring *kr)
{
	uint32_t i, j;
	size_t len;

	sink += keyring_generation(kr) + keyring_default_cert(kr);
	for (i = 0; i < keyring_ticket_key_count(kr); i++)
		sink += keyring_ticket_key_at(kr, i)->not_after;
	for (i = 0; i < keyring_cert_count(kr); i++) {
		const struct keyring_cert *c = keyring_cert_at(kr, i);

		sink += strlen(keyring_string(kr, c->chain)) + strlen(keyring_string(kr, c->key));
		for (j = 0; j < c->name_count; j++)
			sink += strlen(keyring_cert_name(kr, c, j, &len)) + len;
		sink += keyring_cert_by_id(kr, c->id) + keyring_cert_by_id(kr, c->id + 1);
	}
	sink += keyring_cert_by_id(kr, 0) + keyring_cert_by_id(kr, UINT32_MAX);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct keyring *kr = NULL;
	uint8_t *p;
	int fd;

	(void)keyring_validate(data, size, err, sizeof(err));
	if (size < sizeof(struct keyring_header) || (p = malloc(size)) == NULL)
		return 0;
	memcpy(p, data, size);
	kr_fix_crc(p, size);
	if (keyring_validate(p, size, err, sizeof(err)) == 0 &&
	    (fd = sealed_create("fuzz-keyring", p, size, err, sizeof(err))) >= 0) {
		if (keyring_map(fd, &kr, err, sizeof(err)) == 0) {
			kr_read_all(kr);
			keyring_unmap(kr);
		}
		close(fd);
	}
	free(p);
	return 0;
}
