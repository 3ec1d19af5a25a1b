/* What the ledger's own files share: the canonical encoding and the chain
 * hash of a transfer. */
#ifndef HB_LEDGER_INTERNAL_H
#define HB_LEDGER_INTERNAL_H

#include "storage/store.h"

#include <stdint.h>

/** SHA-256 over prev (the previous entry's hash, zeros before the first) and
 *  the canonical bytes of t (every field but the hash itself). Returns 0, or
 *  HB_ENOMEM when the digest cannot run. */
int ledger__hash(const uint8_t prev[STORE_HASH_SIZE], const struct store_transfer *t,
                 uint8_t out[STORE_HASH_SIZE]);

/** Lower-case hex of a hash into out (65 bytes). */
void ledger__hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1]);

#endif
