/* Hashes shared by the snapshot builder and reader: CRC32C and SipHash-2-4. */
#ifndef HALOYD_HASH_H
#define HALOYD_HASH_H

#include <stddef.h>
#include <stdint.h>

/* crc is a previous result, 0 to start: hash_crc32c(0, "123456789", 9) = 0xe3069283. */
uint32_t hash_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same with the portable table only (hash_crc32c uses SSE4.2 when present); for tests. */
uint32_t hash_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint64_t hash_siphash24(const uint8_t key[16], const void *buf, size_t len);

#endif
