/* Non-cryptographic hashing for tables and stable fingerprints. For
 * anything an attacker may choose, use SHA-256 (OpenSSL) instead. */
#ifndef HB_HASH_H
#define HB_HASH_H

#include <stddef.h>
#include <stdint.h>

/** FNV-1a, 64 bits, over n bytes: stable across runs and machines. */
uint64_t hash_fnv1a64(const void *data, size_t n);

/** FNV-1a, 64 bits, over a NUL-terminated string. */
uint64_t hash_fnv1a64_str(const char *s);

#endif
