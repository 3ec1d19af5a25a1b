/* The hash chains' shared pieces: canonical bytes (integers big-endian,
 * strings length-prefixed) and SHA-256 over the previous entry's hash and an
 * entry's bytes. The ledger's transfers (core/ledger_chain.c) and the audit
 * trail (core/audit.c) are each their own chain built from these. */
#ifndef HB_CHAIN_H
#define HB_CHAIN_H

#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

/** Write v big-endian at p; returns 8 (or 4). */
size_t chain_put_u64(uint8_t *p, uint64_t v);
size_t chain_put_u32(uint8_t *p, uint32_t v);

/** Write the length of s (at most cap bytes of it) as a u32, then its bytes;
 *  returns how many bytes were written (4 + the length). */
size_t chain_put_str(uint8_t *p, const char *s, size_t cap);

/** SHA-256 over prev (the previous entry's hash, zeros before the first)
 *  and the n bytes at buf, into out. Returns 0, or HB_ENOMEM when the digest
 *  cannot run. */
int chain_hash(const uint8_t prev[STORE_HASH_SIZE], const uint8_t *buf, size_t n,
               uint8_t out[STORE_HASH_SIZE]);

/** Lower-case hex of a hash into out (65 bytes). */
void chain_hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1]);

#endif
