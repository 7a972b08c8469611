/* hashes.c - see hashes.h. Plain portable C; no tables in the data section. */
#include "hashes.h"

#include <stdbool.h>

static uint32_t crc_table[256];
static bool crc_table_ready;

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
    crc_table_ready = true;
}

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    if (!crc_table_ready) crc_init();
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t adler32_update(uint32_t adler, const uint8_t *data, size_t len) {
    const uint32_t MOD = 65521;
    uint32_t a = adler & 0xFFFF, b = adler >> 16;
    while (len > 0) {
        /* 5552 is the largest n for which the sums cannot overflow 32 bits. */
        size_t n = len < 5552 ? len : 5552;
        len -= n;
        while (n--) {
            a += *data++;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    return (b << 16) | a;
}

uint32_t fnv1a32_update(uint32_t h, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= UINT32_C(16777619);
    }
    return h;
}

uint64_t fnv1a64_update(uint64_t h, const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}
