/* hashes.h - incremental checksums: feed bytes in any number of pieces. */
#ifndef CHECKSUM_HASHES_H
#define CHECKSUM_HASHES_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, as zlib/PNG/gzip): start with 0, pass the result back in. */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);
/* Adler-32 (zlib): start with 1. */
uint32_t adler32_update(uint32_t adler, const uint8_t *data, size_t len);
/* FNV-1a: start with the offset basis. */
#define FNV1A32_INIT UINT32_C(0x811c9dc5)
#define FNV1A64_INIT UINT64_C(0xcbf29ce484222325)
uint32_t fnv1a32_update(uint32_t h, const uint8_t *data, size_t len);
uint64_t fnv1a64_update(uint64_t h, const uint8_t *data, size_t len);

#endif
